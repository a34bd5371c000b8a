//! An SPI device (`Backend::Spi` → `Access::SpiDev`): `/dev/spidevB.C`, set up as the board
//! file says before the worker gets it, since the worker's transfers name neither mode, clock
//! nor word size (they use the device's):
//!
//! - `Mode` 0–3 replaces only the CPOL and CPHA bits of the device's mode word, read first:
//!   the rest (`SPI_CS_HIGH`, `SPI_LSB_FIRST`, dual/quad lines …) is the device tree's, and an
//!   8-bit `SPI_IOC_WR_MODE` would clear it. Without `Mode` the device's mode stays.
//! - `MaxSpeedHz` becomes the device's clock (`SPI_IOC_WR_MAX_SPEED_HZ`); without it the
//!   device tree's `spi-max-frequency` stays.
//! - Words are 8 bits, always: the worker's buffers are bytes.
//!
//! These settings belong to the spidev device, not the descriptor; they are set afresh at
//! every grant, so an earlier holder cannot leave the device in another mode.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, OwnedFd};

use warden_ipc::broker::{Access, Denial};

use crate::sys::{self, SPI_MODE_X_MASK};
use crate::{Roots, describe, open_file};

pub(crate) fn open(
    roots: &Roots,
    bus: u32,
    chip_select: u32,
    max_speed_hz: Option<u64>,
    mode: Option<u8>,
) -> Result<(Access, Vec<OwnedFd>), Denial> {
    let path = roots.dev.join(format!("spidev{bus}.{chip_select}"));
    let mode = mode
        .map(|m| {
            let m = u32::from(m);
            if m & !SPI_MODE_X_MASK == 0 {
                Ok(m)
            } else {
                Err(Denial::InvalidArgument(format!(
                    "{}: SPI mode {m} (expected 0 to 3)",
                    path.display()
                )))
            }
        })
        .transpose()?;
    let speed = max_speed_hz
        .map(|hz| {
            u32::try_from(hz).map_err(|_| {
                Denial::InvalidArgument(format!("{}: a clock of {hz} Hz", path.display()))
            })
        })
        .transpose()?;
    let fd = open_file(OpenOptions::new().read(true).write(true), &path)?;
    let failed = |call: &str, e: std::io::Error| {
        Denial::Io(format!(
            "cannot set up {} ({call}): {}",
            path.display(),
            describe(&e)
        ))
    };
    if let Some(mode) = mode {
        let current = sys::spi_read_mode(fd.as_fd()).map_err(|e| failed("SPI_IOC_RD_MODE32", e))?;
        sys::spi_write_mode(fd.as_fd(), (current & !SPI_MODE_X_MASK) | mode)
            .map_err(|e| failed("SPI_IOC_WR_MODE32", e))?;
    }
    sys::spi_write_bits_per_word(fd.as_fd(), 8)
        .map_err(|e| failed("SPI_IOC_WR_BITS_PER_WORD", e))?;
    if let Some(hz) = speed {
        sys::spi_write_max_speed_hz(fd.as_fd(), hz)
            .map_err(|e| failed("SPI_IOC_WR_MAX_SPEED_HZ", e))?;
    }
    Ok((Access::SpiDev, vec![fd]))
}
