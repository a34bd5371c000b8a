//! What the driving side (the control API, tests) can get wrong, and what bringing the board up
//! can fail on. Workers never see these: they get [`warden_ipc::sim::SimError`] values.

/// Why a simulated-board call failed; every message names the peripheral and the value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimBoardError {
    /// No simulated peripheral of that name.
    #[error("the simulated board has no peripheral `{0}`")]
    UnknownPeripheral(String),
    /// The peripheral exists but is of another kind than the call needs.
    #[error("`{peripheral}` is {actual}, not {expected}")]
    WrongKind {
        peripheral: String,
        expected: &'static str,
        actual: &'static str,
    },
    /// The outside world cannot drive a line an app drives.
    #[error(
        "`{peripheral}` is driven by app `{app}` as an output: the outside world cannot drive it"
    )]
    DrivenByApp { peripheral: String, app: String },
    /// No such ADC or PWM channel.
    #[error("`{peripheral}` has {channels} channel(s): there is no channel {channel}")]
    NoChannel {
        peripheral: String,
        channel: u32,
        channels: u32,
    },
    /// An ADC value beyond the converter's resolution.
    #[error("raw value {raw} does not fit the {bits}-bit ADC `{peripheral}` (at most {max})")]
    RawOutOfRange {
        peripheral: String,
        raw: u32,
        bits: u8,
        max: u64,
    },
    /// No emulated device at that I2C address or SPI chip select.
    #[error("no device at {target} on `{peripheral}`")]
    NoDevice { peripheral: String, target: String },
    /// The emulated device has no such quantity.
    #[error(
        "the {model} at {target} on `{peripheral}` has no quantity `{quantity}` (it has: {known})"
    )]
    UnknownQuantity {
        peripheral: String,
        target: String,
        model: &'static str,
        quantity: String,
        known: String,
    },
    /// A sensor value that is NaN or infinite.
    #[error("{value} is not a finite value for `{quantity}` on `{peripheral}`")]
    NotFinite {
        peripheral: String,
        quantity: String,
        value: f64,
    },
    /// The board names a device model the simulator does not emulate.
    #[error(
        "`{peripheral}`: no {bus} device model `{model}` at {target} (the simulator has: {known})"
    )]
    UnknownModel {
        peripheral: String,
        bus: &'static str,
        model: String,
        target: String,
        known: String,
    },
    /// A baud rate termios has no constant for.
    #[error("`{peripheral}`: {baud} baud is not a rate termios can set")]
    Baud { peripheral: String, baud: u64 },
    /// The operating system refused (a pty, a pipe, a thread).
    #[error("`{peripheral}`: {what}: {source}")]
    Os {
        peripheral: String,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl SimBoardError {
    pub(crate) fn os(
        peripheral: &str,
        what: &'static str,
        source: impl Into<std::io::Error>,
    ) -> Self {
        SimBoardError::Os {
            peripheral: peripheral.to_owned(),
            what,
            source: source.into(),
        }
    }
}
