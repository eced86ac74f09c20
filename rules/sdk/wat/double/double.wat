;; double: the smallest conforming Vigie rule, written from rule-abi.md
;; alone (no SDK). One int32 input x, one int32 output y = x * 2 (wrapping on
;; overflow), null where x is null.
;;
;; Build: wat2wasm double.wat -o double.wasm
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"abi\":1,\"name\":\"double\",\"version\":\"1.0.0\",\"kind\":\"map\",\"inputs\":[{\"name\":\"x\",\"type\":\"int32\"}],\"outputs\":[{\"name\":\"y\",\"type\":\"int32\"}]}")

  ;; Bump allocator over [1024, end of memory), reset when a new cycle starts:
  ;; at the first vigie_alloc after a vigie_eval (rule-abi.md, 3).
  (global $top (mut i32) (i32.const 1024))
  (global $evaluated (mut i32) (i32.const 0))

  (func (export "vigie_abi_version") (result i32) (i32.const 1))

  ;; (ptr << 32) | len of the manifest.
  (func (export "vigie_manifest") (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 135)))

  ;; size writable bytes, 8-byte aligned, or 0.
  (func (export "vigie_alloc") (param $size i32) (result i32)
    (local $p i32) (local $end i64) (local $pages i64)
    (if (global.get $evaluated)
      (then (global.set $top (i32.const 1024)) (global.set $evaluated (i32.const 0))))
    (local.set $p (i32.and (i32.add (global.get $top) (i32.const 7)) (i32.const -8)))
    (local.set $end (i64.add (i64.extend_i32_u (local.get $p)) (i64.extend_i32_u (local.get $size))))
    (local.set $pages (i64.shr_u (i64.add (local.get $end) (i64.const 65535)) (i64.const 16)))
    (if (i64.gt_u (local.get $pages) (i64.extend_i32_u (memory.size)))
      (then
        (if (i64.gt_u (local.get $pages) (i64.const 65536)) (then (return (i32.const 0))))
        (if (i32.eq (memory.grow (i32.wrap_i64 (i64.sub (local.get $pages) (i64.extend_i32_u (memory.size)))))
                    (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $top (i32.wrap_i64 (local.get $end)))
    (local.get $p))

  ;; Batch: +0 num_rows, +16 first column. Column: +4 validity, +8 data,
  ;; +16 data_len, +20 null_count. The input buffers are the guest's memory
  ;; for the whole cycle, so x is doubled in place and the output points at
  ;; it; the output shares the input's validity bitmap.
  (func (export "vigie_eval") (param $in i32) (param $out i32) (result i32)
    (local $n i32) (local $data i32) (local $p i32) (local $end i32)
    (global.set $evaluated (i32.const 1))
    (local.set $n (i32.load (local.get $in)))
    (local.set $data (i32.load offset=24 (local.get $in)))
    (local.set $p (local.get $data))
    (local.set $end (i32.add (local.get $data) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (i32.store (local.get $p) (i32.shl (i32.load (local.get $p)) (i32.const 1)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $rows)))
    (i32.store offset=20 (local.get $out) (i32.load offset=20 (local.get $in)))  ;; validity
    (i32.store offset=24 (local.get $out) (local.get $data))                       ;; data
    (i32.store offset=32 (local.get $out) (i32.shl (local.get $n) (i32.const 2)))  ;; data_len
    (i32.store offset=36 (local.get $out) (i32.load offset=36 (local.get $in)))  ;; null_count
    (i32.const 0))
)
