//! Running steps against the host, and the peripherals held open between them.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::time::Duration;

use crate::step::{InOutAction, Kind, Step};
use crate::text;
use crate::warden::device::types::Error;
use crate::warden::device::{adc, gpio, i2c, intercore, log, power, pwm, spi, sysevent, uart};

/// Every peripheral an earlier step opened, by name, kept open until the probe exits so that
/// later steps use the same handle (and a second open of it meets the first).
#[derive(Default)]
pub(crate) struct Probe {
    outputs: BTreeMap<String, gpio::OutputPin>,
    inputs: BTreeMap<String, gpio::InputPin>,
    in_outs: BTreeMap<String, gpio::InOutPin>,
    uarts: BTreeMap<String, uart::Port>,
    i2c_buses: BTreeMap<String, i2c::Bus>,
    spi_devices: BTreeMap<String, spi::Device>,
    adcs: BTreeMap<String, adc::Controller>,
    pwms: BTreeMap<String, pwm::Controller>,
    channels: BTreeMap<String, intercore::Channel>,
}

/// Why a step printed no `ok`.
enum Failure {
    /// The host returned an error value.
    Device(Error),
    /// The step needs a peripheral no earlier step opened.
    Skipped(String),
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure::Device(error)
    }
}

impl Probe {
    /// Runs one step; returns its output line without the verb.
    pub(crate) fn run(&mut self, step: &Step) -> String {
        match self.try_run(step) {
            Ok(values) if values.is_empty() => "ok".to_owned(),
            Ok(values) => format!("ok {values}"),
            Err(Failure::Device(error)) => render_error(&error),
            Err(Failure::Skipped(reason)) => format!("skipped {reason}"),
        }
    }

