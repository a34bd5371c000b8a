//! The simulated board in the control API (`/sim/...`): what tests and developers see of the
//! simulated peripherals and how they drive them — the outside world of the board (buttons,
//! sensors, a terminal on a UART), never an app's side.
//!
//! | method and path | does |
//! |---|---|
//! | `GET /sim` | every simulated peripheral and its state |
//! | `GET /sim/gpio/{name}` | a line's level |
//! | `POST /sim/gpio/{name}?level=high\|low` | drives an input line from outside (a button) |
//! | `GET /sim/uart/{name}` | the path of the UART's other end (a pty to open) |
//! | `POST /sim/adc/{name}/{channel}?raw=N` | sets what a channel samples |
//! | `GET /sim/pwm/{name}/{channel}` | a PWM channel's last applied state |
//! | `POST /sim/sensor/{name}/{address}?quantity=Q&value=V` | sets an emulated sensor's reading |
//! | `GET /sim/bus/{name}` | recent I2C/SPI transactions on a bus |
//! | `GET /sim/power` | the board's power: on, rebooting or off, the profile, counts, the latest requests |
//! | `POST /sim/power/wake` | wakes a powered-down board before its alarm (the power button) |
//!
//! `{name}` is the board's peripheral (`SIM_GPIO8`) or any hardware-definition name that
//! resolves to it for that kind (`SAMPLE_LED`, `LED_RED`).

use serde_json::json;
use warden_policy::ids::PeripheralType;
use warden_simboard::SimBoard;

use crate::http::{Request, Response};
use crate::power::SimPower;
use crate::supervisor::Supervisor;

/// The simulated side of a device with simulated peripherals: the board and its power rail.
#[derive(Debug, Clone)]
pub struct Simulated {
    pub board: SimBoard,
    pub power: std::sync::Arc<SimPower>,
}

/// Answers `/sim/...` (`rest` is the path after `/sim`).
pub fn route(
    sup: &Supervisor,
    simulated: Option<&Simulated>,
    req: &Request<'_>,
    rest: &[&str],
) -> Response {
    let Some(Simulated { board: sim, power }) = simulated else {
        return Response::error(
            404,
            &format!(
                "board `{}` has no simulated peripherals",
                sup.device().board.name
            ),
        );
    };
    let chip = |kind: PeripheralType, name: &str| -> String {
        // A board peripheral as it is, or a hardware-definition name resolved for `kind`.
        let name = name.strip_prefix('$').unwrap_or(name);
        sup.device()
            .hwdefs
            .resolve_name(kind, name)
            .map(|r| r.chip)
            .unwrap_or_else(|_| name.to_owned())
    };
    // A bus (and a sensor on it) is I2C or SPI: whichever kind the name resolves as.
    let bus = |name: &str| -> String {
        let i2c = chip(PeripheralType::I2cMaster, name);
        if i2c == name.strip_prefix('$').unwrap_or(name) {
            chip(PeripheralType::SpiMaster, name)
        } else {
            i2c
        }
    };
    let bad = |e: warden_simboard::SimBoardError| Response::error(400, &e.to_string());
    match (req.method.as_str(), rest) {
        ("GET", []) => Response::json(200, &sim.view()),
        ("GET", ["gpio", name]) => {
            let chip = chip(PeripheralType::Gpio, name);
            match sim.gpio_level(&chip) {
                Ok(high) => {
                    Response::json(200, &json!({ "peripheral": chip, "level": level(high) }))
                }
                Err(e) => bad(e),
            }
        }
        ("POST", ["gpio", name]) => {
            let chip = chip(PeripheralType::Gpio, name);
            let high = match req.query("level") {
                Some("high") => true,
                Some("low") => false,
                _ => return Response::error(400, "say the level: ?level=high or ?level=low"),
            };
            match sim.gpio_drive(&chip, high) {
                Ok(()) => Response::json(200, &json!({ "peripheral": chip, "level": level(high) })),
                Err(e) => bad(e),
            }
        }
        ("GET", ["uart", name]) => {
            let chip = chip(PeripheralType::Uart, name);
            match sim.uart_path(&chip) {
                Ok(path) => Response::json(200, &json!({ "peripheral": chip, "path": path })),
                Err(e) => bad(e),
            }
        }
        ("POST", ["adc", name, channel]) => {
            let chip = chip(PeripheralType::Adc, name);
            let (Ok(channel), Some(Ok(raw))) = (
                channel.parse::<u32>(),
                req.query("raw").map(str::parse::<u32>),
            ) else {
                return Response::error(400, "say the channel (a number) and ?raw=N");
            };
            match sim.adc_set(&chip, channel, raw) {
                Ok(()) => Response::json(
                    200,
                    &json!({ "peripheral": chip, "channel": channel, "raw": raw }),
                ),
                Err(e) => bad(e),
            }
        }
        ("GET", ["pwm", name, channel]) => {
            let chip = chip(PeripheralType::Pwm, name);
            let Ok(channel) = channel.parse::<u32>() else {
                return Response::error(400, "the channel must be a number");
            };
            match sim.pwm_state(&chip, channel) {
                Ok(state) => Response::json(
                    200,
                    &json!({ "peripheral": chip, "channel": channel, "state": state }),
                ),
                Err(e) => bad(e),
            }
        }
        ("POST", ["sensor", name, address]) => {
            let address = match address.strip_prefix("0x") {
                Some(hex) => u16::from_str_radix(hex, 16),
                None => address.parse::<u16>(),
            };
            let (Ok(address), Some(quantity), Some(Ok(value))) = (
                address,
                req.query("quantity"),
                req.query("value").map(str::parse::<f64>),
            ) else {
                return Response::error(
                    400,
                    "say the address (decimal or 0x..), ?quantity=NAME and ?value=NUMBER",
                );
            };
            let chip = bus(name);
            match sim.sensor_set(&chip, address, quantity, value) {
                Ok(()) => Response::json(
                    200,
                    &json!({ "peripheral": chip, "address": address, "quantity": quantity, "value": value }),
                ),
                Err(e) => bad(e),
            }
        }
        ("GET", ["bus", name]) => {
            let chip = bus(name);
            match sim.bus_log(&chip) {
                Ok(events) => Response::json(200, &json!({ "peripheral": chip, "events": events })),
                Err(e) => bad(e),
            }
        }
        ("GET", ["power"]) => Response::json(200, &power.view()),
        ("POST", ["power", "wake"]) => {
            if power.wake() {
                Response::json(200, &power.view())
            } else {
                Response::error(409, "the board is not powered down")
            }
        }
        (
            _,
            []
            | ["gpio" | "uart" | "bus", _]
            | ["adc" | "pwm" | "sensor", _, _]
            | ["power"]
            | ["power", "wake"],
        ) => Response::error(405, &format!("{} is not allowed here", req.method)),
        _ => Response::error(404, "no such simulated-board resource"),
    }
}

fn level(high: bool) -> &'static str {
    if high { "high" } else { "low" }
}
