;; Runs 3x the watchdog in total but returns to the host (clock_time_get) every iteration:
;; the watchdog must not fire. Reads the monotonic clock until 600 ms have passed.
(module
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func $now (result i64)
    (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 0)))
    (i64.load (i32.const 0)))
  (func (export "_start") (local $start i64)
    (local.set $start (call $now))
    (loop $spin
      (br_if $spin
        (i64.lt_u (i64.sub (call $now) (local.get $start)) (i64.const 600000000))))))
