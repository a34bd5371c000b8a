;; Sleeps 300 ms with poll_oneoff (a relative monotonic-clock subscription), then exits with
;; the errno of poll_oneoff (0 on success).
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; subscription at 0 (48 bytes): userdata 0, tag 0 (clock), clock id 1 (monotonic),
    ;; timeout 300 ms, precision 0, flags 0 (relative). Event at 64, count at 128.
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 300000000))
    (call $proc_exit
      (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))
