//! The simulated board's device wire protocol: what a worker says over a simulated resource's
//! descriptor ([`crate::broker::Access::Sim`]), and what the board answers.
//!
//! One `SOCK_SEQPACKET` pair per opened resource; the worker holds one end, a thread of the
//! simulated board (in the supervisor) the other. One JSON request per packet, one reply per
//! request, in order; the resource is implied by the socket, so requests carry no names. The
//! board checks every request against the resource's kind and bounds ([`SimRequest::validate`])
//! and answers [`SimReply::Error`] to anything else — a confused or hostile worker gets an
//! error value, never a crash of the board.

use serde::{Deserialize, Serialize};

/// Most bytes one read, write or transfer moves (a real controller's FIFO-sized transfer is far
/// smaller; this bounds the board's buffers).
pub const MAX_TRANSFER: usize = 4096;
/// Most operations in one I2C or SPI transaction.
pub const MAX_OPS: usize = 16;
/// Most bytes one transaction reads in all: its reply must fit in one packet, as JSON, where a
/// byte takes at most four characters (`255,`), with 1 KiB for the rest of the reply.
pub const MAX_READ_TOTAL: usize = (crate::MAX_MESSAGE - 1024) / 4;
/// Longest edge wait or SPI delay a request may ask for, in milliseconds / microseconds.
pub const MAX_WAIT_MS: u32 = 60_000;
pub const MAX_DELAY_US: u32 = 1_000_000;

/// A worker's request on a simulated resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum SimRequest {
    /// GPIO: drive the line (it must be an output).
    GpioSet { high: bool },
    /// GPIO: the line's level (driven, or as the outside world holds it for an input).
    GpioGet,
    /// GPIO (in-out pins): switch to driving `high`, or to input when `None`.
    GpioDirection { output: Option<bool> },
    /// GPIO: wait for an edge (`rising`, `falling` or both when `None`) for at most `timeout_ms`.
    GpioWaitEdge {
        rising: Option<bool>,
        timeout_ms: u32,
    },
    /// I2C: the operations as one transaction with the target at `address` (7-bit).
    I2c { address: u16, ops: Vec<BusOp> },
    /// SPI: the operations with chip select held.
    Spi { ops: Vec<BusOp> },
    /// ADC: one raw sample of `channel`.
    AdcSample { channel: u32 },
    /// PWM: apply a state to `channel`.
    PwmApply { channel: u32, state: PwmState },
}

/// One step of a bus transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "op",
    content = "arg",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum BusOp {
    /// Read this many bytes.
    Read(u32),
    /// Write these bytes.
    Write(Vec<u8>),
    /// SPI full duplex: write these bytes, read as many.
    Transfer(Vec<u8>),
    /// SPI: hold for this many microseconds.
    DelayUs(u32),
}

/// A PWM channel's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PwmState {
    pub period_ns: u32,
    pub duty_ns: u32,
    pub inversed: bool,
    pub enabled: bool,
}

/// The board's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "reply",
    content = "value",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum SimReply {
    /// Done, nothing to return.
    Done,
    /// A GPIO level.
    Level(bool),
    /// The level after the edge, or `None` when the wait timed out.
    Edge(Option<bool>),
    /// One buffer per `Read` and `Transfer`, in order.
    Data(Vec<Vec<u8>>),
    /// A raw ADC sample.
    Sample(u32),
    /// Refused or failed; the message names what was wrong.
    Error(SimError),
}

/// Why the board refused a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(
    tag = "error",
    content = "detail",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum SimError {
    /// Out of range or not possible for this resource (a write to an input pin, a channel it
    /// does not have, an over-long transfer).
    #[error("{0}")]
    InvalidArgument(String),
    /// The emulated device did not answer (no target at that I2C address: a NACK).
    #[error("{0}")]
    Io(String),
}