    /// Runs one step; returns the values its `ok` line carries (often none).
    fn try_run(&mut self, step: &Step) -> Result<String, Failure> {
        let none = String::new;
        Ok(match step {
            Step::GpioOut(name, level) => {
                // Always a fresh open: the host's answer to it is what a test checks.
                let pin = gpio::OutputPin::open(name, *level)?;
                self.outputs.insert(name.clone(), pin);
                none()
            }
            Step::GpioSet(name, level) => {
                self.output(name)?.set(*level)?;
                none()
            }
            Step::GpioToggle(name) => level_name(self.output(name)?.toggle()?),
            Step::GpioGet(name) => level_name(self.output(name)?.get()?),
            Step::GpioIn(name) => {
                level_name(open_once(&mut self.inputs, name, gpio::InputPin::open)?.get()?)
            }
            Step::GpioWait(name, edge, timeout_ms) => {
                let pin = open_once(&mut self.inputs, name, gpio::InputPin::open)?;
                match pin.wait_for_edge(*edge, *timeout_ms)? {
                    Some(level) => level_name(level),
                    None => "timeout".to_owned(),
                }
            }
            Step::GpioInOut(name, action) => {
                let pin = open_once(&mut self.in_outs, name, gpio::InOutPin::open)?;
                match action {
                    InOutAction::Open => none(),
                    InOutAction::SetOutput(level) => {
                        pin.set_output(*level)?;
                        none()
                    }
                    InOutAction::SetInput => {
                        pin.set_input()?;
                        none()
                    }
                    InOutAction::Get => level_name(pin.get()?),
                }
            }
            Step::UartWrite(name, data) => {
                open_once(&mut self.uarts, name, uart::Port::open)?.write(data)?;
                none()
            }
            Step::UartRead(name, max, timeout_ms) => {
                let port = open_once(&mut self.uarts, name, uart::Port::open)?;
                text::quoted(&port.read(*max, *timeout_ms)?)
            }
            Step::UartFlush(name) => {
                open_once(&mut self.uarts, name, uart::Port::open)?.flush()?;
                none()
            }
            Step::I2cWriteRead(name, address, data, len) => {
                let bus = open_once(&mut self.i2c_buses, name, i2c::Bus::open)?;
                text::to_hex(&bus.write_read(*address, data, *len)?)
            }
            Step::I2cWrite(name, address, data) => {
                open_once(&mut self.i2c_buses, name, i2c::Bus::open)?.write(*address, data)?;
                none()
            }
            Step::I2cRead(name, address, len) => {
                let bus = open_once(&mut self.i2c_buses, name, i2c::Bus::open)?;
                text::to_hex(&bus.read(*address, *len)?)
            }
            Step::I2cTx(name, address, operations) => {
                let bus = open_once(&mut self.i2c_buses, name, i2c::Bus::open)?;
                hex_list(&bus.transaction(*address, operations)?)
            }
            Step::SpiTransfer(name, data) => {
                let device = open_once(&mut self.spi_devices, name, spi::Device::open)?;
                text::to_hex(&device.transfer(data)?)
            }
            Step::SpiWrite(name, data) => {
                open_once(&mut self.spi_devices, name, spi::Device::open)?.write(data)?;
                none()
            }
            Step::SpiRead(name, len) => {
                let device = open_once(&mut self.spi_devices, name, spi::Device::open)?;
                text::to_hex(&device.read(*len)?)
            }
            Step::SpiTx(name, operations) => {
                let device = open_once(&mut self.spi_devices, name, spi::Device::open)?;
                hex_list(&device.transaction(operations)?)
            }
            Step::Adc(name, channel) => {
                let adc = open_once(&mut self.adcs, name, adc::Controller::open)?;
                let sample = adc.sample(*channel)?;
                format!(
                    "sample={sample} bits={} reference-microvolts={} channels={}",
                    adc.bits(),
                    adc.reference_microvolts(),
                    adc.channel_count()
                )
            }
            Step::Pwm(name, channel, state) => {
                let pwm = open_once(&mut self.pwms, name, pwm::Controller::open)?;
                pwm.apply(*channel, *state)?;
                format!("channels={}", pwm.channel_count())
            }
            Step::IntercoreSend(id, message) => {
                open_once(&mut self.channels, id, intercore::Channel::open)?.send(message)?;
                none()
            }
            Step::IntercoreRecv(id, timeout_ms) => {
                let channel = open_once(&mut self.channels, id, intercore::Channel::open)?;
                match channel.receive(*timeout_ms)? {
                    Some(message) => text::quoted(&message),
                    None => "timeout".to_owned(),
                }
            }
            Step::IntercoreMax(id) => {
                let channel = open_once(&mut self.channels, id, intercore::Channel::open)?;
                channel.max_message_size().to_string()
            }
            Step::SyseventNext(timeout_ms) => match sysevent::next_event(*timeout_ms)? {
                Some(event) => format!(
                    "{} {} {} version={} in={}s max-deferral={}min",
                    kind_name(event.kind),
                    status_name(event.status),
                    event.component_id.as_deref().unwrap_or("-"),
                    event.version,
                    event.seconds_to_install,
                    event.max_deferral_minutes
                ),
                None => "timeout".to_owned(),
            },
            Step::SyseventDefer(kind, minutes) => {
                let granted = sysevent::defer_update(*kind, *minutes)?;
                format!("granted={granted}")
            }
            Step::SyseventResume(kind) => {
                sysevent::resume_update(*kind)?;
                none()
            }
            Step::PowerReboot => {
                power::reboot()?;
                none()
            }
            Step::PowerDown(seconds) => {
                power::power_down(*seconds)?;
                none()
            }
            Step::PowerProfile(profile) => {
                power::set_power_profile(*profile)?;
                none()
            }
            Step::Log(level, context, message) => {
                log::log(*level, context, message);
                none()
            }
            Step::OpenTwice(kind, name) => match open_twice(*kind, name)? {
                Ok(()) => "second ok".to_owned(),
                Err(error) => format!("second {}", render_error(&error)),
            },
            Step::Close(kind, name) => {
                if !self.close(*kind, name) {
                    return Err(Failure::Skipped(format!(
                        "no {} {name} open",
                        kind_word(*kind)
                    )));
                }
                none()
            }
            Step::Sleep(ms) => {
                std::thread::sleep(Duration::from_millis(u64::from(*ms)));
                none()
            }
        })
    }

    /// The output pin `gpio-out` opened.
    fn output(&self, name: &str) -> Result<&gpio::OutputPin, Failure> {
        self.outputs
            .get(name)
            .ok_or_else(|| Failure::Skipped(format!("no output pin {name} open (gpio-out first)")))
    }

