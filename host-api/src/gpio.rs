//! `warden:device/gpio`: output, input and in-out pins, each one GPIO line — a simulated
//! line (`Access::Sim { detail: gpio }`) or a Linux line request (`Access::GpioLine`).

use warden_ipc::broker::{Access, Detail, GpioMode, ResourceRequest};
use warden_ipc::sim::{MAX_WAIT_MS, SimReply, SimRequest};
use wasmtime::component::Resource;

use crate::bindings::warden::device::gpio::{
    Edge, Host, HostInOutPin, HostInputPin, HostOutputPin, Level,
};
use crate::bindings::warden::device::types::Error;
use crate::devices::{Claim, Devices, Granted, Held};
use crate::error::{self, invalid};
use crate::linux::deadline_in;
use crate::linux::gpio::LineRequest;
use crate::sim::SimLink;

/// A pin the app drives.
#[derive(Debug)]
pub struct OutputPin {
    claim: Claim,
    line: Line,
    /// The level the pin is driven to: `toggle` drives the other one.
    driven: bool,
}

/// A pin the app reads.
#[derive(Debug)]
pub struct InputPin {
    claim: Claim,
    line: Line,
}

/// A pin that switches between driving and reading.
#[derive(Debug)]
pub struct InOutPin {
    claim: Claim,
    line: Line,
}

impl Held for OutputPin {
    fn claim(&self) -> &Claim {
        &self.claim
    }
}

impl Held for InputPin {
    fn claim(&self) -> &Claim {
        &self.claim
    }
}

impl Held for InOutPin {
    fn claim(&self) -> &Claim {
        &self.claim
    }
}

/// One GPIO line, on whichever backend the grant named.
#[derive(Debug)]
enum Line {
    Sim(SimLink),
    Linux { label: String, line: LineRequest },
}

fn high(level: Level) -> bool {
    matches!(level, Level::High)
}

fn level(high: bool) -> Level {
    if high { Level::High } else { Level::Low }
}

impl Line {
    fn from_grant(granted: Granted) -> Result<Line, Error> {
        match granted.access {
            Access::Sim {
                detail: Detail::Gpio,
            } => {
                let label = granted.label.clone();
                Ok(Line::Sim(SimLink::new(label, granted.single()?)))
            }
            Access::GpioLine => {
                let label = granted.label.clone();
                Ok(Line::Linux {
                    label,
                    line: LineRequest::new(granted.single()?),
                })
            }
            _ => Err(granted.unusable("a GPIO line")),
        }
    }

    fn set(&mut self, value: bool) -> Result<(), Error> {
        match self {
            Line::Sim(link) => match link.call(SimRequest::GpioSet { high: value })? {
                SimReply::Done => Ok(()),
                other => Err(link.unexpected(&other, "gpio_set")),
            },
            Line::Linux { label, line } => line
                .set(value)
                .map_err(|e| error::from_os(label, "setting the line", &e)),
        }
    }

    fn get(&mut self) -> Result<bool, Error> {
        match self {
            Line::Sim(link) => match link.call(SimRequest::GpioGet)? {
                SimReply::Level(high) => Ok(high),
                other => Err(link.unexpected(&other, "gpio_get")),
            },
            Line::Linux { label, line } => line
                .get()
                .map_err(|e| error::from_os(label, "reading the line", &e)),
        }
    }

    fn direction(&mut self, output: Option<bool>) -> Result<(), Error> {
        match self {
            Line::Sim(link) => match link.call(SimRequest::GpioDirection { output })? {
                SimReply::Done => Ok(()),
                other => Err(link.unexpected(&other, "gpio_direction")),
            },
            Line::Linux { label, line } => line
                .direction(output)
                .map_err(|e| error::from_os(label, "switching the line's direction", &e)),
        }
    }

