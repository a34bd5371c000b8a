//! What backs one chip peripheral on a board: a Linux resource, a simulated one, or the
//! real-time core alone.

use std::fmt;

use crate::diag::{self, Fields, Path, Report};
use crate::ids::PeripheralType;
use crate::json::Value;

/// Baud rates Linux's termios can set (`B1200` … `B4000000`).
pub const STANDARD_BAUD_RATES: &[u64] = &[
    1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600, 115_200, 230_400, 460_800, 500_000, 576_000,
    921_600, 1_000_000, 1_152_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000, 3_500_000,
    4_000_000,
];

/// Device models the simulated I2C bus can emulate.
pub const SIM_I2C_MODELS: &[&str] = &["tmp102", "lsm6ds3", "at24c02"];

/// Device models the simulated SPI bus can emulate.
pub const SIM_SPI_MODELS: &[&str] = &["lsm6ds3", "loopback"];

/// Sample rates the simulated I2S block accepts.
pub const SIM_I2S_RATES: &[u64] = &[8000, 16000, 22050, 32000, 44100, 48000, 96000];

/// Every backend key a resource may carry.
pub const BACKEND_KEYS: &[&str] = &[
    "Gpio",
    "Uart",
    "I2c",
    "Spi",
    "Adc",
    "Pwm",
    "I2s",
    "RealTimeCoreOnly",
    "SimGpio",
    "SimUart",
    "SimI2c",
    "SimSpi",
    "SimAdc",
    "SimPwm",
    "SimI2s",
];

/// A UART's parity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Parity {
    None,
    Even,
    Odd,
}

/// A UART's flow control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum FlowControl {
    None,
    RtsCts,
    XonXoff,
}

/// Line settings of a UART (the defaults an app gets before it configures the port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SerialSettings {
    pub baud: u64,
    pub data_bits: u8,
    pub parity: Parity,
    pub stop_bits: u8,
    pub flow_control: FlowControl,
}

impl Default for SerialSettings {
    fn default() -> Self {
        SerialSettings {
            baud: 115_200,
            data_bits: 8,
            parity: Parity::None,
            stop_bits: 1,
            flow_control: FlowControl::None,
        }
    }
}

/// A GPIO line's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Level {
    Low,
    High,
}

/// One device on a simulated I2C bus.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SimI2cDevice {
    pub address: u8,
    pub model: String,
}

/// One device on a simulated SPI bus.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SimSpiDevice {
    pub chip_select: u8,
    pub model: String,
}

/// What backs a chip peripheral.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub enum Backend {
    /// A line of a GPIO character device (`/dev/gpiochipN`).
    Gpio {
        chip: String,
        line: u32,
        active_low: bool,
    },
    /// A tty.
    Uart {
        path: String,
        settings: SerialSettings,
    },
    /// An i2c-dev bus (`/dev/i2c-N`).
    I2c { bus: u32, speed_hz: Option<u64> },
    /// A spidev (`/dev/spidevB.C`).
    Spi {
        bus: u32,
        chip_select: u32,
        max_speed_hz: Option<u64>,
        mode: Option<u8>,
    },
    /// Channels of an IIO ADC (`/sys/bus/iio/devices/iio:deviceN`).
    Adc {
        iio_device: String,
        channels: Vec<u32>,
        reference_millivolts: u64,
        bits: u8,
    },
    /// Channels of a sysfs PWM chip (`/sys/class/pwm/pwmchipN`).
    Pwm { chip: String, channels: Vec<u32> },
    /// An ALSA PCM device (`/dev/snd/pcmC<card>D<device>`).
    I2s { card: u32, device: u32 },
    /// Wired to the real-time core only: reserved for real-time apps.
    RealTimeCoreOnly { core: Option<String> },
    /// A simulated GPIO line.
    SimGpio { line: Option<u32>, initial: Level },
    /// A simulated UART: a pty at run time.
    SimUart {
        settings: SerialSettings,
        loopback: bool,
    },
    /// A simulated I2C bus with emulated devices.
    SimI2c {
        devices: Vec<SimI2cDevice>,
        speed_hz: Option<u64>,
    },
    /// A simulated SPI bus with emulated devices.
    SimSpi {
        devices: Vec<SimSpiDevice>,
        max_speed_hz: Option<u64>,
        mode: Option<u8>,
    },
    /// A simulated ADC.
    SimAdc {
        channels: u32,
        bits: u8,
        reference_millivolts: u64,
    },
    /// A simulated PWM controller.
    SimPwm { channels: u32 },
    /// A simulated I2S block.
    SimI2s { channels: u32, sample_rate_hz: u64 },
}

