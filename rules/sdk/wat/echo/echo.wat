;; echo_wat: copies each of its seven inputs, one per ABI type, to the
;; output of the same type, nulls included, written from rule-abi.md alone
;; (no SDK): every output column descriptor points at the input's buffers.
;;
;; Build: wat2wasm echo.wat -o echo.wasm
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"abi\":1,\"name\":\"echo_wat\",\"version\":\"1.0.0\",\"kind\":\"map\",\"inputs\":[{\"name\":\"b\",\"type\":\"bool\"},{\"name\":\"i\",\"type\":\"int32\"},{\"name\":\"l\",\"type\":\"int64\"},{\"name\":\"f\",\"type\":\"float64\"},{\"name\":\"s\",\"type\":\"utf8\"},{\"name\":\"ts\",\"type\":\"timestamp_us\"},{\"name\":\"d\",\"type\":\"date32\"}],\"outputs\":[{\"name\":\"b_out\",\"type\":\"bool\"},{\"name\":\"i_out\",\"type\":\"int32\"},{\"name\":\"l_out\",\"type\":\"int64\"},{\"name\":\"f_out\",\"type\":\"float64\"},{\"name\":\"s_out\",\"type\":\"utf8\"},{\"name\":\"ts_out\",\"type\":\"timestamp_us\"},{\"name\":\"d_out\",\"type\":\"date32\"}]}")

  ;; Bump allocator over [1024, end of memory), reset when a new cycle starts:
  ;; at the first vigie_alloc after a vigie_eval (rule-abi.md, 3).
  (global $top (mut i32) (i32.const 1024))
  (global $evaluated (mut i32) (i32.const 0))

  (func (export "vigie_abi_version") (result i32) (i32.const 1))

  ;; (ptr << 32) | len of the manifest.
  (func (export "vigie_manifest") (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 519)))

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

  ;; For each column (24 bytes, from +16), copy validity, data, offsets,
  ;; data_len and null_count (+4..+24) from the input to the output.
  (func (export "vigie_eval") (param $in i32) (param $out i32) (result i32)
    (local $c i32) (local $end i32) (local $src i32) (local $dst i32)
    (global.set $evaluated (i32.const 1))
    (if (i32.ne (i32.load offset=4 (local.get $in)) (i32.load offset=4 (local.get $out)))
      (then (return (i32.const 1))))
    (local.set $end (i32.mul (i32.load offset=4 (local.get $in)) (i32.const 24)))
    (block $done
      (loop $cols
        (br_if $done (i32.ge_u (local.get $c) (local.get $end)))
        (local.set $src (i32.add (local.get $in) (i32.add (local.get $c) (i32.const 16))))
        (local.set $dst (i32.add (local.get $out) (i32.add (local.get $c) (i32.const 16))))
        (memory.copy (i32.add (local.get $dst) (i32.const 4)) (i32.add (local.get $src) (i32.const 4)) (i32.const 20))
        (local.set $c (i32.add (local.get $c) (i32.const 24)))
        (br $cols)))
    (i32.const 0))
)
