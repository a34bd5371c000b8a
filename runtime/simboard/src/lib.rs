//! The simulated board (decision 11): the peripherals a board file declares with `Sim*`
//! backends, live in the supervisor.
//!
//! Apps reach them exactly as they reach real ones: the broker calls [`SimBoard::open`] and
//! hands the worker the descriptors it returns — one end of a `SOCK_SEQPACKET` pair speaking
//! [`warden_ipc::sim`] for GPIO, I2C, SPI, ADC and PWM (served by a thread per open handle),
//! or a pty slave for a UART. The outside world of the board (buttons, sensors, a terminal)
//! is driven and observed through the other methods, which the control API (`/sim`) and
//! tests use. Behaviour, register models and decisions: `docs/simboard.md`.
#![forbid(unsafe_code)]

mod adc;
mod bus;
mod error;
mod gpio;
mod models;
mod pwm;
mod serve;
mod uart;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use warden_ipc::broker::{Access, Denial, ResourceRequest};
use warden_ipc::sim::PwmState;
use warden_policy::board::{Backend, Board, Level};

pub use adc::AdcView;
pub use bus::{BUS_LOG, BusEvent, BusRecord, BusView, DeviceView, LOG_BYTES, MAX_REPLY_BYTES};
pub use error::SimBoardError;
pub use gpio::{Direction, GpioView};
pub use pwm::PwmView;
pub use uart::{TX_HISTORY, UartView};

/// The separator of a chip-select suffix on an SPI peripheral name: `SIM_ISU3_SPI.cs1` opens
/// the device on chip select 1 (see [`SimBoard::open`]).
pub const CHIP_SELECT_SUFFIX: &str = ".cs";

/// The simulated peripherals of one board. Cheap to clone (an `Arc` inside) and thread-safe.
/// Dropping the last clone stops the UART bridges; handles that workers hold stay served until
/// the workers close them.
#[derive(Clone, Debug)]
pub struct SimBoard {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    peripherals: BTreeMap<String, Peripheral>,
    /// Peripheral names in board-file order, for the view.
    order: Vec<String>,
}

#[derive(Debug)]
enum Peripheral {
    Gpio(Arc<gpio::GpioLine>),
    Uart(uart::Uart),
    I2c(Arc<bus::Bus>),
    Spi(Arc<bus::Bus>),
    Adc(Arc<adc::Adc>),
    Pwm(Arc<pwm::Pwm>),
}

impl Peripheral {
    /// What it is, for messages.
    fn what(&self) -> &'static str {
        match self {
            Peripheral::Gpio(_) => "a GPIO line",
            Peripheral::Uart(_) => "a UART",
            Peripheral::I2c(_) => "an I2C bus",
            Peripheral::Spi(_) => "an SPI bus",
            Peripheral::Adc(_) => "an ADC",
            Peripheral::Pwm(_) => "a PWM controller",
        }
    }
}

/// Everything observable on the board, for the control API's `GET /sim`. Each list is in
/// board-file order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoardView {
    pub gpio: Vec<GpioView>,
    pub uart: Vec<UartView>,
    pub i2c: Vec<BusView>,
    pub spi: Vec<BusView>,
    pub adc: Vec<AdcView>,
    pub pwm: Vec<PwmView>,
}

impl SimBoard {
    /// Brings up every resource of `board` with a `Sim*` backend; the others (real devices)
    /// are ignored, and so is `SimI2s`, which the simulator does not offer yet. Fails on a
    /// device model the simulator does not emulate, or if a UART's ptys cannot be made.
    pub fn new(board: &Board) -> Result<SimBoard, SimBoardError> {
        let mut peripherals = BTreeMap::new();
        let mut order = Vec::new();
        for resource in &board.resources {
            let name = resource.peripheral.as_str();
            let peripheral = match &resource.backend {
                Backend::SimGpio { line, initial } => Peripheral::Gpio(Arc::new(
                    gpio::GpioLine::new(name, *line, *initial == Level::High),
                )),
                Backend::SimUart { settings, loopback } => {
                    Peripheral::Uart(uart::Uart::new(name, *settings, *loopback)?)
                }
                Backend::SimI2c { devices, .. } => Peripheral::I2c(Arc::new(bus::Bus::new(
                    name,
                    bus::BusKind::I2c,
                    devices
                        .iter()
                        .map(|d| (u16::from(d.address), d.model.clone())),
                )?)),
                Backend::SimSpi { devices, .. } => Peripheral::Spi(Arc::new(bus::Bus::new(
                    name,
                    bus::BusKind::Spi,
                    devices
                        .iter()
                        .map(|d| (u16::from(d.chip_select), d.model.clone())),
                )?)),
                Backend::SimAdc {
                    channels,
                    bits,
                    reference_millivolts,
                } => Peripheral::Adc(Arc::new(adc::Adc::new(
                    name,
                    *channels,
                    *bits,
                    *reference_millivolts,
                ))),
                Backend::SimPwm { channels } => {
                    Peripheral::Pwm(Arc::new(pwm::Pwm::new(name, *channels)))
                }
                _ => continue,
            };
            peripherals.insert(resource.peripheral.clone(), peripheral);
            order.push(resource.peripheral.clone());
        }
        Ok(SimBoard {
            inner: Arc::new(Inner { peripherals, order }),
        })
    }

