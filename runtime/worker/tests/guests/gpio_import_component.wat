;; A component importing a device interface the worker does not provide.
(component
  (import "warden:device/gpio@0.1.0" (instance (export "toggle" (func)))))
