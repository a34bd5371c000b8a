;; Hostile: tries to open ../../../etc/passwd and /etc/passwd through the storage preopen
;; (fd 3). Exits with the errno of the first attempt if both fail, 99 if either succeeds.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "../../../etc/passwd")
  (data (i32.const 64) "/etc/passwd")
  (func (export "_start") (local $first i32)
    (local.set $first (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 19)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 12)))
    (if (i32.eqz (local.get $first)) (then (call $proc_exit (i32.const 99))))
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 11)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 12)))
      (then (call $proc_exit (i32.const 99))))
    (call $proc_exit (local.get $first))))
