//! The supervisor side of the Linux device accesses (decision 1: capability = file
//! descriptor). Given the backend a board file names for a granted peripheral, [`open`] opens
//! exactly that resource, sets it up as the board file says, and returns the descriptors and
//! the [`Access`] the worker uses them with:
//!
//! | backend | descriptors | set up here |
//! |---|---|---|
//! | `Gpio` | a GPIO v2 line request holding the one line | output driven to its initial level, or input; consumer `warden` |
//! | `Uart` | the tty | raw, baud, data bits, parity, stop bits, flow control; read back and checked |
//! | `I2c` | `/dev/i2c-N` | checked to do plain I2C (`I2C_RDWR`) |
//! | `Spi` | `/dev/spidevB.C` | mode, clock, 8-bit words |
//! | `Adc` | `in_voltageN_raw` per channel, read-only | — |
//! | `Pwm` | `period`, `duty_cycle`, `polarity`, `enable` per channel, write-only | the channel exported |
//!
//! Every failure is a [`Denial`] whose message names the path and the errno; nothing here
//! panics. The ioctls, and with them every `unsafe` block, are in one module (`sys`).
//! Decisions and what the kernel does instead of us: `docs/broker.md`, "Linux backends".
#![deny(unsafe_code)]

mod gpio;
mod i2c;
mod iio;
mod pwm;
pub mod rpmsg;
mod spi;
mod sys;
mod tty;

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use warden_ipc::broker::{Access, Denial, ResourceRequest};
use warden_policy::board::Backend;

pub use pwm::EXPORT_WAIT;

/// Where the kernel's device nodes and sysfs are: `/dev` and `/sys` on a device; a temporary
/// tree laid out the same way in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roots {
    /// Device nodes: `gpiochipN`, `i2c-N`, `spidevB.C`; a UART's `/dev/…` path is taken
    /// relative to it.
    pub dev: PathBuf,
    /// sysfs: `bus/iio/devices/…`, `class/pwm/…`.
    pub sys: PathBuf,
}

impl Default for Roots {
    fn default() -> Self {
        Roots {
            dev: PathBuf::from("/dev"),
            sys: PathBuf::from("/sys"),
        }
    }
}

/// The label the kernel shows as a GPIO line's consumer (`gpioinfo`) while a worker holds it.
pub const GPIO_CONSUMER: &str = "warden";

/// Opens `backend`'s resource as `request` asks, ready for the worker: the [`Access`] and its
/// descriptors, in the order [`Access`] documents.
///
/// A request of a kind the backend does not serve (a UART asked for as a GPIO, or a simulated
/// or real-time-core backend, which are not this crate's) is `unknown-name`; a board value
/// the kernel has no setting for (a baud rate termios cannot set) is `invalid-argument`; every
/// failure of the device is `io`, naming the path and the errno.
pub fn open(
    backend: &Backend,
    request: &ResourceRequest,
    roots: &Roots,
) -> Result<(Access, Vec<OwnedFd>), Denial> {
    match (backend, request) {
        (Backend::Gpio { chip, line, .. }, ResourceRequest::Gpio { mode, .. }) => {
            // `active_low` is deliberately not applied: the app's levels are physical (see
            // `gpio`).
            gpio::open(roots, chip, *line, *mode)
        }
        (Backend::Uart { path, settings }, ResourceRequest::Uart { .. }) => {
            tty::open(roots, path, settings)
        }
        (Backend::I2c { bus, .. }, ResourceRequest::I2c { .. }) => i2c::open(roots, *bus),
        (
            Backend::Spi {
                bus,
                chip_select,
                max_speed_hz,
                mode,
            },
            ResourceRequest::Spi { .. },
        ) => spi::open(roots, *bus, *chip_select, *max_speed_hz, *mode),
        (
            Backend::Adc {
                iio_device,
                channels,
                reference_millivolts,
                bits,
            },
            ResourceRequest::Adc { .. },
        ) => iio::open(roots, iio_device, channels, *reference_millivolts, *bits),
        (Backend::Pwm { chip, channels }, ResourceRequest::Pwm { .. }) => {
            pwm::open(roots, chip, channels)
        }
        _ => Err(Denial::UnknownName(format!(
            "{} is backed by {} ({backend}), which does not serve a {} request",
            request.describe(),
            backend.key(),
            request.capability()
        ))),
    }
}

/// A failed OS call on `path`: what was being done, the path, and the errno by name.
fn os_error(doing: &str, path: &Path, error: &io::Error) -> Denial {
    Denial::Io(format!("{doing} {}: {}", path.display(), describe(error)))
}

/// An error as `ENOENT: No such file or directory` when it carries an errno.
fn describe(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).to_string(),
        None => error.to_string(),
    }
}

/// A kernel object name from the board file (`gpiochip0`, `iio:device1`, `pwmchip2`) that is
/// safe to join to a root: one path segment, never `.` or `..`. The board file was validated at
/// install; this guards the crate's own API as well.
fn kernel_name<'n>(name: &'n str, what: &str) -> Result<&'n str, Denial> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    if plain {
        Ok(name)
    } else {
        Err(Denial::InvalidArgument(format!(
            "{name:?} is not a {what} name"
        )))
    }
}

/// Opens `path` with `options`, or says which path failed and why.
fn open_file(options: &std::fs::OpenOptions, path: &Path) -> Result<OwnedFd, Denial> {
    options
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| os_error("cannot open", path, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_segment_kernel_names_are_joined() {
        assert!(kernel_name("gpiochip0", "GPIO chip").is_ok());
        assert!(kernel_name("iio:device3", "IIO device").is_ok());
        for bad in ["", ".", "..", "../x", "a/b", "gpio\0chip"] {
            assert!(
                matches!(
                    kernel_name(bad, "GPIO chip"),
                    Err(Denial::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn errors_name_the_path_and_the_errno() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        let Denial::Io(text) = os_error("cannot open", Path::new("/dev/gpiochip9"), &e) else {
            panic!("not an io denial");
        };
        assert_eq!(
            text,
            "cannot open /dev/gpiochip9: ENOENT: No such file or directory"
        );
    }
}
