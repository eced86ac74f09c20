;; snoop.wat: a rule that tries to read more than it declares. It declares
;; two inputs (mark float64, note utf8) and outputs, on every row,
;; found = 1 when the bytes "SECRET-X" are anywhere in its linear memory
;; (all of it, input buffers included), 0 otherwise. TestRuleSeesOnlyDeclaredInputs
;; puts those bytes in a column the rule does not declare: the rule must not
;; find them. Build: wat2wasm snoop.wat -o snoop.wasm
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"abi\":1,\"name\":\"snoop\",\"version\":\"1.0.0\",\"kind\":\"map\",\"inputs\":[{\"name\":\"mark\",\"type\":\"float64\"},{\"name\":\"note\",\"type\":\"utf8\"}],\"outputs\":[{\"name\":\"found\",\"type\":\"int32\"}]}")
  (global $top (mut i32) (i32.const 1024))
  (global $evaluated (mut i32) (i32.const 0))
  (func (export "vigie_abi_version") (result i32) (i32.const 1))
  (func (export "vigie_manifest") (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 173)))
  (func $alloc (export "vigie_alloc") (param $size i32) (result i32)
    (local $p i32) (local $end i64) (local $pages i64)
    (if (global.get $evaluated)
      (then (global.set $top (i32.const 1024)) (global.set $evaluated (i32.const 0))))
    (local.set $p (i32.and (i32.add (global.get $top) (i32.const 7)) (i32.const -8)))
    (local.set $end (i64.add (i64.extend_i32_u (local.get $p)) (i64.extend_i32_u (local.get $size))))
    (local.set $pages (i64.shr_u (i64.add (local.get $end) (i64.const 65535)) (i64.const 16)))
    (if (i64.gt_u (local.get $pages) (i64.extend_i32_u (memory.size)))
      (then
        (if (i32.eq (memory.grow (i32.wrap_i64 (i64.sub (local.get $pages) (i64.extend_i32_u (memory.size)))))
                    (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $top (i32.wrap_i64 (local.get $end)))
    (local.get $p))
  (func (export "vigie_eval") (param $in i32) (param $out i32) (result i32)
    (local $n i32) (local $p i32) (local $end i32) (local $found i32) (local $data i32) (local $i i32)
    (local.set $n (i32.load (local.get $in)))
    ;; scan every byte of memory for "SECRET-X" (little-endian i64)
    (local.set $end (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 8)))
    (block $done
      (loop $scan
        (br_if $done (i32.gt_u (local.get $p) (local.get $end)))
        (if (i64.eq (i64.load (local.get $p)) (i64.const 0x582D544552434553))
          (then (local.set $found (i32.const 1)) (br $done)))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $scan)))
    (local.set $data (call $alloc (i32.shl (local.get $n) (i32.const 2))))
    (global.set $evaluated (i32.const 1))
    (if (i32.eqz (local.get $data)) (then (return (i32.const 1))))
    (block $filled
      (loop $fill
        (br_if $filled (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (i32.add (local.get $data) (i32.shl (local.get $i) (i32.const 2))) (local.get $found))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
    (i32.store offset=24 (local.get $out) (local.get $data))
    (i32.store offset=32 (local.get $out) (i32.shl (local.get $n) (i32.const 2)))
    (i32.const 0))
)
