;; Hostile: grows a table by 10 000 elements at a time until refused, then traps.
(module
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (func (export "_start")
    (loop $more
      (br_if $more
        (i32.ne (table.grow $t (ref.null func) (i32.const 10000)) (i32.const -1))))
    unreachable))