impl Backend {
    /// The key the board file writes for this backend.
    pub fn key(&self) -> &'static str {
        match self {
            Backend::Gpio { .. } => "Gpio",
            Backend::Uart { .. } => "Uart",
            Backend::I2c { .. } => "I2c",
            Backend::Spi { .. } => "Spi",
            Backend::Adc { .. } => "Adc",
            Backend::Pwm { .. } => "Pwm",
            Backend::I2s { .. } => "I2s",
            Backend::RealTimeCoreOnly { .. } => "RealTimeCoreOnly",
            Backend::SimGpio { .. } => "SimGpio",
            Backend::SimUart { .. } => "SimUart",
            Backend::SimI2c { .. } => "SimI2c",
            Backend::SimSpi { .. } => "SimSpi",
            Backend::SimAdc { .. } => "SimAdc",
            Backend::SimPwm { .. } => "SimPwm",
            Backend::SimI2s { .. } => "SimI2s",
        }
    }

    /// True for the simulated backends.
    pub fn is_simulated(&self) -> bool {
        self.key().starts_with("Sim")
    }

    /// Whether this backend can serve a chip peripheral of type `kind`.
    pub fn fits(&self, kind: PeripheralType) -> bool {
        fits_key(self.key(), kind)
    }

    /// The Linux (or simulated) resources this backend holds, each described for messages.
    /// Two resources holding one of these must be alternative functions of one block.
    pub fn claims(&self) -> Vec<String> {
        match self {
            Backend::Gpio { chip, line, .. } => vec![format!("{chip} line {line}")],
            Backend::Uart { path, .. } => vec![format!("tty {path}")],
            Backend::I2c { bus, .. } => vec![format!("i2c bus {bus}")],
            Backend::Spi {
                bus, chip_select, ..
            } => vec![format!("spi bus {bus} chip-select {chip_select}")],
            Backend::Adc {
                iio_device,
                channels,
                ..
            } => channels
                .iter()
                .map(|c| format!("{iio_device} channel {c}"))
                .collect(),
            Backend::Pwm { chip, channels } => channels
                .iter()
                .map(|c| format!("{chip} channel {c}"))
                .collect(),
            Backend::I2s { card, device } => vec![format!("ALSA card {card} device {device}")],
            Backend::SimGpio {
                line: Some(line), ..
            } => vec![format!("sim line {line}")],
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::Gpio {
                chip,
                line,
                active_low,
            } => {
                write!(f, "{chip} line {line}")?;
                if *active_low {
                    f.write_str(" (active low)")?;
                }
                Ok(())
            }
            Backend::Uart { path, settings } => write!(f, "{path} at {} baud", settings.baud),
            Backend::I2c { bus, .. } => write!(f, "/dev/i2c-{bus}"),
            Backend::Spi {
                bus, chip_select, ..
            } => write!(f, "/dev/spidev{bus}.{chip_select}"),
            Backend::Adc {
                iio_device,
                channels,
                ..
            } => write!(f, "{iio_device} channels {channels:?}"),
            Backend::Pwm { chip, channels } => write!(f, "{chip} channels {channels:?}"),
            Backend::I2s { card, device } => write!(f, "/dev/snd/pcmC{card}D{device}"),
            Backend::RealTimeCoreOnly { core: Some(core) } => {
                write!(f, "real-time core `{core}` only")
            }
            Backend::RealTimeCoreOnly { core: None } => f.write_str("real-time core only"),
            Backend::SimGpio {
                line: Some(line), ..
            } => write!(f, "sim line {line}"),
            Backend::SimGpio { line: None, .. } => f.write_str("sim line (allocated at run time)"),
            Backend::SimUart { loopback, .. } => {
                f.write_str("sim UART (pty)")?;
                if *loopback {
                    f.write_str(" in loopback")?;
                }
                Ok(())
            }
            Backend::SimI2c { devices, .. } => {
                f.write_str("sim I2C bus")?;
                for (i, d) in devices.iter().enumerate() {
                    let sep = if i == 0 { ": " } else { ", " };
                    write!(f, "{sep}{}@0x{:02x}", d.model, d.address)?;
                }
                Ok(())
            }
            Backend::SimSpi { devices, .. } => {
                f.write_str("sim SPI bus")?;
                for (i, d) in devices.iter().enumerate() {
                    let sep = if i == 0 { ": " } else { ", " };
                    write!(f, "{sep}{}@cs{}", d.model, d.chip_select)?;
                }
                Ok(())
            }
            Backend::SimAdc { channels, bits, .. } => {
                write!(f, "sim ADC, {channels} channels of {bits} bits")
            }
            Backend::SimPwm { channels } => write!(f, "sim PWM, {channels} channels"),
            Backend::SimI2s {
                channels,
                sample_rate_hz,
            } => write!(f, "sim I2S, {channels} channels at {sample_rate_hz} Hz"),
        }
    }
}

