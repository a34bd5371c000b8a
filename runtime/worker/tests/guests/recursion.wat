;; Hostile: unbounded recursion.
(module
  (memory (export "memory") 1)
  (func $recurse (param $depth i64)
    (call $recurse (i64.add (local.get $depth) (i64.const 1))))
  (func (export "_start") (call $recurse (i64.const 0))))