impl SimRequest {
    /// Checks the bounds every request must keep, whatever the resource.
    pub fn validate(&self) -> Result<(), SimError> {
        let invalid = |m: String| Err(SimError::InvalidArgument(m));
        match self {
            SimRequest::GpioWaitEdge { timeout_ms, .. } if *timeout_ms > MAX_WAIT_MS => invalid(
                format!("an edge wait of {timeout_ms} ms (at most {MAX_WAIT_MS})"),
            ),
            SimRequest::I2c { address, ops } => {
                if *address > 0x7f {
                    return invalid(format!("I2C address {address:#x} is not a 7-bit address"));
                }
                if ops
                    .iter()
                    .any(|op| matches!(op, BusOp::Transfer(_) | BusOp::DelayUs(_)))
                {
                    return invalid("an I2C transaction has only reads and writes".into());
                }
                validate_ops(ops)
            }
            SimRequest::Spi { ops } => validate_ops(ops),
            _ => Ok(()),
        }
    }
}

fn validate_ops(ops: &[BusOp]) -> Result<(), SimError> {
    let invalid = |m: String| Err(SimError::InvalidArgument(m));
    if ops.is_empty() || ops.len() > MAX_OPS {
        return invalid(format!(
            "a transaction of {} operations (1 to {MAX_OPS})",
            ops.len()
        ));
    }
    let mut read_total = 0usize;
    for op in ops {
        let len = match op {
            BusOp::Read(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            BusOp::Write(bytes) | BusOp::Transfer(bytes) => bytes.len(),
            BusOp::DelayUs(us) if *us > MAX_DELAY_US => {
                return invalid(format!("a delay of {us} µs (at most {MAX_DELAY_US})"));
            }
            BusOp::DelayUs(_) => 0,
        };
        if len > MAX_TRANSFER {
            return invalid(format!(
                "a transfer of {len} bytes (at most {MAX_TRANSFER})"
            ));
        }
        if matches!(op, BusOp::Read(_) | BusOp::Transfer(_)) {
            read_total += len;
        }
    }
    if read_total > MAX_READ_TOTAL {
        return invalid(format!(
            "a transaction reading {read_total} bytes (at most {MAX_READ_TOTAL})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let ok = SimRequest::I2c {
            address: 0x48,
            ops: vec![BusOp::Write(vec![0]), BusOp::Read(2)],
        };
        assert!(ok.validate().is_ok());
        let far = SimRequest::I2c {
            address: 0x80,
            ops: vec![BusOp::Read(1)],
        };
        assert!(far.validate().is_err());
        let big = SimRequest::Spi {
            ops: vec![BusOp::Read(MAX_TRANSFER as u32 + 1)],
        };
        assert!(big.validate().is_err());
        let many = SimRequest::Spi {
            ops: vec![BusOp::Read(1); MAX_OPS + 1],
        };
        assert!(many.validate().is_err());
        let reads_too_much = SimRequest::Spi {
            ops: vec![BusOp::Read(MAX_TRANSFER as u32); 4],
        };
        assert!(reads_too_much.validate().is_err());
        let none = SimRequest::Spi { ops: vec![] };
        assert!(none.validate().is_err());
        let transfer_on_i2c = SimRequest::I2c {
            address: 1,
            ops: vec![BusOp::Transfer(vec![1])],
        };
        assert!(transfer_on_i2c.validate().is_err());
        let long_wait = SimRequest::GpioWaitEdge {
            rising: None,
            timeout_ms: MAX_WAIT_MS + 1,
        };
        assert!(long_wait.validate().is_err());
    }

    #[test]
    fn the_wire_form_is_tagged() {
        let text = serde_json::to_string(&SimRequest::I2c {
            address: 72,
            ops: vec![BusOp::Write(vec![0]), BusOp::Read(2)],
        })
        .unwrap_or_default();
        assert_eq!(
            text,
            r#"{"op":"i2c","address":72,"ops":[{"op":"write","arg":[0]},{"op":"read","arg":2}]}"#
        );
        let reply = serde_json::to_string(&SimReply::Level(true)).unwrap_or_default();
        assert_eq!(reply, r#"{"reply":"level","value":true}"#);
    }
}
