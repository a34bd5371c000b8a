;; A component importing a device interface that does not exist.
(component
  (import "warden:device/camera@0.1.0" (instance (export "capture" (func)))))
