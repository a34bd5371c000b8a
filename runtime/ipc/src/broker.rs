//! The capability broker's messages: while its app runs, a worker asks the supervisor for a
//! resource by the name the app used; the supervisor checks the signed manifest, the hardware
//! definition and ownership, opens exactly that resource and passes its descriptor, or answers
//! with a [`Denial`] the app receives as an error value.
//!
//! **Transport**: a second `SOCK_SEQPACKET` pair, the *broker socket*, attached to
//! `ToWorker::Run` (after code, stdout and stderr) when `RunRequest::broker` says so. The
//! supervisor serves it on a thread of its own until the worker ends; the main channel keeps
//! carrying only the run's outcome. Same framing as [`crate::Channel`]: one JSON document per
//! packet, descriptors by `SCM_RIGHTS`.
//!
//! ```text
//! worker (app running)                                 supervisor (broker thread)
//!   ── BrokerRequest { seq, open: ResourceRequest } ──▶  decode, validate, authorise, open
//!   ◀── BrokerReply { seq, result } [+ descriptors of the grant] ──
//! ```
//!
//! One request at a time, answered in order; `seq` pairs an answer with its request. Every
//! request is checked by [`BrokerRequest::validate`] before anything looks at it: names are
//! bounded identifiers, so the supervisor never looks up a multi-kilobyte or odd string.

use serde::{Deserialize, Serialize};

/// Longest peripheral name or component id a worker may send. Hardware-definition names are
/// short identifiers; the supervisor refuses anything longer before looking it up.
pub const MAX_NAME: usize = 128;

/// Most descriptors one grant carries (a grant is one resource; today one descriptor).
pub const MAX_GRANT_FDS: usize = 4;

/// A worker's request for one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerRequest {
    /// Chosen by the worker, echoed in the answer.
    pub seq: u64,
    pub open: ResourceRequest,
}

/// What the app asked to open, by the name it used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ResourceRequest {
    Gpio { name: String, mode: GpioMode },
    I2c { name: String },
    Spi { name: String },
    Uart { name: String },
    Adc { name: String },
    Pwm { name: String },
}

impl ResourceRequest {
    /// The name the app used.
    pub fn name(&self) -> &str {
        match self {
            ResourceRequest::Gpio { name, .. }
            | ResourceRequest::I2c { name }
            | ResourceRequest::Spi { name }
            | ResourceRequest::Uart { name }
            | ResourceRequest::Adc { name }
            | ResourceRequest::Pwm { name } => name,
        }
    }

    /// The kind, as a manifest's capability (and a hardware definition's `Type`) names it.
    pub fn capability(&self) -> &'static str {
        match self {
            ResourceRequest::Gpio { .. } => "Gpio",
            ResourceRequest::I2c { .. } => "I2cMaster",
            ResourceRequest::Spi { .. } => "SpiMaster",
            ResourceRequest::Uart { .. } => "Uart",
            ResourceRequest::Adc { .. } => "Adc",
            ResourceRequest::Pwm { .. } => "Pwm",
        }
    }
}

impl BrokerRequest {
    /// Refuses what no honest worker sends: an empty or over-long name, or one with characters
    /// outside `[A-Za-z0-9_$.-]` (hardware-definition names are C identifiers; `$` prefixes a
    /// manifest reference). The denial names the problem; the app sees `invalid-argument`.
    pub fn validate(&self) -> Result<(), Denial> {
        let name = self.open.name();
        if name.is_empty() {
            return Err(Denial::InvalidArgument("an empty peripheral name".into()));
        }
        if name.len() > MAX_NAME {
            return Err(Denial::InvalidArgument(format!(
                "a peripheral name of {} bytes (at most {MAX_NAME})",
                name.len()
            )));
        }
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.' | '-')))
        {
            return Err(Denial::InvalidArgument(format!(
                "the peripheral name {:?} has the character {bad:?}",
                name.chars().take(MAX_NAME).collect::<String>()
            )));
        }
        Ok(())
    }
}

/// How a GPIO line is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "as", rename_all = "snake_case", deny_unknown_fields)]
pub enum GpioMode {
    /// Driven by the app, to `initial_high` at once.
    Output { initial_high: bool },
    /// Read by the app.
    Input,
    /// Switched between the two by the app; starts as an input.
    InOut,
}

/// The supervisor's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerReply {
    pub seq: u64,
    pub result: Result<Grant, Denial>,
}

