//! The emulated devices on simulated I2C and SPI buses, by the model names board files use
//! (`warden_policy::board::SIM_I2C_MODELS`, `SIM_SPI_MODELS`).

mod at24c02;
mod lsm6ds3;
mod tmp102;

use at24c02::At24c02;
use lsm6ds3::{Lsm6ds3, SpiPhase};
use tmp102::Tmp102;

/// One emulated device.
#[derive(Debug)]
pub(crate) enum Device {
    Tmp102(Tmp102),
    Lsm6ds3(Lsm6ds3),
    At24c02(At24c02),
    /// MISO wired to MOSI: every byte clocked out comes back in the same slot.
    SpiLoopback,
}

/// Models an I2C bus can carry.
pub(crate) const I2C_MODELS: &[&str] = &["tmp102", "lsm6ds3", "at24c02"];
/// Models an SPI bus can carry.
pub(crate) const SPI_MODELS: &[&str] = &["lsm6ds3", "loopback"];

/// Where a device is in one SPI transaction (chip select held).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpiCursor(SpiPhase);

impl SpiCursor {
    pub(crate) fn new() -> SpiCursor {
        SpiCursor(SpiPhase::Command)
    }
}

impl Device {
    /// A fresh device of `model` for an I2C bus, or `None` if the simulator has no such model.
    pub(crate) fn i2c(model: &str) -> Option<Device> {
        match model {
            "tmp102" => Some(Device::Tmp102(Tmp102::new())),
            "lsm6ds3" => Some(Device::Lsm6ds3(Lsm6ds3::new())),
            "at24c02" => Some(Device::At24c02(At24c02::new())),
            _ => None,
        }
    }

    /// A fresh device of `model` for an SPI bus, or `None` if the simulator has no such model.
    pub(crate) fn spi(model: &str) -> Option<Device> {
        match model {
            "lsm6ds3" => Some(Device::Lsm6ds3(Lsm6ds3::new())),
            "loopback" => Some(Device::SpiLoopback),
            _ => None,
        }
    }

    pub(crate) fn model(&self) -> &'static str {
        match self {
            Device::Tmp102(_) => "tmp102",
            Device::Lsm6ds3(_) => "lsm6ds3",
            Device::At24c02(_) => "at24c02",
            Device::SpiLoopback => "loopback",
        }
    }

    /// The names [`Device::set`] takes.
    pub(crate) fn quantity_names(&self) -> &'static [&'static str] {
        match self {
            Device::Tmp102(_) => Tmp102::QUANTITIES,
            Device::Lsm6ds3(_) => Lsm6ds3::QUANTITIES,
            Device::At24c02(_) | Device::SpiLoopback => &[],
        }
    }

    /// The current value of every quantity, for the view.
    pub(crate) fn quantities(&self) -> Vec<(&'static str, f64)> {
        match self {
            Device::Tmp102(d) => d.quantities(),
            Device::Lsm6ds3(d) => d.quantities(),
            Device::At24c02(_) | Device::SpiLoopback => Vec::new(),
        }
    }

    /// Sets what the device senses (a finite value); `false` if it has no such quantity.
    /// Values beyond the device's range saturate its output, as a real sensor's would.
    pub(crate) fn set(&mut self, quantity: &str, value: f64) -> bool {
        match self {
            Device::Tmp102(d) => d.set(quantity, value),
            Device::Lsm6ds3(d) => d.set(quantity, value),
            Device::At24c02(_) | Device::SpiLoopback => false,
        }
    }

    /// The write part of an I2C transaction (after a start or repeated start).
    pub(crate) fn i2c_write(&mut self, bytes: &[u8]) {
        match self {
            Device::Tmp102(d) => d.write(bytes),
            Device::Lsm6ds3(d) => d.i2c_write(bytes),
            Device::At24c02(d) => d.write(bytes),
            Device::SpiLoopback => {}
        }
    }

    /// The read part of an I2C transaction.
    pub(crate) fn i2c_read(&mut self, len: usize) -> Vec<u8> {
        match self {
            Device::Tmp102(d) => d.read(len),
            Device::Lsm6ds3(d) => d.i2c_read(len),
            Device::At24c02(d) => d.read(len),
            Device::SpiLoopback => vec![0xFF; len],
        }
    }

    /// One full-duplex SPI byte.
    pub(crate) fn spi_byte(&mut self, cursor: &mut SpiCursor, mosi: u8) -> u8 {
        match self {
            Device::Lsm6ds3(d) => d.spi_byte(&mut cursor.0, mosi),
            Device::SpiLoopback => mosi,
            // Not SPI parts: nothing drives MISO, which the pull-up holds high.
            Device::Tmp102(_) | Device::At24c02(_) => 0xFF,
        }
    }
}