/// Whether the backend written as `key` can serve a chip peripheral of type `kind`.
pub fn fits_key(key: &str, kind: PeripheralType) -> bool {
    fitting_keys(kind).contains(&key)
}

/// The backend keys that can serve a chip peripheral of type `kind`.
pub fn fitting_keys(kind: PeripheralType) -> &'static [&'static str] {
    match kind {
        PeripheralType::Gpio | PeripheralType::ExternalInterrupt => {
            &["Gpio", "SimGpio", "RealTimeCoreOnly"]
        }
        PeripheralType::Uart => &["Uart", "SimUart", "RealTimeCoreOnly"],
        PeripheralType::I2cMaster => &["I2c", "SimI2c", "RealTimeCoreOnly"],
        PeripheralType::SpiMaster => &["Spi", "SimSpi", "RealTimeCoreOnly"],
        PeripheralType::Adc => &["Adc", "SimAdc", "RealTimeCoreOnly"],
        PeripheralType::Pwm => &["Pwm", "SimPwm", "RealTimeCoreOnly"],
        PeripheralType::I2sSubordinate => &["I2s", "SimI2s", "RealTimeCoreOnly"],
    }
}

/// A numbered kernel name such as `gpiochip3`, `pwmchip0` or `iio:device1`.
fn is_numbered(text: &str, prefix: &str) -> bool {
    text.strip_prefix(prefix).is_some_and(|n| {
        !n.is_empty()
            && n.len() <= 3
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n == "0" || !n.starts_with('0'))
    })
}

/// An absolute device path: `/dev/` then segments of `[A-Za-z0-9._-]`, no `.` or `..`.
pub fn is_device_path(path: &str) -> bool {
    path.len() <= 64
        && path
            .strip_prefix("/dev/")
            .is_some_and(|rest| rest.split('/').all(crate::ids::is_plain_segment))
}

pub(crate) struct Ctx<'r> {
    pub(crate) report: &'r mut Report,
    pub(crate) cores: &'r [String],
}

fn numbered(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'_>,
    path: &Path,
    pos: crate::json::Pos,
    key: &str,
    prefix: &str,
) -> Option<String> {
    let v = fields.require(ctx.report, key, pos, &format!("e.g. `{prefix}0`"))?;
    let text = diag::expect_str(ctx.report, &path.key(key), v)?;
    if is_numbered(text, prefix) {
        Some(text.to_owned())
    } else {
        ctx.report.error(
            &path.key(key),
            Some(v.pos),
            format!("`{text}` is not a {prefix} name: expected `{prefix}N`, e.g. `{prefix}0`"),
        );
        None
    }
}