/// A granted resource. Its descriptors are attached to the reply, in the order [`Access`]
/// describes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// The peripheral the name resolved to on this board (for messages and logs).
    pub peripheral: String,
    /// How the worker uses the attached descriptors.
    pub access: Access,
}

/// What the attached descriptors are, and what the worker needs to know to use them. Only the
/// lowest layer differs between a real board and the simulated one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "snake_case", deny_unknown_fields)]
pub enum Access {
    /// One descriptor: one end of a `SOCK_SEQPACKET` pair whose other end is the simulated
    /// board, speaking [`crate::sim`] for this one resource.
    Sim { detail: Detail },
    /// One descriptor: a tty (a real UART, or the simulated board's pty) with the line
    /// settings of the board file already applied by the supervisor.
    Tty { baud: u32 },
    /// One descriptor: a GPIO character device v2 line request holding exactly the one line.
    GpioLine,
    /// One descriptor: an i2c-dev bus (`I2C_RDWR`).
    I2cDev,
    /// One descriptor: a spidev device (`SPI_IOC_MESSAGE`).
    SpiDev,
    /// One descriptor per channel, in `channels` order: the IIO `in_voltageN_raw` files, open
    /// read-only.
    IioAdc {
        channels: Vec<u32>,
        bits: u32,
        reference_microvolts: u32,
    },
    /// Four descriptors per channel, in `channels` order: the sysfs PWM channel's `period`,
    /// `duty_cycle`, `polarity` and `enable` files, open write-only.
    SysfsPwm { channels: Vec<u32> },
}

/// What the worker needs to know about a simulated resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Detail {
    Gpio,
    I2c,
    Spi,
    Adc {
        channels: u32,
        bits: u32,
        reference_microvolts: u32,
    },
    Pwm {
        channels: u32,
    },
}

impl Access {
    /// How many descriptors the reply carries for this grant.
    pub fn descriptors(&self) -> usize {
        match self {
            Access::Sim { .. }
            | Access::Tty { .. }
            | Access::GpioLine
            | Access::I2cDev
            | Access::SpiDev => 1,
            Access::IioAdc { channels, .. } => channels.len(),
            Access::SysfsPwm { channels } => channels.len() * 4,
        }
    }
}

/// Why a request was refused; the app sees it as the matching `warden:device/types.error`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "denial", content = "detail", rename_all = "snake_case")]
pub enum Denial {
    /// The manifest grants this app no such peripheral (the board has it).
    #[error("{0}")]
    NotGranted(String),
    /// The board has no peripheral of that name and kind.
    #[error("{0}")]
    UnknownName(String),
    /// In use: already open in this app, or held by another app's worker.
    #[error("{0}")]
    Busy(String),
    /// A malformed request.
    #[error("{0}")]
    InvalidArgument(String),
    /// Opening the granted resource failed on the device.
    #[error("{0}")]
    Io(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpio(name: &str) -> BrokerRequest {
        BrokerRequest {
            seq: 1,
            open: ResourceRequest::Gpio {
                name: name.into(),
                mode: GpioMode::Input,
            },
        }
    }

    #[test]
    fn names_are_bounded_identifiers() {
        assert!(gpio("SAMPLE_LED").validate().is_ok());
        assert!(gpio("$SAMPLE_LED").validate().is_ok());
        assert!(matches!(
            gpio("").validate(),
            Err(Denial::InvalidArgument(_))
        ));
        assert!(matches!(
            gpio(&"A".repeat(MAX_NAME + 1)).validate(),
            Err(Denial::InvalidArgument(m)) if m.contains("129 bytes")
        ));
        assert!(matches!(
            gpio("LED/../x").validate(),
            Err(Denial::InvalidArgument(m)) if m.contains("'/'")
        ));
        assert!(gpio("LED\0").validate().is_err());
    }

    #[test]
    fn the_wire_form_is_tagged_and_strict() {
        let text = serde_json::to_string(&gpio("SAMPLE_LED")).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"seq":1,"open":{"kind":"gpio","name":"SAMPLE_LED","mode":{"as":"input"}}}"#
        );
        let extra = r#"{"seq":1,"open":{"kind":"uart","name":"U","baud":9600}}"#;
        assert!(serde_json::from_str::<BrokerRequest>(extra).is_err());
        let reply = BrokerReply {
            seq: 7,
            result: Err(Denial::NotGranted("SAMPLE_LED".into())),
        };
        let text = serde_json::to_string(&reply).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"seq":7,"result":{"Err":{"denial":"not_granted","detail":"SAMPLE_LED"}}}"#
        );
    }
}
