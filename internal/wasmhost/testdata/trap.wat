;; trap.wat: a hostile rule: when the first x of a batch is negative, vigie_eval executes unreachable.
;; Otherwise it behaves: y = x, s = "". Built with: wat2wasm trap.wat -o trap.wasm
(module
  (import "vigie" "fail" (func $fail (param i32 i32)))
  (import "vigie" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  ;; arena from 65536, reset at the first vigie_alloc after a vigie_eval;
  ;; it grows memory as needed and returns 0 when it cannot
  (global $bump (mut i32) (i32.const 65536))
  (global $evaluated (mut i32) (i32.const 0))
  ;; manifest at 1024
  (data (i32.const 1024) "{\"abi\":1,\"name\":\"hostile\",\"version\":\"0.0.1\",\"kind\":\"map\",\"inputs\":[{\"name\":\"x\",\"type\":\"int32\"}],\"outputs\":[{\"name\":\"y\",\"type\":\"int32\"},{\"name\":\"s\",\"type\":\"utf8\"}]}")
  (data (i32.const 2048) "bad batch: x is negative")
  ;; one-row utf8 output for the bad paths: offsets [0, 2] at 3072, bytes at 3100
  (data (i32.const 3072) "\00\00\00\00\02\00\00\00")
  (data (i32.const 3100) "\ff\fe")
  ;; 4096..16383: zeros, the utf8 offsets of the good path (up to 3000 rows)
  (func (export "vigie_abi_version") (result i32) (i32.const 1))
  (func (export "vigie_manifest") (result i64) (i64.const 4398046511267))
  (func (export "vigie_alloc") (param $n i32) (result i32)
    (local $p i32) (local $end i64) (local $have i64)
    (if (global.get $evaluated) (then
      (global.set $bump (i32.const 65536))
      (global.set $evaluated (i32.const 0))))
    (local.set $p (global.get $bump))
    (local.set $end (i64.add (i64.extend_i32_u (local.get $p)) (i64.extend_i32_u (local.get $n))))
    (local.set $have (i64.shl (i64.extend_i32_u (memory.size)) (i64.const 16)))
    (if (i64.gt_u (local.get $end) (local.get $have)) (then
      (if (i32.eq (memory.grow (i32.wrap_i64 (i64.shr_u
            (i64.add (i64.sub (local.get $end) (local.get $have)) (i64.const 65535)) (i64.const 16))))
          (i32.const -1))
        (then (return (i32.const 0))))))
    (global.set $bump (i32.wrap_i64 (i64.and (i64.add (local.get $end) (i64.const 7)) (i64.const -8))))
    (local.get $p))
  ;; good path: y = x (the output points at the input's buffers), s = ""
  (func $good (param $in i32) (param $out i32) (result i32)
    (i32.store offset=20 (local.get $out) (i32.load offset=20 (local.get $in)))  ;; validity
    (i32.store offset=24 (local.get $out) (i32.load offset=24 (local.get $in)))  ;; data
    (i32.store offset=32 (local.get $out) (i32.load offset=32 (local.get $in)))  ;; data_len
    (i32.store offset=36 (local.get $out) (i32.load offset=36 (local.get $in)))  ;; null_count
    (i32.store offset=52 (local.get $out) (i32.const 4096))                      ;; s offsets
    (i32.const 0))
  ;; first value of x, 0 when the batch is empty
  (func $x0 (param $in i32) (result i32)
    (if (i32.eqz (i32.load (local.get $in))) (then (return (i32.const 0))))
    (i32.load (i32.load offset=24 (local.get $in))))
  (func (export "vigie_eval") (param $in i32) (param $out i32) (result i32)
    (local $i i32)
    (global.set $evaluated (i32.const 1))
    (if (i32.lt_s (call $x0 (local.get $in)) (i32.const 0)) (then
      unreachable))
    (call $good (local.get $in) (local.get $out)))
)