    /// Opens the board peripheral `peripheral` (a chip-peripheral name, e.g. `SIM_GPIO8`) for
    /// `app`'s worker, as `request` asks; the request's kind must fit the peripheral, else
    /// [`Denial::UnknownName`]. Returns the access and the descriptors for the worker:
    ///
    /// - GPIO, I2C, SPI, ADC, PWM: one end of a `SOCK_SEQPACKET` pair
    ///   ([`Access::Sim`]), served by a board thread speaking [`warden_ipc::sim`] until the
    ///   worker's end closes. A GPIO line is held by one worker at a time ([`Denial::Busy`]
    ///   while another holds it); buses, ADCs and PWM controllers may be open several times.
    /// - UART: a duplicate of the app-side pty slave, raw, with the board file's line settings
    ///   ([`Access::Tty`]).
    ///
    /// SPI: the handle talks to one device, the one on the lowest chip select of the bus,
    /// unless `peripheral` ends in `.cs<N>` (`SIM_ISU3_SPI.cs1`), which picks chip select N.
    pub fn open(
        &self,
        app: &str,
        peripheral: &str,
        request: &ResourceRequest,
    ) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let (found, chip_select) = match self.inner.peripherals.get(peripheral) {
            Some(found) => (found, None),
            None => {
                let suffixed = peripheral
                    .rsplit_once(CHIP_SELECT_SUFFIX)
                    .and_then(|(bus, cs)| {
                        let cs = cs.parse::<u16>().ok()?;
                        match self.inner.peripherals.get(bus)? {
                            spi @ Peripheral::Spi(_) => Some((spi, Some(cs))),
                            _ => None,
                        }
                    });
                suffixed.ok_or_else(|| {
                    Denial::UnknownName(format!(
                        "the simulated board has no peripheral `{peripheral}`"
                    ))
                })?
            }
        };
        match (found, request) {
            (Peripheral::Gpio(line), ResourceRequest::Gpio { mode, .. }) => line.open(app, *mode),
            (Peripheral::Uart(uart), ResourceRequest::Uart { .. }) => uart.open(app),
            (Peripheral::I2c(bus), ResourceRequest::I2c { .. }) => bus.open(app, None),
            (Peripheral::Spi(bus), ResourceRequest::Spi { .. }) => bus.open(app, chip_select),
            (Peripheral::Adc(adc), ResourceRequest::Adc { .. }) => adc.open(app),
            (Peripheral::Pwm(pwm), ResourceRequest::Pwm { .. }) => pwm.open(app),
            (found, request) => Err(Denial::UnknownName(format!(
                "`{peripheral}` is {} on the simulated board, not a {} peripheral",
                found.what(),
                request.capability()
            ))),
        }
    }

    /// Everything observable, for the control API (`GET /sim`).
    pub fn view(&self) -> BoardView {
        let mut view = BoardView {
            gpio: Vec::new(),
            uart: Vec::new(),
            i2c: Vec::new(),
            spi: Vec::new(),
            adc: Vec::new(),
            pwm: Vec::new(),
        };
        let in_order = self.inner.order.iter();
        for peripheral in in_order.filter_map(|name| self.inner.peripherals.get(name)) {
            match peripheral {
                Peripheral::Gpio(line) => view.gpio.push(line.view()),
                Peripheral::Uart(uart) => view.uart.push(uart.view()),
                Peripheral::I2c(bus) => view.i2c.push(bus.view()),
                Peripheral::Spi(bus) => view.spi.push(bus.view()),
                Peripheral::Adc(adc) => view.adc.push(adc.view()),
                Peripheral::Pwm(pwm) => view.pwm.push(pwm.view()),
            }
        }
        view
    }

    /// A GPIO line's level: what the app drives, else what the outside world holds.
    pub fn gpio_level(&self, peripheral: &str) -> Result<bool, SimBoardError> {
        match self.get(peripheral)? {
            Peripheral::Gpio(line) => Ok(line.level()),
            other => Err(wrong_kind(peripheral, "a GPIO line", other)),
        }
    }

    /// The outside world holds an input line at `high` (a button): a change is an edge, which
    /// wakes the app's edge waits. Refused on a line an app drives as an output.
    pub fn gpio_drive(&self, peripheral: &str, high: bool) -> Result<(), SimBoardError> {
        match self.get(peripheral)? {
            Peripheral::Gpio(line) => line.drive(high),
            other => Err(wrong_kind(peripheral, "a GPIO line", other)),
        }
    }

    /// The path of a UART's exposed end (a pty slave, e.g. `/dev/pts/7`) for a terminal.
    pub fn uart_path(&self, peripheral: &str) -> Result<PathBuf, SimBoardError> {
        match self.get(peripheral)? {
            Peripheral::Uart(uart) => Ok(uart.path().to_path_buf()),
            other => Err(wrong_kind(peripheral, "a UART", other)),
        }
    }

    /// Sets the raw value an ADC channel samples (0 until set); at most 2^bits - 1.
    pub fn adc_set(&self, peripheral: &str, channel: u32, raw: u32) -> Result<(), SimBoardError> {
        match self.get(peripheral)? {
            Peripheral::Adc(adc) => adc.set(channel, raw),
            other => Err(wrong_kind(peripheral, "an ADC", other)),
        }
    }

    /// The state an app last applied to a PWM channel (`None`: never applied).
    pub fn pwm_state(
        &self,
        peripheral: &str,
        channel: u32,
    ) -> Result<Option<PwmState>, SimBoardError> {
        match self.get(peripheral)? {
            Peripheral::Pwm(pwm) => pwm.state(channel),
            other => Err(wrong_kind(peripheral, "a PWM controller", other)),
        }
    }

    /// Sets what an emulated sensor senses: on an I2C bus `address_or_cs` is the device's
    /// address, on an SPI bus its chip select. Quantities: `tmp102` `temperature_c`;
    /// `lsm6ds3` `accel_x_g`, `accel_y_g`, `accel_z_g`, `gyro_x_dps`, `gyro_y_dps`,
    /// `gyro_z_dps`, `temperature_c`. Values beyond a sensor's range saturate its output.
    pub fn sensor_set(
        &self,
        peripheral: &str,
        address_or_cs: u16,
        quantity: &str,
        value: f64,
    ) -> Result<(), SimBoardError> {
        match self.get(peripheral)? {
            Peripheral::I2c(bus) | Peripheral::Spi(bus) => {
                bus.sensor_set(address_or_cs, quantity, value)
            }
            other => Err(wrong_kind(peripheral, "an I2C or SPI bus", other)),
        }
    }

    /// The recent transactions on an I2C or SPI bus, oldest first (at most [`BUS_LOG`]).
    pub fn bus_log(&self, peripheral: &str) -> Result<Vec<BusEvent>, SimBoardError> {
        match self.get(peripheral)? {
            Peripheral::I2c(bus) | Peripheral::Spi(bus) => Ok(bus.log()),
            other => Err(wrong_kind(peripheral, "an I2C or SPI bus", other)),
        }
    }

    fn get(&self, peripheral: &str) -> Result<&Peripheral, SimBoardError> {
        self.inner
            .peripherals
            .get(peripheral)
            .ok_or_else(|| SimBoardError::UnknownPeripheral(peripheral.to_owned()))
    }
}

fn wrong_kind(peripheral: &str, expected: &'static str, actual: &Peripheral) -> SimBoardError {
    SimBoardError::WrongKind {
        peripheral: peripheral.to_owned(),
        expected,
        actual: actual.what(),
    }
}