    fn wait_edge(&mut self, edge: Edge, timeout_ms: u32) -> Result<Option<bool>, Error> {
        if timeout_ms > MAX_WAIT_MS {
            return Err(invalid(format!(
                "an edge wait of {timeout_ms} ms (at most {MAX_WAIT_MS})"
            )));
        }
        let rising = match edge {
            Edge::Rising => Some(true),
            Edge::Falling => Some(false),
            Edge::Both => None,
        };
        match self {
            Line::Sim(link) => match link.call(SimRequest::GpioWaitEdge { rising, timeout_ms })? {
                SimReply::Edge(after) => Ok(after),
                other => Err(link.unexpected(&other, "gpio_wait_edge")),
            },
            Line::Linux { label, line } => line
                .wait_edge(rising, deadline_in(timeout_ms))
                .map_err(|e| error::from_os(label, "waiting for an edge", &e)),
        }
    }
}

fn request(name: String, mode: GpioMode) -> ResourceRequest {
    ResourceRequest::Gpio { name, mode }
}

impl HostOutputPin for Devices {
    fn open(&mut self, name: String, initial: Level) -> Result<Resource<OutputPin>, Error> {
        let driven = high(initial);
        let mode = GpioMode::Output {
            initial_high: driven,
        };
        // The broker opens the line already driven to `initial`: no request needed here.
        self.acquire(request(name, mode), |claim, granted| {
            Ok(OutputPin {
                claim,
                line: Line::from_grant(granted)?,
                driven,
            })
        })
    }

    fn set(&mut self, pin: Resource<OutputPin>, value: Level) -> Result<(), Error> {
        let pin = self.held(&pin)?;
        pin.line.set(high(value))?;
        pin.driven = high(value);
        Ok(())
    }

    fn toggle(&mut self, pin: Resource<OutputPin>) -> Result<Level, Error> {
        let pin = self.held(&pin)?;
        let next = !pin.driven;
        pin.line.set(next)?;
        pin.driven = next;
        Ok(level(next))
    }

    fn get(&mut self, pin: Resource<OutputPin>) -> Result<Level, Error> {
        self.held(&pin)?.line.get().map(level)
    }

    fn drop(&mut self, pin: Resource<OutputPin>) -> wasmtime::Result<()> {
        self.release(pin)
    }
}

impl HostInputPin for Devices {
    fn open(&mut self, name: String) -> Result<Resource<InputPin>, Error> {
        self.acquire(request(name, GpioMode::Input), |claim, granted| {
            Ok(InputPin {
                claim,
                line: Line::from_grant(granted)?,
            })
        })
    }

    fn get(&mut self, pin: Resource<InputPin>) -> Result<Level, Error> {
        self.held(&pin)?.line.get().map(level)
    }

    fn wait_for_edge(
        &mut self,
        pin: Resource<InputPin>,
        edge: Edge,
        timeout_ms: u32,
    ) -> Result<Option<Level>, Error> {
        let after = self.held(&pin)?.line.wait_edge(edge, timeout_ms)?;
        Ok(after.map(level))
    }

    fn drop(&mut self, pin: Resource<InputPin>) -> wasmtime::Result<()> {
        self.release(pin)
    }
}

impl HostInOutPin for Devices {
    fn open(&mut self, name: String) -> Result<Resource<InOutPin>, Error> {
        self.acquire(request(name, GpioMode::InOut), |claim, granted| {
            Ok(InOutPin {
                claim,
                line: Line::from_grant(granted)?,
            })
        })
    }

    fn set_output(&mut self, pin: Resource<InOutPin>, value: Level) -> Result<(), Error> {
        self.held(&pin)?.line.direction(Some(high(value)))
    }

    fn set_input(&mut self, pin: Resource<InOutPin>) -> Result<(), Error> {
        self.held(&pin)?.line.direction(None)
    }

    fn get(&mut self, pin: Resource<InOutPin>) -> Result<Level, Error> {
        self.held(&pin)?.line.get().map(level)
    }

    fn drop(&mut self, pin: Resource<InOutPin>) -> wasmtime::Result<()> {
        self.release(pin)
    }
}

impl Host for Devices {}
