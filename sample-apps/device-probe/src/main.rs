//! device-probe: a Warden test app that drives every `warden:device` interface from its
//! command line, so end-to-end tests can check what the host grants, refuses and returns.
//!
//! # Steps
//!
//! Each command-line argument (after `argv[0]`) is one step: words separated by spaces, a verb
//! first. In an `app_manifest.json` that is one `CmdArgs` string per step, e.g.
//! `"CmdArgs": ["gpio-out SAMPLE_LED high", "gpio-in SAMPLE_BUTTON_1"]`.
//!
//! ```text
//! gpio-out NAME LEVEL                 open NAME as an output pin, driven to LEVEL
//! gpio-set NAME LEVEL                 drive the pin gpio-out opened
//! gpio-toggle NAME                    toggle it; prints the new level
//! gpio-get NAME                       the level it is driven to
//! gpio-in NAME                        the level of input pin NAME
//! gpio-wait NAME EDGE TIMEOUT_MS      wait for an edge on input pin NAME; prints the level
//!                                     after it, or `timeout` if none came (`ok timeout`)
//! gpio-inout NAME open                open NAME as an in-out pin (it starts as an input)
//! gpio-inout NAME set-output LEVEL
//! gpio-inout NAME set-input
//! gpio-inout NAME get                 prints the level
//! uart-write NAME TEXT
//! uart-read NAME MAX TIMEOUT_MS       prints what arrived, as a quoted string
//! uart-flush NAME
//! i2c-write-read NAME ADDR HEX LEN    prints the bytes read
//! i2c-write NAME ADDR HEX
//! i2c-read NAME ADDR LEN              prints the bytes read
//! i2c-tx NAME ADDR OP...              OP is r:LEN or w:HEX; prints each read's bytes
//! spi-transfer NAME HEX               prints the bytes read
//! spi-write NAME HEX
//! spi-read NAME LEN                   prints the bytes read
//! spi-tx NAME OP...                   OP is r:LEN, w:HEX, x:HEX (transfer) or d:MICROSECONDS;
//!                                     prints each read's and transfer's bytes
//! adc NAME CHANNEL                    prints sample=N bits=N reference-microvolts=N channels=N
//! pwm NAME CHANNEL PERIOD_NS DUTY_NS POLARITY on|off
//!                                     prints channels=N
//! intercore-send COMPONENT_ID TEXT
//! intercore-recv COMPONENT_ID TIMEOUT_MS
//!                                     prints the message as a quoted string, or `timeout`
//! intercore-max COMPONENT_ID          prints the largest message size
//! sysevent-next TIMEOUT_MS            prints `KIND STATUS COMPONENT version=N in=Ns
//!                                     max-deferral=Nmin` (COMPONENT `-` for none), or
//!                                     `timeout`
//! sysevent-defer KIND MINUTES         prints `granted=MINUTES`
//! sysevent-resume KIND
//! power-reboot
//! power-down SECONDS
//! power-profile PROFILE               PROFILE: power-saver, balanced or high-performance
//! log LEVEL CONTEXT MESSAGE
//! open-twice KIND NAME                open NAME, then open it again while the first is open;
//!                                     prints the second open's outcome (`second ok` or
//!                                     `second error VARIANT MESSAGE`); both close when the
//!                                     step ends. If the first open fails (also when an
//!                                     earlier step holds NAME), the line is its error.
//! close KIND NAME                     close the peripheral an earlier step opened
//! sleep MILLISECONDS
//! ```
//!
//! - LEVEL is `high` or `low`; EDGE `rising`, `falling` or `both`; POLARITY `normal` or
//!   `inversed`; KIND (sysevent) `app` or `os`; LEVEL (log) `trace`, `debug`, `info`, `warn` or
//!   `error`; KIND (open-twice, close) `gpio-out`, `gpio-in`, `gpio-inout`, `uart`, `i2c`,
//!   `spi`, `adc`, `pwm` or `intercore`.
//! - Numbers are decimal or `0x` hexadecimal, up to 2^32 - 1; ADDR is an I2C target address (`0x6a`).
//! - HEX is bytes as pairs of hex digits (`0f10`), or `-` for none.
//! - TEXT and MESSAGE are the rest of the step after the one space that ends the word before,
//!   spaces included, with the escapes `\n`, `\r`, `\t`, `\\`, `\"` and `\xNN`.
//!
//! Peripherals stay open from the step that opens them until the probe exits, so later steps
//! on the same name use the same handle. `gpio-out` always opens (a second `gpio-out` of a name
//! shows the host's answer while the first pin stays open); `gpio-set`, `gpio-toggle` and
//! `gpio-get` use the pin `gpio-out` opened; every other step opens its peripheral on first use.
//!
//! # Output
//!
//! One line per step on stdout, in step order, starting with the step's verb:
//!
//! ```text
//! VERB ok [VALUES...]             the step succeeded (`gpio-in ok high`, `gpio-out ok`)
//! VERB error VARIANT [MESSAGE]    the host returned an error: `gpio-out error not-granted
//!                                 SAMPLE_LED`, `uart-read error timeout`
//! VERB skipped REASON             nothing to act on: gpio-set, gpio-toggle or gpio-get with no
//!                                 pin from gpio-out (it failed or did not run), or close of a
//!                                 peripheral not open
//! ```
//!
//! VARIANT is the WIT case name (`not-granted`, `unknown-name`, `busy`, `invalid-argument`, `io`,
//! `timeout`). Bytes from a bus print as lowercase hex (`6a00`, `-` for none); bytes from a UART
//! or a channel as a double-quoted string with the escapes above (`"ping\n"`). Messages print
//! with control characters and `\` escaped, so a step is always one line.
//!
//! The probe exits 0 once every step has run, whatever the steps returned. A step that does not
//! parse is a usage error: the probe prints it on stderr, runs no step at all, and exits 1.

