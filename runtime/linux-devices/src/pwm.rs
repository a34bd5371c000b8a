//! PWM channels (`Backend::Pwm` → `Access::SysfsPwm`): for each channel of the board file, in
//! its order, `/sys/class/pwm/<pwmchipN>/pwm<C>/{period,duty_cycle,polarity,enable}`, opened
//! write-only in that order (the worker writes them by positioned writes at offset 0).
//!
//! A channel is exported first if its directory is missing (`C` written to the chip's
//! `export`); the kernel creates the directory during that write, and the wait after it
//! ([`EXPORT_WAIT`]) only covers a slower kernel or a race with another exporter. Channels stay
//! exported when the worker is done: sysfs has no owner to tie an export to, and the next
//! grant finds the channel ready. Its state (period, duty cycle, polarity, enable) is left as
//! the last holder set it; the worker states all four before a channel runs for it.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use warden_ipc::broker::{Access, Denial};

use crate::{Roots, kernel_name, open_file, os_error};

/// How long an exported channel's directory may take to appear.
pub const EXPORT_WAIT: Duration = Duration::from_millis(500);

/// The files of one channel, in the order of the grant's descriptors.
const CHANNEL_FILES: [&str; 4] = ["period", "duty_cycle", "polarity", "enable"];

pub(crate) fn open(
    roots: &Roots,
    chip: &str,
    channels: &[u32],
) -> Result<(Access, Vec<OwnedFd>), Denial> {
    let chip_dir = roots
        .sys
        .join("class/pwm")
        .join(kernel_name(chip, "PWM chip")?);
    let mut fds = Vec::new();
    for &channel in channels {
        let dir = chip_dir.join(format!("pwm{channel}"));
        if !present(&dir)? {
            export(&chip_dir, channel, &dir)?;
        }
        for file in CHANNEL_FILES {
            fds.push(open_file(OpenOptions::new().write(true), &dir.join(file))?);
        }
    }
    Ok((
        Access::SysfsPwm {
            channels: channels.to_vec(),
        },
        fds,
    ))
}

/// Whether a channel's directory is there.
fn present(dir: &Path) -> Result<bool, Denial> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(true),
        Ok(_) => Err(Denial::Io(format!("{} is not a directory", dir.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(os_error("cannot look at", dir, &e)),
    }
}

/// Exports `channel` of the chip at `chip_dir` and waits for its directory `dir`.
fn export(chip_dir: &Path, channel: u32, dir: &Path) -> Result<(), Denial> {
    let path = chip_dir.join("export");
    // One write of the whole number: a sysfs attribute takes its value in one write.
    let written = OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut file| file.write_all(channel.to_string().as_bytes()));
    match written {
        Ok(()) => {}
        // Exported by someone else since we looked: the channel is there, which is all we need.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) && present(dir)? => return Ok(()),
        Err(e) => {
            return Err(os_error(
                &format!("cannot export channel {channel} by writing to"),
                &path,
                &e,
            ));
        }
    }
    let deadline = Instant::now() + EXPORT_WAIT;
    loop {
        if present(dir)? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Denial::Io(format!(
                "{} did not appear within {} ms of exporting channel {channel} through {}: {}",
                dir.display(),
                EXPORT_WAIT.as_millis(),
                path.display(),
                nix::errno::Errno::ETIMEDOUT
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
