;; bench_map.wat: the benchmark map rule, written by hand in WAT with no SDK.
;;   score = 0.5*a + 0.3*b + 0.2*c   (float64)
;;   flag  = score > 0.5             (bool)
;; both null on a row where any input is null.
;; Built with: wat2wasm bench_map.wat -o bench_map.wasm
(module
  (memory (export "memory") 2)
  ;; arena from 65536, reset at the first vigie_alloc after a vigie_eval;
  ;; grows memory as needed, 0 when it cannot
  (global $bump (mut i32) (i32.const 65536))
  (global $evaluated (mut i32) (i32.const 0))
  (data (i32.const 1024) "{\"abi\":1,\"name\":\"bench_map\",\"version\":\"1.0.0\",\"kind\":\"map\",\"description\":\"score = 0.5a + 0.3b + 0.2c; flag = score > 0.5; null when an input is null\",\"inputs\":[{\"name\":\"a\",\"type\":\"float64\"},{\"name\":\"b\",\"type\":\"float64\"},{\"name\":\"c\",\"type\":\"float64\"}],\"outputs\":[{\"name\":\"score\",\"type\":\"float64\"},{\"name\":\"flag\",\"type\":\"bool\"}]}")
  (func (export "vigie_abi_version") (result i32) (i32.const 1))
  (func (export "vigie_manifest") (result i64) (i64.const 4398046511431))
  (func $alloc (export "vigie_alloc") (param $n i32) (result i32)
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
  ;; validity byte k of a column (0xff when it has no bitmap)
  (func $vbyte (param $bm i32) (param $k i32) (result i32)
    (if (result i32) (local.get $bm)
      (then (i32.load8_u (i32.add (local.get $bm) (local.get $k))))
      (else (i32.const 0xff))))
  (func (export "vigie_eval") (param $in i32) (param $out i32) (result i32)
    (local $n i32) (local $a i32) (local $b i32) (local $c i32)
    (local $s i32) (local $f i32) (local $i i32) (local $end i32)
    (local $v f64) (local $bits i32) (local $nb i32) (local $k i32)
    (local $va i32) (local $vb i32) (local $vc i32) (local $vo i32) (local $valid i32) (local $byte i32)
    (local.set $n (i32.load (local.get $in)))
    (local.set $a (i32.load offset=24 (local.get $in)))
    (local.set $b (i32.load offset=48 (local.get $in)))
    (local.set $c (i32.load offset=72 (local.get $in)))
    (local.set $nb (i32.shr_u (i32.add (local.get $n) (i32.const 7)) (i32.const 3)))
    (local.set $s (call $alloc (i32.shl (local.get $n) (i32.const 3))))
    (local.set $f (call $alloc (local.get $nb)))
    (if (i32.or (i32.eqz (local.get $s)) (i32.eqz (local.get $f))) (then (global.set $evaluated (i32.const 1)) (return (i32.const 1))))
    ;; the main loop: 32 rows per iteration, unrolled (the host checks its
    ;; interrupt flag at every loop iteration: fewer, longer
    ;; iterations amortise it), four flag bytes at a time
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -32)) (i32.const 3)))
    (block $done32
      (loop $rows32
        (br_if $done32 (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $bits (i32.const 0))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=0 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=0 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=0 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=0 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 0))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=8 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=8 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=8 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=8 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 1))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=16 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=16 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=16 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=16 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 2))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=24 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=24 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=24 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=24 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 3))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=32 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=32 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=32 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=32 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 4))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=40 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=40 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=40 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=40 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 5))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=48 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=48 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=48 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=48 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 6))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=56 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=56 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=56 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=56 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 7))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=64 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=64 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=64 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=64 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 8))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=72 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=72 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=72 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=72 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 9))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=80 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=80 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=80 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=80 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 10))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=88 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=88 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=88 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=88 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 11))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=96 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=96 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=96 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=96 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 12))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=104 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=104 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=104 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=104 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 13))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=112 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=112 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=112 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=112 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 14))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=120 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=120 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=120 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=120 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 15))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=128 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=128 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=128 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=128 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 16))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=136 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=136 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=136 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=136 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 17))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=144 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=144 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=144 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=144 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 18))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=152 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=152 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=152 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=152 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 19))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=160 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=160 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=160 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=160 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 20))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=168 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=168 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=168 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=168 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 21))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=176 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=176 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=176 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=176 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 22))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=184 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=184 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=184 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=184 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 23))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=192 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=192 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=192 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=192 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 24))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=200 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=200 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=200 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=200 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 25))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=208 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=208 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=208 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=208 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 26))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=216 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=216 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=216 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=216 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 27))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=224 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=224 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=224 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=224 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 28))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=232 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=232 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=232 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=232 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 29))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=240 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=240 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=240 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=240 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 30))))
        (local.set $v (f64.add (f64.add
            (f64.mul (f64.load offset=248 (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
            (f64.mul (f64.load offset=248 (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load offset=248 (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store offset=248 (i32.add (local.get $s) (local.get $i)) (local.get $v))
        (local.set $bits (i32.or (local.get $bits) (i32.shl (f64.gt (local.get $v) (f64.const 0.5)) (i32.const 31))))
        (i32.store (i32.add (local.get $f) (i32.shr_u (local.get $i) (i32.const 6))) (local.get $bits))
        (local.set $i (i32.add (local.get $i) (i32.const 256)))
        (br $rows32)))
    ;; the last n % 32 rows, one per iteration, one flag byte every 8 rows
    (local.set $bits (i32.const 0))
    (local.set $end (i32.shl (local.get $n) (i32.const 3)))
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $v
          (f64.add
            (f64.add
              (f64.mul (f64.load (i32.add (local.get $a) (local.get $i))) (f64.const 0.5))
              (f64.mul (f64.load (i32.add (local.get $b) (local.get $i))) (f64.const 0.3)))
            (f64.mul (f64.load (i32.add (local.get $c) (local.get $i))) (f64.const 0.2))))
        (f64.store (i32.add (local.get $s) (local.get $i)) (local.get $v))
        ;; $i is a byte offset (8 per row): bit (row & 7) = ($i >> 3) & 7
        (local.set $bits (i32.or (local.get $bits)
          (i32.shl (f64.gt (local.get $v) (f64.const 0.5))
                   (i32.and (i32.shr_u (local.get $i) (i32.const 3)) (i32.const 7)))))
        (if (i32.eq (i32.and (local.get $i) (i32.const 56)) (i32.const 56)) (then
          (i32.store8 (i32.add (local.get $f) (i32.shr_u (local.get $i) (i32.const 6))) (local.get $bits))
          (local.set $bits (i32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $row)))
    (if (i32.and (local.get $n) (i32.const 7)) (then
      (i32.store8 (i32.add (local.get $f) (i32.shr_u (local.get $n) (i32.const 3))) (local.get $bits))))
    ;; validity: the AND of the inputs' bitmaps, when any has one
    (local.set $va (i32.load offset=20 (local.get $in)))
    (local.set $vb (i32.load offset=44 (local.get $in)))
    (local.set $vc (i32.load offset=68 (local.get $in)))
    (if (i32.or (i32.or (local.get $va) (local.get $vb)) (local.get $vc)) (then
      (local.set $vo (call $alloc (local.get $nb)))
      (if (i32.eqz (local.get $vo)) (then (global.set $evaluated (i32.const 1)) (return (i32.const 1))))
      (block $vdone
        (loop $vloop
          (br_if $vdone (i32.ge_u (local.get $k) (local.get $nb)))
          (local.set $byte (i32.and (i32.and
            (call $vbyte (local.get $va) (local.get $k))
            (call $vbyte (local.get $vb) (local.get $k)))
            (call $vbyte (local.get $vc) (local.get $k))))
          ;; last byte: only the bits of existing rows
          (if (i32.and (i32.eq (local.get $k) (i32.sub (local.get $nb) (i32.const 1)))
                       (i32.ne (i32.and (local.get $n) (i32.const 7)) (i32.const 0))) (then
            (local.set $byte (i32.and (local.get $byte)
              (i32.sub (i32.shl (i32.const 1) (i32.and (local.get $n) (i32.const 7))) (i32.const 1))))))
          (i32.store8 (i32.add (local.get $vo) (local.get $k)) (local.get $byte))
          (local.set $valid (i32.add (local.get $valid) (i32.popcnt (local.get $byte))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br $vloop)))
      (if (i32.eq (local.get $valid) (local.get $n)) (then (local.set $vo (i32.const 0))))))
    ;; output descriptors: score at +16, flag at +40
    (i32.store offset=20 (local.get $out) (local.get $vo))
    (i32.store offset=24 (local.get $out) (local.get $s))
    (i32.store offset=32 (local.get $out) (i32.shl (local.get $n) (i32.const 3)))
    (i32.store offset=44 (local.get $out) (local.get $vo))
    (i32.store offset=48 (local.get $out) (local.get $f))
    (i32.store offset=56 (local.get $out) (local.get $nb))
    (if (local.get $vo) (then
      (i32.store offset=36 (local.get $out) (i32.sub (local.get $n) (local.get $valid)))
      (i32.store offset=60 (local.get $out) (i32.sub (local.get $n) (local.get $valid)))))
    ;; everything allocated until now stays valid until the next cycle
    (global.set $evaluated (i32.const 1))
    (i32.const 0))
)