mod probe;
mod step;
mod text;

use std::process::ExitCode;

wit_bindgen::generate!({
    path: "../../host-api/wit",
    world: "warden:device/app",
});

/// The step syntax in brief, for stderr; the full reference is the doc comment above.
const USAGE: &str = "usage: device-probe STEP...  (one step per argument, e.g. \"gpio-in SAMPLE_BUTTON_1\")
  gpio-out|gpio-set NAME high|low   gpio-toggle|gpio-get|gpio-in NAME
  gpio-wait NAME rising|falling|both TIMEOUT_MS   gpio-inout NAME open|set-input|get|set-output LEVEL
  uart-write NAME TEXT   uart-read NAME MAX TIMEOUT_MS   uart-flush NAME
  i2c-write-read NAME ADDR HEX LEN   i2c-write NAME ADDR HEX   i2c-read NAME ADDR LEN
  i2c-tx NAME ADDR r:LEN|w:HEX...   spi-transfer|spi-write NAME HEX   spi-read NAME LEN
  spi-tx NAME r:LEN|w:HEX|x:HEX|d:US...   adc NAME CHANNEL
  pwm NAME CHANNEL PERIOD_NS DUTY_NS normal|inversed on|off
  intercore-send ID TEXT   intercore-recv ID TIMEOUT_MS   intercore-max ID
  sysevent-next TIMEOUT_MS   sysevent-defer app|os MINUTES   sysevent-resume app|os
  power-reboot   power-down SECONDS   power-profile PROFILE   log LEVEL CONTEXT MESSAGE
  open-twice KIND NAME   close KIND NAME   sleep MS";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("device-probe: no steps given\n{USAGE}");
        return ExitCode::from(1);
    }
    // Parse every step before running any, so a typo in a test never leaves a half-run probe.
    let mut steps = Vec::with_capacity(args.len());
    for (index, arg) in args.iter().enumerate() {
        match step::parse(arg) {
            Ok(step) => steps.push(step),
            Err(problem) => {
                eprintln!(
                    "device-probe: step {} {arg:?}: {problem}\n{USAGE}",
                    index + 1
                );
                return ExitCode::from(1);
            }
        }
    }
    let mut probe = probe::Probe::default();
    for (arg, step) in args.iter().zip(&steps) {
        let verb = arg.split_whitespace().next().unwrap_or_default();
        println!("{verb} {}", probe.run(step));
    }
    ExitCode::SUCCESS
}
