;; Asks WASI for 1 MiB of random bytes, 4 KiB at a time; exits with the first errno.
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32) (local $errno i32)
    (loop $again
      (local.set $errno (call $random_get (i32.const 0) (i32.const 4096)))
      (if (local.get $errno) (then (call $proc_exit (local.get $errno))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 256))))))
