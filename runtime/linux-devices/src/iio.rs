//! ADC channels (`Backend::Adc` → `Access::IioAdc`): each channel's
//! `/sys/bus/iio/devices/<iio:deviceN>/in_voltage<N>_raw`, read-only, in the board file's
//! channel order. The worker samples by a positioned read from offset 0 and scales the raw
//! value with the board's `Bits` and reference voltage, which travel in the grant (the IIO
//! `_scale` attribute is not read: the board file is the reviewed source).

use std::fs::OpenOptions;
use std::os::fd::OwnedFd;

use warden_ipc::broker::{Access, Denial};

use crate::{Roots, kernel_name, open_file};

pub(crate) fn open(
    roots: &Roots,
    iio_device: &str,
    channels: &[u32],
    reference_millivolts: u64,
    bits: u8,
) -> Result<(Access, Vec<OwnedFd>), Denial> {
    let reference_microvolts = reference_millivolts
        .checked_mul(1000)
        .and_then(|uv| u32::try_from(uv).ok())
        .ok_or_else(|| {
            Denial::InvalidArgument(format!(
                "{iio_device}: a reference of {reference_millivolts} mV"
            ))
        })?;
    let device = roots
        .sys
        .join("bus/iio/devices")
        .join(kernel_name(iio_device, "IIO device")?);
    let mut fds = Vec::new();
    for channel in channels {
        let path = device.join(format!("in_voltage{channel}_raw"));
        fds.push(open_file(OpenOptions::new().read(true), &path)?);
    }
    Ok((
        Access::IioAdc {
            channels: channels.to_vec(),
            bits: u32::from(bits),
            reference_microvolts,
        },
        fds,
    ))
}
