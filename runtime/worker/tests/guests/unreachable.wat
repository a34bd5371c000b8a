;; Traps with `unreachable` two calls deep, so the backtrace names the functions.
(module
  (memory (export "memory") 1)
  (func $deep_inside unreachable)
  (func $middle (call $deep_inside))
  (func (export "_start") (call $middle)))
