;; A component importing, from warden:device/gpio, a function the interface does not have
;; (`toggle` is a method of `output-pin`, not a function of the interface).
(component
  (import "warden:device/gpio@0.1.0" (instance (export "toggle" (func)))))
