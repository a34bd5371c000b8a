//! A GPIO line (`Backend::Gpio` → `Access::GpioLine`): the chip `/dev/gpiochipN` is opened
//! only to make one v2 line request for exactly the one line, and closed; the line request's
//! descriptor is what the worker gets, and the line is held until the worker closes it.
//!
//! What the worker assumes of the request (`host-api/src/linux/gpio.rs`): one line (bit 0 of
//! every value mask), no `ACTIVE_LOW`, an output already driven to its initial level, or an
//! input (an in-out pin starts as one) without edge detection, which the worker switches on at
//! the first wait.
//!
//! **Levels are physical**, as the WIT says (`high` drives the line high), whatever the board
//! file's `ActiveLow`: the request never carries `GPIO_V2_LINE_FLAG_ACTIVE_LOW`, and the kernel
//! then reports and drives raw levels even if the device tree marks the line active-low. Were
//! the flag set here, the worker's first direction change or edge wait (`SET_CONFIG`, which
//! restates every flag, without it) would silently invert the line's sense mid-run. The
//! board's `ActiveLow` stays a description of the wiring (an LED lit by driving low).

use std::fs::OpenOptions;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use warden_ipc::broker::{Access, Denial, GpioMode};

use crate::sys::{self, GpioLineConfig, GpioLineRequest};
use crate::{GPIO_CONSUMER, Roots, describe, kernel_name, open_file};

pub(crate) fn open(
    roots: &Roots,
    chip: &str,
    line: u32,
    mode: GpioMode,
) -> Result<(Access, Vec<OwnedFd>), Denial> {
    let path: PathBuf = roots.dev.join(kernel_name(chip, "GPIO chip")?);
    // Read-write as libgpiod opens it; close-on-exec (std's default) so no child of the
    // supervisor inherits the chip.
    let chip_fd = open_file(OpenOptions::new().read(true).write(true), &path)?;
    let mut request = line_request(line, mode);
    let fd = sys::gpio_get_line(chip_fd.as_fd(), &mut request).map_err(|e| {
        Denial::Io(format!(
            "cannot request line {line} of {} (GPIO_V2_GET_LINE_IOCTL): {}",
            path.display(),
            describe(&e)
        ))
    })?;
    // The chip's descriptor is closed here; the line request stays valid without it.
    drop(chip_fd);
    Ok((Access::GpioLine, vec![fd]))
}

/// The request for `line` as `mode` asks: see the module documentation.
fn line_request(line: u32, mode: GpioMode) -> GpioLineRequest {
    let config = match mode {
        GpioMode::Output { initial_high } => GpioLineConfig::output(initial_high),
        GpioMode::Input | GpioMode::InOut => GpioLineConfig::input(),
    };
    GpioLineRequest::one_line(line, GPIO_CONSUMER, config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::{
        GPIO_V2_LINE_FLAG_ACTIVE_LOW, GPIO_V2_LINE_FLAG_INPUT, GPIO_V2_LINE_FLAG_OUTPUT,
    };

    #[test]
    fn outputs_start_at_their_physical_level_and_inputs_without_edges() {
        for high in [false, true] {
            let request = line_request(17, GpioMode::Output { initial_high: high });
            assert_eq!(request.lines(), &[17]);
            assert_eq!(request.consumer(), GPIO_CONSUMER.as_bytes());
            assert_eq!(request.config().flags(), GPIO_V2_LINE_FLAG_OUTPUT);
            assert_eq!(request.config().output_value(), Some(high));
        }
        for mode in [GpioMode::Input, GpioMode::InOut] {
            let request = line_request(4, mode);
            assert_eq!(request.lines(), &[4]);
            // No edge flags: the worker turns edge detection on at its first wait.
            assert_eq!(request.config().flags(), GPIO_V2_LINE_FLAG_INPUT);
            assert_eq!(request.config().output_value(), None);
            assert_eq!(request.config().flags() & GPIO_V2_LINE_FLAG_ACTIVE_LOW, 0);
        }
    }
}
