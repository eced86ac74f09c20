;; forbidden_import.wat: imports env.now, which the ABI does not allow
;; Compiled with wat2wasm (forbidden_import.wasm is committed so tests do not need wabt).
(module
  (import "vigie" "fail" (func $fail (param i32 i32)))
  (import "env" "now" (func $now (result i64)))
  (memory (export "memory") 2)
  (global $bump (mut i32) (i32.const 8192))
  ;; manifest at 1024
  (data (i32.const 1024) "{\"abi\":1,\"name\":\"hostile\",\"version\":\"0.0.1\",\"kind\":\"map\",\"inputs\":[{\"name\":\"x\",\"type\":\"int32\"}],\"outputs\":[{\"name\":\"s\",\"type\":\"utf8\"}]}")
  (data (i32.const 2048) "bad batch: x is negative")
  (func (export "vigie_abi_version") (result i32) (i32.const 1))
  (func (export "vigie_manifest") (result i64) (i64.const 4398046511239))
  ;; bump allocator, never reset: enough for a few small test batches
  (func (export "vigie_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.and (i32.add (i32.add (local.get $p) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func (export "vigie_eval") (param $in i32) (param $out i32) (result i32)
    (i32.const 0))
)