    /// Drops the held peripheral; false if none of that kind and name is held.
    fn close(&mut self, kind: Kind, name: &str) -> bool {
        match kind {
            Kind::GpioOut => self.outputs.remove(name).is_some(),
            Kind::GpioIn => self.inputs.remove(name).is_some(),
            Kind::GpioInOut => self.in_outs.remove(name).is_some(),
            Kind::Uart => self.uarts.remove(name).is_some(),
            Kind::I2c => self.i2c_buses.remove(name).is_some(),
            Kind::Spi => self.spi_devices.remove(name).is_some(),
            Kind::Adc => self.adcs.remove(name).is_some(),
            Kind::Pwm => self.pwms.remove(name).is_some(),
            Kind::Intercore => self.channels.remove(name).is_some(),
        }
    }
}

/// The peripheral `name` from `held`, opened with `open` if no earlier step opened it.
fn open_once<'a, T>(
    held: &'a mut BTreeMap<String, T>,
    name: &str,
    open: impl FnOnce(&str) -> Result<T, Error>,
) -> Result<&'a T, Error> {
    Ok(match held.entry(name.to_owned()) {
        Entry::Occupied(entry) => entry.into_mut(),
        Entry::Vacant(entry) => entry.insert(open(name)?),
    })
}

/// Opens `name` twice as `kind`, holding the first handle while the second opens; both
/// close when the step ends. Fails if the first open fails; returns the second's outcome.
fn open_twice(kind: Kind, name: &str) -> Result<Result<(), Error>, Error> {
    fn twice<T>(open: impl Fn() -> Result<T, Error>) -> Result<Result<(), Error>, Error> {
        let _first = open()?;
        Ok(open().map(drop))
    }
    match kind {
        Kind::GpioOut => twice(|| gpio::OutputPin::open(name, gpio::Level::Low)),
        Kind::GpioIn => twice(|| gpio::InputPin::open(name)),
        Kind::GpioInOut => twice(|| gpio::InOutPin::open(name)),
        Kind::Uart => twice(|| uart::Port::open(name)),
        Kind::I2c => twice(|| i2c::Bus::open(name)),
        Kind::Spi => twice(|| spi::Device::open(name)),
        Kind::Adc => twice(|| adc::Controller::open(name)),
        Kind::Pwm => twice(|| pwm::Controller::open(name)),
        Kind::Intercore => twice(|| intercore::Channel::open(name)),
    }
}

/// `error VARIANT [MESSAGE]`, the variant named as in the WIT.
fn render_error(error: &Error) -> String {
    let (variant, message) = match error {
        Error::NotGranted(message) => ("not-granted", message.as_str()),
        Error::UnknownName(message) => ("unknown-name", message.as_str()),
        Error::Busy(message) => ("busy", message.as_str()),
        Error::InvalidArgument(message) => ("invalid-argument", message.as_str()),
        Error::Io(message) => ("io", message.as_str()),
        Error::Timeout => ("timeout", ""),
    };
    if message.is_empty() {
        format!("error {variant}")
    } else {
        format!(
            "error {variant} {}",
            text::escaped(message.as_bytes(), false)
        )
    }
}

/// One hex word per result, in order.
fn hex_list(results: &[Vec<u8>]) -> String {
    let words: Vec<String> = results.iter().map(|bytes| text::to_hex(bytes)).collect();
    words.join(" ")
}

fn level_name(level: gpio::Level) -> String {
    match level {
        gpio::Level::Low => "low",
        gpio::Level::High => "high",
    }
    .to_owned()
}

fn status_name(status: sysevent::UpdateStatus) -> &'static str {
    match status {
        sysevent::UpdateStatus::Pending => "pending",
        sysevent::UpdateStatus::Deferred => "deferred",
        sysevent::UpdateStatus::Installing => "installing",
        sysevent::UpdateStatus::Complete => "complete",
        sysevent::UpdateStatus::Abandoned => "abandoned",
    }
}

fn kind_name(kind: sysevent::UpdateKind) -> &'static str {
    match kind {
        sysevent::UpdateKind::App => "app",
        sysevent::UpdateKind::Os => "os",
    }
}

/// A [`Kind`] as steps write it.
fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::GpioOut => "gpio-out",
        Kind::GpioIn => "gpio-in",
        Kind::GpioInOut => "gpio-inout",
        Kind::Uart => "uart",
        Kind::I2c => "i2c",
        Kind::Spi => "spi",
        Kind::Adc => "adc",
        Kind::Pwm => "pwm",
        Kind::Intercore => "intercore",
    }
}
