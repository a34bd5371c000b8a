;; A component that opens the output pin SAMPLE_LED (driven low), drives it high, drops it,
;; and returns ok; if the open fails it logs the error's message through warden:device/log
;; and returns err. Written against warden:device@0.1.0 (host-api/wit/device.wit) by hand:
;; the canonical ABI's flattening and memory layouts are spelled out below.
(component
  (import "warden:device/gpio@0.1.0" (instance $gpio
    (type $error (variant
      (case "not-granted" string)
      (case "unknown-name" string)
      (case "busy" string)
      (case "invalid-argument" string)
      (case "io" string)
      (case "timeout")))
    (export "error" (type $error' (eq $error)))
    (type $level (enum "low" "high"))
    (export "level" (type $level' (eq $level)))
    (export "output-pin" (type $pin (sub resource)))
    (export "[static]output-pin.open"
      (func (param "name" string) (param "initial" $level') (result (result (own $pin) (error $error')))))
    (export "[method]output-pin.set"
      (func (param "self" (borrow $pin)) (param "value" $level') (result (result (error $error')))))))
  (import "warden:device/log@0.1.0" (instance $log
    (type $level (enum "trace" "debug" "info" "warn" "error"))
    (export "level" (type $level' (eq $level)))
    (export "log" (func (param "level" $level') (param "context" string) (param "message" string)))))

  ;; Memory and a bump allocator for the host to write results (error strings) into.
  (core module $Libc
    (memory (export "memory") 1)
    (global $next (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $at i32)
      ;; align up to the requested alignment (param 2), then take `size` (param 3) bytes
      (local.set $at
        (i32.and
          (i32.add (global.get $next) (i32.sub (local.get 2) (i32.const 1)))
          (i32.sub (i32.const 0) (local.get 2))))
      (global.set $next (i32.add (local.get $at) (local.get 3)))
      (local.get $at)))
  (core instance $libc (instantiate $Libc))
  (alias core export $libc "memory" (core memory $memory))
  (alias core export $libc "realloc" (core func $realloc))

  (alias export $gpio "output-pin" (type $pin))
  (alias export $gpio "[static]output-pin.open" (func $open))
  (alias export $gpio "[method]output-pin.set" (func $set))
  (alias export $log "log" (func $log))
  ;; open(name ptr, name len, initial, result ptr); set(pin, value, result ptr);
  ;; log(level, context ptr, context len, message ptr, message len)
  (core func $open' (canon lower (func $open) (memory $memory) (realloc $realloc)))
  (core func $set' (canon lower (func $set) (memory $memory) (realloc $realloc)))
  (core func $log' (canon lower (func $log) (memory $memory)))
  (core func $drop' (canon resource.drop $pin))

  (core module $App
    (import "libc" "memory" (memory 1))
    (import "host" "open" (func $open (param i32 i32 i32 i32)))
    (import "host" "set" (func $set (param i32 i32 i32)))
    (import "host" "drop" (func $drop (param i32)))
    (import "host" "log" (func $log (param i32 i32 i32 i32 i32)))
    (data (i32.const 16) "SAMPLE_LED")
    (data (i32.const 32) "blink")
    ;; A result<own<output-pin>, error> at 100: discriminant byte at 100, payload at 104
    ;; (the handle; or the error's case byte at 104, its string pointer at 108, length at 112).
    (func (export "run") (result i32)
      (call $open (i32.const 16) (i32.const 10) (i32.const 0) (i32.const 100))
      (if (i32.load8_u (i32.const 100))
        (then
          (call $log (i32.const 4) (i32.const 32) (i32.const 5)
            (i32.load (i32.const 108)) (i32.load (i32.const 112)))
          (return (i32.const 1))))
      ;; result<_, error> of set at 200.
      (call $set (i32.load (i32.const 104)) (i32.const 1) (i32.const 200))
      (if (i32.load8_u (i32.const 200)) (then (return (i32.const 1))))
      (call $drop (i32.load (i32.const 104)))
      (i32.const 0)))
  (core instance $app (instantiate $App
    (with "libc" (instance $libc))
    (with "host" (instance
      (export "open" (func $open'))
      (export "set" (func $set'))
      (export "drop" (func $drop'))
      (export "log" (func $log'))))))

  (func $run (result (result)) (canon lift (core func $app "run")))
  (instance $cli-run (export "run" (func $run)))
  (export "wasi:cli/run@0.2.0" (instance $cli-run)))
