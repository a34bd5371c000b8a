;; Creates /storage/x (the first preopen, fd 3), writes "stored!", reads it back. Exits with
;; the first failing call's errno, 100 if the bytes differ, 0 on success.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 32) "x")
  (data (i32.const 64) "stored!")
  (func $check (param $errno i32)
    (if (local.get $errno) (then (call $proc_exit (local.get $errno)))))
  (func (export "_start") (local $fd i32)
    ;; oflags CREAT|TRUNC, rights FD_READ|FD_WRITE
    (call $check (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 1)
      (i32.const 9) (i64.const 66) (i64.const 0) (i32.const 0) (i32.const 12)))
    (local.set $fd (i32.load (i32.const 12)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 7))
    (call $check (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $check (call $fd_close (local.get $fd)))
    (call $check (call $path_open (i32.const 3) (i32.const 0) (i32.const 32) (i32.const 1)
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 12)))
    (local.set $fd (i32.load (i32.const 12)))
    (i32.store (i32.const 0) (i32.const 128))
    (i32.store (i32.const 4) (i32.const 64))
    (call $check (call $fd_read (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8)))
    (if (i32.ne (i32.load (i32.const 8)) (i32.const 7)) (then (call $proc_exit (i32.const 100))))
    (if (i64.ne (i64.load (i32.const 128)) (i64.load (i32.const 64)))
      (then (call $proc_exit (i32.const 100))))))