fn int(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'_>,
    path: &Path,
    pos: crate::json::Pos,
    key: &str,
    what: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Option<u64> {
    let v = fields.require(ctx.report, key, pos, what)?;
    diag::expect_int(ctx.report, &path.key(key), v, range)
}

/// An optional integer: `Ok(None)` when absent, `Err(())` when present and bad.
fn opt_int(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'_>,
    path: &Path,
    key: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Option<u64>, ()> {
    match fields.take(key) {
        None => Ok(None),
        Some(v) => diag::expect_int(ctx.report, &path.key(key), v, range)
            .map(Some)
            .ok_or(()),
    }
}

fn opt_choice<T: Copy>(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'_>,
    path: &Path,
    key: &str,
    choices: &[(&str, T)],
) -> Result<Option<T>, ()> {
    let Some(v) = fields.take(key) else {
        return Ok(None);
    };
    let text = diag::expect_str(ctx.report, &path.key(key), v).ok_or(())?;
    if let Some((_, value)) = choices.iter().find(|(name, _)| *name == text) {
        return Ok(Some(*value));
    }
    let names: Vec<String> = choices.iter().map(|(n, _)| format!("`{n}`")).collect();
    ctx.report.error(
        &path.key(key),
        Some(v.pos),
        format!("unknown {key} `{text}`: expected {}", names.join(", ")),
    );
    Err(())
}

fn serial(ctx: &mut Ctx<'_>, fields: &mut Fields<'_>, path: &Path) -> Option<SerialSettings> {
    let mut settings = SerialSettings::default();
    let mut ok = true;
    if let Some(v) = fields.take("Baud") {
        let p = path.key("Baud");
        match diag::expect_int(ctx.report, &p, v, 1..=u64::from(u32::MAX)) {
            Some(baud) if STANDARD_BAUD_RATES.contains(&baud) => settings.baud = baud,
            Some(baud) => {
                ctx.report.error(
                    &p,
                    Some(v.pos),
                    format!(
                        "{baud} is not a standard baud rate: expected one of 1200, 2400, 4800, \
                         9600, 19200, 38400, 57600, 115200, 230400, … 4000000"
                    ),
                );
                ok = false;
            }
            None => ok = false,
        }
    }
    match opt_int(ctx, fields, path, "DataBits", 5..=8) {
        Ok(Some(bits)) => settings.data_bits = u8::try_from(bits).unwrap_or(8),
        Ok(None) => {}
        Err(()) => ok = false,
    }
    match opt_choice(
        ctx,
        fields,
        path,
        "Parity",
        &[
            ("None", Parity::None),
            ("Even", Parity::Even),
            ("Odd", Parity::Odd),
        ],
    ) {
        Ok(Some(p)) => settings.parity = p,
        Ok(None) => {}
        Err(()) => ok = false,
    }
    match opt_int(ctx, fields, path, "StopBits", 1..=2) {
        Ok(Some(bits)) => settings.stop_bits = u8::try_from(bits).unwrap_or(1),
        Ok(None) => {}
        Err(()) => ok = false,
    }
    match opt_choice(
        ctx,
        fields,
        path,
        "FlowControl",
        &[
            ("None", FlowControl::None),
            ("RtsCts", FlowControl::RtsCts),
            ("XonXoff", FlowControl::XonXoff),
        ],
    ) {
        Ok(Some(f)) => settings.flow_control = f,
        Ok(None) => {}
        Err(()) => ok = false,
    }
    ok.then_some(settings)
}

/// A non-empty list of distinct channel numbers.
fn channel_list(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'_>,
    path: &Path,
    pos: crate::json::Pos,
) -> Option<Vec<u32>> {
    let v = fields.require(ctx.report, "Channels", pos, "the channel numbers")?;
    let p = path.key("Channels");
    let items = diag::expect_array(ctx.report, &p, v, 64)?;
    if items.is_empty() {
        ctx.report
            .error(&p, Some(v.pos), "expected at least one channel");
        return None;
    }
    let mut out: Vec<u32> = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match diag::expect_int(ctx.report, &p.index(i), item, 0..=255) {
            Some(n) => {
                let n = u32::try_from(n).unwrap_or(0);
                if out.contains(&n) {
                    ctx.report.error(
                        &p.index(i),
                        Some(item.pos),
                        format!("channel {n} is listed twice"),
                    );
                    ok = false;
                } else {
                    out.push(n);
                }
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn model(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'_>,
    path: &Path,
    pos: crate::json::Pos,
    known: &[&str],
) -> Option<String> {
    let v = fields.require(ctx.report, "Model", pos, "the emulated device")?;
    let text = diag::expect_str(ctx.report, &path.key("Model"), v)?;
    if known.contains(&text) {
        return Some(text.to_owned());
    }
    ctx.report.error(
        &path.key("Model"),
        Some(v.pos),
        format!(
            "unknown device model `{text}`: the simulator emulates {}",
            known
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    None
}

fn u32_of(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn u8_of(n: u64) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// Reads the value of backend `key`.
pub(crate) fn read(ctx: &mut Ctx<'_>, key: &str, path: &Path, v: &Value) -> Option<Backend> {
    let mut fields = Fields::open(ctx.report, path, v)?;
    let before = ctx.report.errors().count();
    let pos = v.pos;
    let (backend, known): (Option<Backend>, &[&str]) = match key {
        "Gpio" => {
            let chip = numbered(ctx, &mut fields, path, pos, "Chip", "gpiochip");
            let line = int(
                ctx,
                &mut fields,
                path,
                pos,
                "Line",
                "the line offset",
                0..=4095,
            );
            let active_low = fields
                .take("ActiveLow")
                .map(|b| diag::expect_bool(ctx.report, &path.key("ActiveLow"), b));
            let backend = match (chip, line, active_low) {
                (Some(chip), Some(line), None) => Some(Backend::Gpio {
                    chip,
                    line: u32_of(line),
                    active_low: false,
                }),
                (Some(chip), Some(line), Some(Some(active_low))) => Some(Backend::Gpio {
                    chip,
                    line: u32_of(line),
                    active_low,
                }),
                _ => None,
            };
            (backend, &["Chip", "Line", "ActiveLow"])
        }
        "Uart" | "SimUart" => {
            let device = if key == "Uart" {
                fields
                    .require(ctx.report, "Path", pos, "the tty, e.g. `/dev/ttySTM1`")
                    .and_then(|p| {
                        let text = diag::expect_str(ctx.report, &path.key("Path"), p)?;
                        if is_device_path(text) {
                            Some(text.to_owned())
                        } else {
                            ctx.report.error(
                                &path.key("Path"),
                                Some(p.pos),
                                format!(
                                    "`{text}` is not a device path: expected an absolute \
                                     `/dev/...` path without `.` or `..` segments"
                                ),
                            );
                            None
                        }
                    })
            } else {
                Some(String::new())
            };
            let settings = serial(ctx, &mut fields, path);
            if key == "Uart" {
                let backend = match (device, settings) {
                    (Some(path), Some(settings)) => Some(Backend::Uart { path, settings }),
                    _ => None,
                };
                (
                    backend,
                    &[
                        "Path",
                        "Baud",
                        "DataBits",
                        "Parity",
                        "StopBits",
                        "FlowControl",
                    ],
                )
            } else {
                let loopback = match fields.take("Loopback") {
                    None => Some(false),
                    Some(b) => diag::expect_bool(ctx.report, &path.key("Loopback"), b),
                };
                let backend = match (settings, loopback) {
                    (Some(settings), Some(loopback)) => {
                        Some(Backend::SimUart { settings, loopback })
                    }
                    _ => None,
                };
                (
                    backend,
                    &[
                        "Baud",
                        "DataBits",
                        "Parity",
                        "StopBits",
                        "FlowControl",
                        "Loopback",
                    ],
                )
            }
        }
        "I2c" => {
            let bus = int(
                ctx,
                &mut fields,
                path,
                pos,
                "Bus",
                "the i2c-dev bus number",
                0..=255,
            );
            let speed = opt_int(ctx, &mut fields, path, "SpeedHz", 10_000..=3_400_000);
            let backend = match (bus, speed) {
                (Some(bus), Ok(speed_hz)) => Some(Backend::I2c {
                    bus: u32_of(bus),
                    speed_hz,
                }),
                _ => None,
            };
            (backend, &["Bus", "SpeedHz"])
        }
        "Spi" => {
            let bus = int(
                ctx,
                &mut fields,
                path,
                pos,
                "Bus",
                "the spidev bus number",
                0..=255,
            );
            let cs = int(
                ctx,
                &mut fields,
                path,
                pos,
                "ChipSelect",
                "the spidev chip select",
                0..=255,
            );
            let speed = opt_int(ctx, &mut fields, path, "MaxSpeedHz", 1_000..=200_000_000);
            let mode = opt_int(ctx, &mut fields, path, "Mode", 0..=3);
            let backend = match (bus, cs, speed, mode) {
                (Some(bus), Some(cs), Ok(max_speed_hz), Ok(mode)) => Some(Backend::Spi {
                    bus: u32_of(bus),
                    chip_select: u32_of(cs),
                    max_speed_hz,
                    mode: mode.map(u8_of),
                }),
                _ => None,
            };
            (backend, &["Bus", "ChipSelect", "MaxSpeedHz", "Mode"])
        }
        "Adc" => {
            let device = numbered(ctx, &mut fields, path, pos, "IioDevice", "iio:device");
            let channels = channel_list(ctx, &mut fields, path, pos);
            let reference = int(
                ctx,
                &mut fields,
                path,
                pos,
                "ReferenceMillivolts",
                "the reference voltage",
                1..=10_000,
            );
            let bits = int(
                ctx,
                &mut fields,
                path,
                pos,
                "Bits",
                "the sample width",
                1..=32,
            );
            let backend = match (device, channels, reference, bits) {
                (Some(iio_device), Some(channels), Some(reference_millivolts), Some(bits)) => {
                    Some(Backend::Adc {
                        iio_device,
                        channels,
                        reference_millivolts,
                        bits: u8_of(bits),
                    })
                }
                _ => None,
            };
            (
                backend,
                &["IioDevice", "Channels", "ReferenceMillivolts", "Bits"],
            )
        }
        "Pwm" => {
            let chip = numbered(ctx, &mut fields, path, pos, "Chip", "pwmchip");
            let channels = channel_list(ctx, &mut fields, path, pos);
            let backend = match (chip, channels) {
                (Some(chip), Some(channels)) => Some(Backend::Pwm { chip, channels }),
                _ => None,
            };
            (backend, &["Chip", "Channels"])
        }
        "I2s" => {
            let card = int(
                ctx,
                &mut fields,
                path,
                pos,
                "Card",
                "the ALSA card number",
                0..=31,
            );
            let device = int(
                ctx,
                &mut fields,
                path,
                pos,
                "Device",
                "the ALSA PCM device number",
                0..=31,
            );
            let backend = match (card, device) {
                (Some(card), Some(device)) => Some(Backend::I2s {
                    card: u32_of(card),
                    device: u32_of(device),
                }),
                _ => None,
            };
            (backend, &["Card", "Device"])
        }
        "RealTimeCoreOnly" => {
            let core = match fields.take("Core") {
                None => Ok(None),
                Some(c) => match diag::expect_str(ctx.report, &path.key("Core"), c) {
                    Some(name) if ctx.cores.iter().any(|k| k == name) => Ok(Some(name.to_owned())),
                    Some(name) => {
                        ctx.report.error(
                            &path.key("Core"),
                            Some(c.pos),
                            format!(
                                "unknown real-time core `{name}`: not listed in `RealTimeCores`"
                            ),
                        );
                        Err(())
                    }
                    None => Err(()),
                },
            };
            (
                core.ok().map(|core| Backend::RealTimeCoreOnly { core }),
                &["Core"],
            )
        }
        "SimGpio" => {
            let line = opt_int(ctx, &mut fields, path, "Line", 0..=4095);
            let initial = opt_choice(
                ctx,
                &mut fields,
                path,
                "Initial",
                &[("Low", Level::Low), ("High", Level::High)],
            );
            let backend = match (line, initial) {
                (Ok(line), Ok(initial)) => Some(Backend::SimGpio {
                    line: line.map(u32_of),
                    initial: initial.unwrap_or(Level::Low),
                }),
                _ => None,
            };
            (backend, &["Line", "Initial"])
        }
        "SimI2c" => {
            let speed = opt_int(ctx, &mut fields, path, "SpeedHz", 10_000..=3_400_000);
            let devices = sim_devices(ctx, &mut fields, path, pos, true);
            let backend = match (devices, speed) {
                (Some(SimDevices::I2c(devices)), Ok(speed_hz)) => {
                    Some(Backend::SimI2c { devices, speed_hz })
                }
                _ => None,
            };
            (backend, &["Devices", "SpeedHz"])
        }
        "SimSpi" => {
            let speed = opt_int(ctx, &mut fields, path, "MaxSpeedHz", 1_000..=200_000_000);
            let mode = opt_int(ctx, &mut fields, path, "Mode", 0..=3);
            let devices = sim_devices(ctx, &mut fields, path, pos, false);
            let backend = match (devices, speed, mode) {
                (Some(SimDevices::Spi(devices)), Ok(max_speed_hz), Ok(mode)) => {
                    Some(Backend::SimSpi {
                        devices,
                        max_speed_hz,
                        mode: mode.map(u8_of),
                    })
                }
                _ => None,
            };
            (backend, &["Devices", "MaxSpeedHz", "Mode"])
        }
        "SimAdc" => {
            let channels = int(
                ctx,
                &mut fields,
                path,
                pos,
                "Channels",
                "the number of channels",
                1..=32,
            );
            let bits = int(
                ctx,
                &mut fields,
                path,
                pos,
                "Bits",
                "the sample width",
                1..=32,
            );
            let reference = int(
                ctx,
                &mut fields,
                path,
                pos,
                "ReferenceMillivolts",
                "the reference voltage",
                1..=10_000,
            );
            let backend = match (channels, bits, reference) {
                (Some(channels), Some(bits), Some(reference_millivolts)) => Some(Backend::SimAdc {
                    channels: u32_of(channels),
                    bits: u8_of(bits),
                    reference_millivolts,
                }),
                _ => None,
            };
            (backend, &["Channels", "Bits", "ReferenceMillivolts"])
        }
        "SimPwm" => {
            let channels = int(
                ctx,
                &mut fields,
                path,
                pos,
                "Channels",
                "the number of channels",
                1..=32,
            );
            (
                channels.map(|c| Backend::SimPwm {
                    channels: u32_of(c),
                }),
                &["Channels"],
            )
        }
        "SimI2s" => {
            let channels = opt_int(ctx, &mut fields, path, "Channels", 1..=8);
            let rate = match fields.take("SampleRateHz") {
                None => Ok(48_000),
                Some(r) => match diag::expect_int(
                    ctx.report,
                    &path.key("SampleRateHz"),
                    r,
                    1..=u64::from(u32::MAX),
                ) {
                    Some(rate) if SIM_I2S_RATES.contains(&rate) => Ok(rate),
                    Some(rate) => {
                        ctx.report.error(
                            &path.key("SampleRateHz"),
                            Some(r.pos),
                            format!("{rate} Hz is not a sample rate the simulator offers: expected one of 8000, 16000, 22050, 32000, 44100, 48000, 96000"),
                        );
                        Err(())
                    }
                    None => Err(()),
                },
            };
            let backend = match (channels, rate) {
                (Ok(channels), Ok(sample_rate_hz)) => Some(Backend::SimI2s {
                    channels: channels.map_or(2, u32_of),
                    sample_rate_hz,
                }),
                _ => None,
            };
            (backend, &["Channels", "SampleRateHz"])
        }
        _ => (None, &[]),
    };
    fields.finish(ctx.report, known);
    backend.filter(|_| ctx.report.errors().count() == before)
}

enum SimDevices {
    I2c(Vec<SimI2cDevice>),
    Spi(Vec<SimSpiDevice>),
}

fn sim_devices(
    ctx: &mut Ctx<'_>,
    fields: &mut Fields<'_>,
    path: &Path,
    pos: crate::json::Pos,
    i2c: bool,
) -> Option<SimDevices> {
    let v = fields.require(
        ctx.report,
        "Devices",
        pos,
        "the emulated devices (may be empty)",
    )?;
    let p = path.key("Devices");
    let items = diag::expect_array(ctx.report, &p, v, 16)?;
    let mut i2c_devices: Vec<SimI2cDevice> = Vec::new();
    let mut spi_devices: Vec<SimSpiDevice> = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let ip = p.index(i);
        let Some(mut f) = Fields::open(ctx.report, &ip, item) else {
            ok = false;
            continue;
        };
        let (key, range, what) = if i2c {
            ("Address", 0x08..=0x77, "the 7-bit address, 0x08 to 0x77")
        } else {
            ("ChipSelect", 0..=7, "the chip select, 0 to 7")
        };
        let raw = f.require(ctx.report, key, item.pos, what);
        let number = raw.and_then(|r| diag::expect_int(ctx.report, &ip.key(key), r, range));
        let known = if i2c { SIM_I2C_MODELS } else { SIM_SPI_MODELS };
        let model = model(ctx, &mut f, &ip, item.pos, known);
        f.finish(ctx.report, &[key, "Model"]);
        let (Some(number), Some(model), Some(raw)) = (number, model, raw) else {
            ok = false;
            continue;
        };
        let number = u8_of(number);
        let taken = if i2c {
            i2c_devices.iter().any(|d| d.address == number)
        } else {
            spi_devices.iter().any(|d| d.chip_select == number)
        };
        if taken {
            ctx.report.error(
                &ip.key(key),
                Some(raw.pos),
                if i2c {
                    format!("two devices at address 0x{number:02x}")
                } else {
                    format!("two devices on chip select {number}")
                },
            );
            ok = false;
        } else if i2c {
            i2c_devices.push(SimI2cDevice {
                address: number,
                model,
            });
        } else {
            spi_devices.push(SimSpiDevice {
                chip_select: number,
                model,
            });
        }
    }
    if !ok {
        return None;
    }
    Some(if i2c {
        SimDevices::I2c(i2c_devices)
    } else {
        SimDevices::Spi(spi_devices)
    })
}
