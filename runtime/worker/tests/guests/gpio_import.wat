;; Imports a device interface the worker does not provide.
(module
  (import "warden:device/gpio" "open" (func $open (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $open (i32.const 17)))))
