//! {{name}}: a Warden app. It blinks `SAMPLE_LED` five times and exits.
//!
//! Peripherals are opened by their hardware-definition name, and only those listed in
//! `app_manifest.json` open: anything else returns a `not-granted` error.

use std::time::Duration;

use warden_sdk::gpio::{Level, OutputPin};
use warden_sdk::log;

fn main() -> Result<(), warden_sdk::Error> {
    let led = OutputPin::open("SAMPLE_LED", Level::High)?;
    for _ in 0..10 {
        let level = match led.toggle()? {
            Level::High => "high",
            Level::Low => "low",
        };
        log::info("{{name}}", &format!("SAMPLE_LED is {level}"));
        std::thread::sleep(Duration::from_millis(250));
    }
    println!("{{name}}: done");
    Ok(())
}
