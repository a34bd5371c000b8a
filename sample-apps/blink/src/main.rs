//! Blink: the classic first Warden app.
//!
//! It blinks `SAMPLE_LED`, changing state every 500 ms, and each press of `SAMPLE_BUTTON_1`
//! switches to the next blink rate, as the Azure Sphere GPIO sample does.
//!
//! If you know Azure Sphere: `OutputPin::open` is `GPIO_OpenAsOutput`, `InputPin::open` is
//! `GPIO_OpenAsInput`, and peripherals are opened by the names of the board's hardware
//! definition. Those names must be listed in `app_manifest.json` (`"Gpio": ["$SAMPLE_LED", ...]`):
//! opening anything else returns a `not-granted` error instead of a descriptor.

use std::process::ExitCode;

use warden::device::gpio::{Edge, InputPin, Level, OutputPin};
use warden::device::log::{Level as LogLevel, log};
use warden::device::types::Error;

// Rust bindings for the `warden:device` interfaces (host-api/wit/device.wit): each resource in
// the WIT, such as `gpio.output-pin`, becomes a Rust type with the same methods.
wit_bindgen::generate!({
    path: "../../host-api/wit",
    world: "warden:device/app",
});

/// How long the LED stays on, then off, in milliseconds; each button press moves to the next.
const BLINK_INTERVALS_MS: [u32; 3] = [500, 250, 125];

/// The context every log line of this app carries.
const LOG_CONTEXT: &str = "blink";

fn main() -> ExitCode {
    // `blink` only returns on an error: log it where the developer reads the app's log, and
    // exit non-zero so the device reports a failed app rather than a finished one.
    let Err(error) = blink();
    log(LogLevel::Error, LOG_CONTEXT, &format!("stopped: {error}"));
    ExitCode::FAILURE
}

/// Blinks forever. It returns only if a device call fails: `Infallible` says there is no `Ok`.
fn blink() -> Result<std::convert::Infallible, Error> {
    // Start with the LED driven high: the LEDs of Azure Sphere boards light when driven low.
    let led = OutputPin::open("SAMPLE_LED", Level::High)?;
    // The buttons read high when idle and low while pressed.
    let button = InputPin::open("SAMPLE_BUTTON_1")?;

    let mut interval = 0;
    log(
        LogLevel::Info,
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
            log(LogLevel::Info, LOG_CONTEXT, &message);
        }
    }
}
