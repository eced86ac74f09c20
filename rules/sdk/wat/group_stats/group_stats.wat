;; group_stats_wat: the group example rule (rules/sdk/vigie/examples/group_stats)
;; written from rule-abi.md alone (no SDK): per group, the number of rows,
;; the sum of the non-null scores in row order (null when there is none)
;; and the last non-null label (null when there is none). Golden cases:
;; rules/conformance/group.cases.toml.
;;
;; Build: wat2wasm group_stats.wat -o group_stats.wasm
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\"abi\":1,\"name\":\"group_stats_wat\",\"version\":\"1.0.0\",\"kind\":\"group\",\"inputs\":[{\"name\":\"score\",\"type\":\"float64\"},{\"name\":\"label\",\"type\":\"utf8\"}],\"outputs\":[{\"name\":\"rows\",\"type\":\"int32\"},{\"name\":\"score_sum\",\"type\":\"float64\"},{\"name\":\"last_label\",\"type\":\"utf8\"}]}")

  ;; Bump allocator over [1024, end of memory), reset when a new cycle starts:
  ;; at the first vigie_alloc after a vigie_eval (rule-abi.md, 3). The
  ;; outputs are allocated during vigie_eval and stay valid until then.
  (global $top (mut i32) (i32.const 1024))
  (global $evaluated (mut i32) (i32.const 0))

  (func (export "vigie_abi_version") (result i32) (i32.const 1))

  ;; (ptr << 32) | len of the manifest.
  (func (export "vigie_manifest") (result i64)
    (i64.or (i64.shl (i64.const 16) (i64.const 32)) (i64.const 260)))

  (func (export "vigie_alloc") (param $size i32) (result i32)
    (if (global.get $evaluated)
      (then (global.set $top (i32.const 1024)) (global.set $evaluated (i32.const 0))))
    (call $bump (local.get $size)))

  ;; size bytes, 8-byte aligned, or 0 when memory cannot grow.
  (func $bump (param $size i32) (result i32)
    (local $p i32) (local $end i64) (local $pages i64)
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

  ;; Zeroed bytes from $bump; traps (unreachable) when memory cannot grow,
  ;; which fails the batch.
  (func $zalloc (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (call $bump (local.get $size)))
    (if (i32.eqz (local.get $p)) (then unreachable))
    (memory.fill (local.get $p) (i32.const 0) (local.get $size))
    (local.get $p))

  ;; Whether row r is valid in the Arrow validity bitmap bm (0: no nulls).
  (func $valid (param $bm i32) (param $r i32) (result i32)
    (if (result i32) (i32.eqz (local.get $bm))
      (then (i32.const 1))
      (else (i32.and (i32.shr_u (i32.load8_u (i32.add (local.get $bm) (i32.shr_u (local.get $r) (i32.const 3))))
                                (i32.and (local.get $r) (i32.const 7)))
                     (i32.const 1)))))

  (func $setbit (param $bm i32) (param $i i32)
    (local $p i32)
    (local.set $p (i32.add (local.get $bm) (i32.shr_u (local.get $i) (i32.const 3))))
    (i32.store8 (local.get $p)
      (i32.or (i32.load8_u (local.get $p)) (i32.shl (i32.const 1) (i32.and (local.get $i) (i32.const 7))))))

  ;; Input batch: +8 num_groups, +12 group_offsets; columns from +16, 24
  ;; bytes each (+4 validity, +8 data, +12 offsets, +16 data_len, +20
  ;; null_count): score at +16, label at +40. Output: rows at +16,
  ;; score_sum at +40, last_label at +64.
  (func (export "vigie_eval") (param $in i32) (param $out i32) (result i32)
    (local $groups i32) (local $offs i32) (local $g i32) (local $start i32) (local $end i32) (local $r i32)
    (local $scoreValid i32) (local $scoreData i32) (local $labelValid i32) (local $labelData i32) (local $labelOffs i32)
    (local $rows i32) (local $sums i32) (local $sumValid i32) (local $sumNulls i32)
    (local $lastOffs i32) (local $lastValid i32) (local $lastData i32) (local $lastNulls i32) (local $pos i32)
    (local $acc f64) (local $any i32) (local $s i32) (local $n i32)
    (global.set $evaluated (i32.const 1))
    (local.set $groups (i32.load offset=8 (local.get $in)))
    (local.set $offs (i32.load offset=12 (local.get $in)))
    (if (i32.eqz (local.get $offs)) (then (return (i32.const 1)))) ;; not a group batch
    (local.set $scoreValid (i32.load offset=20 (local.get $in)))
    (local.set $scoreData (i32.load offset=24 (local.get $in)))
    (local.set $labelValid (i32.load offset=44 (local.get $in)))
    (local.set $labelData (i32.load offset=48 (local.get $in)))
    (local.set $labelOffs (i32.load offset=52 (local.get $in)))

    ;; Outputs: one row per group. The labels copied out take at most the
    ;; input's label bytes.
    (local.set $rows (call $zalloc (i32.shl (local.get $groups) (i32.const 2))))
    (local.set $sums (call $zalloc (i32.shl (local.get $groups) (i32.const 3))))
    (local.set $sumValid (call $zalloc (i32.shr_u (i32.add (local.get $groups) (i32.const 7)) (i32.const 3))))
    (local.set $lastOffs (call $zalloc (i32.shl (i32.add (local.get $groups) (i32.const 1)) (i32.const 2))))
    (local.set $lastValid (call $zalloc (i32.shr_u (i32.add (local.get $groups) (i32.const 7)) (i32.const 3))))
    (local.set $lastData (call $zalloc (i32.load offset=56 (local.get $in))))

    (block $groupsDone
      (loop $eachGroup
        (br_if $groupsDone (i32.ge_u (local.get $g) (local.get $groups)))
        (local.set $start (i32.load (i32.add (local.get $offs) (i32.shl (local.get $g) (i32.const 2)))))
        (local.set $end (i32.load offset=4 (i32.add (local.get $offs) (i32.shl (local.get $g) (i32.const 2)))))
        (i32.store (i32.add (local.get $rows) (i32.shl (local.get $g) (i32.const 2)))
                   (i32.sub (local.get $end) (local.get $start)))

        ;; score_sum: non-null scores, in row order.
        (local.set $acc (f64.const 0))
        (local.set $any (i32.const 0))
        (local.set $r (local.get $start))
        (block $sumDone
          (loop $sum
            (br_if $sumDone (i32.ge_u (local.get $r) (local.get $end)))
            (if (call $valid (local.get $scoreValid) (local.get $r))
              (then
                (local.set $acc (f64.add (local.get $acc)
                  (f64.load (i32.add (local.get $scoreData) (i32.shl (local.get $r) (i32.const 3))))))
                (local.set $any (i32.const 1))))
            (local.set $r (i32.add (local.get $r) (i32.const 1)))
            (br $sum)))
        (if (local.get $any)
          (then
            (f64.store (i32.add (local.get $sums) (i32.shl (local.get $g) (i32.const 3))) (local.get $acc))
            (call $setbit (local.get $sumValid) (local.get $g)))
          (else (local.set $sumNulls (i32.add (local.get $sumNulls) (i32.const 1)))))

        ;; last_label: from the group's last row back to its first.
        (local.set $r (local.get $end))
        (block $lastDone
          (loop $last
            (if (i32.le_u (local.get $r) (local.get $start))
              (then
                (local.set $lastNulls (i32.add (local.get $lastNulls) (i32.const 1)))
                (br $lastDone)))
            (local.set $r (i32.sub (local.get $r) (i32.const 1)))
            (if (call $valid (local.get $labelValid) (local.get $r))
              (then
                (local.set $s (i32.load (i32.add (local.get $labelOffs) (i32.shl (local.get $r) (i32.const 2)))))
                (local.set $n (i32.sub (i32.load offset=4 (i32.add (local.get $labelOffs) (i32.shl (local.get $r) (i32.const 2))))
                                       (local.get $s)))
                (memory.copy (i32.add (local.get $lastData) (local.get $pos))
                             (i32.add (local.get $labelData) (local.get $s)) (local.get $n))
                (local.set $pos (i32.add (local.get $pos) (local.get $n)))
                (call $setbit (local.get $lastValid) (local.get $g))
                (br $lastDone)))
            (br $last)))
        (i32.store offset=4 (i32.add (local.get $lastOffs) (i32.shl (local.get $g) (i32.const 2))) (local.get $pos))

        (local.set $g (i32.add (local.get $g) (i32.const 1)))
        (br $eachGroup)))

    ;; rows: no nulls (validity 0).
    (i32.store offset=24 (local.get $out) (local.get $rows))
    (i32.store offset=32 (local.get $out) (i32.shl (local.get $groups) (i32.const 2)))
    ;; score_sum.
    (i32.store offset=44 (local.get $out) (local.get $sumValid))
    (i32.store offset=48 (local.get $out) (local.get $sums))
    (i32.store offset=56 (local.get $out) (i32.shl (local.get $groups) (i32.const 3)))
    (i32.store offset=60 (local.get $out) (local.get $sumNulls))
    ;; last_label.
    (i32.store offset=68 (local.get $out) (local.get $lastValid))
    (i32.store offset=72 (local.get $out) (local.get $lastData))
    (i32.store offset=76 (local.get $out) (local.get $lastOffs))
    (i32.store offset=80 (local.get $out) (local.get $pos))
    (i32.store offset=84 (local.get $out) (local.get $lastNulls))
    (i32.const 0))
)
