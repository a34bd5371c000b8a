//! Blinky: the classic first Warden app (the same app in Python: `sample-apps/blinky-py`).
//!
//! It blinks `SAMPLE_LED`, changing state every 500 ms, and each press of `SAMPLE_BUTTON_1`
//! switches to the next blink rate, as the Azure Sphere GPIO sample does.
//!
//! If you know Azure Sphere: `OutputPin::open` is `GPIO_OpenAsOutput`, `InputPin::open` is
//! `GPIO_OpenAsInput`, and peripherals are opened by the names of the board's hardware
//! definition. Those names must be listed in `app_manifest.json` (`"Gpio": ["$SAMPLE_LED", ...]`):
//! opening anything else returns a `not-granted` error instead of a descriptor.

use std::process::ExitCode;

// The Warden SDK (`host-api/sdk/rust`): each resource of the `warden:device` WIT, such as
// `gpio.output-pin`, is a Rust type with the same methods.
use warden_sdk::Error;
use warden_sdk::gpio::{Edge, InputPin, Level, OutputPin};
use warden_sdk::log;

/// How long the LED stays on, then off, in milliseconds; each button press moves to the next.
const BLINK_INTERVALS_MS: [u32; 3] = [500, 250, 125];

/// The context every log line of this app carries.
const LOG_CONTEXT: &str = "blinky";

fn main() -> ExitCode {
    // `blinky` only returns on an error: log it where the developer reads the app's log, and
    // exit non-zero so the device reports a failed app rather than a finished one.
    let Err(error) = blinky();
    log::error(LOG_CONTEXT, &format!("stopped: {error}"));
    ExitCode::FAILURE
}

/// Blinks forever. It returns only if a device call fails: `Infallible` says there is no `Ok`.
fn blinky() -> Result<std::convert::Infallible, Error> {
    // Start with the LED driven high: the LEDs of Azure Sphere boards light when driven low.
    let led = OutputPin::open("SAMPLE_LED", Level::High)?;
    // The buttons read high when idle and low while pressed.
    let button = InputPin::open("SAMPLE_BUTTON_1")?;

    let mut interval = 0;
    log::info(
        LOG_CONTEXT,
        "blinking SAMPLE_LED every 500 ms; press SAMPLE_BUTTON_1 to change the rate",
    );
    loop {
        led.toggle()?;
        // Waiting for the button is also the pause between toggles: a press (high to low, so a
        // falling edge) ends the wait early, otherwise it times out after one interval. The app
        // never spins, so it costs no CPU while it waits.
        if button
            .wait_for_edge(Edge::Falling, BLINK_INTERVALS_MS[interval])?
            .is_some()
        {
            interval = (interval + 1) % BLINK_INTERVALS_MS.len();
            let message = format!(
                "SAMPLE_BUTTON_1 pressed: blinking every {} ms",
                BLINK_INTERVALS_MS[interval]
            );
            log::info(LOG_CONTEXT, &message);
        }
    }
}
