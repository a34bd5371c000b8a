//! A sysfs PWM channel (`Access::SysfsPwm`): its `period`, `duty_cycle`, `polarity` and
//! `enable` files, open write-only, written by positioned writes at offset 0 (a sysfs
//! attribute takes one whole value per write from its start).
//!
//! The kernel refuses a duty cycle longer than the period at every moment, and most drivers
//! refuse a polarity change while the channel runs. So: the polarity (with the channel
//! stopped first) only when it changes or is unknown, then the duty cycle before the period —
//! unless the new duty cycle is longer than the old period, which the kernel answers `EINVAL`,
//! and then the period first — and last `enable`.

use std::io;
use std::os::fd::OwnedFd;

#[derive(Debug)]
pub(crate) struct SysfsChannel {
    period: OwnedFd,
    duty_cycle: OwnedFd,
    polarity: OwnedFd,
    enable: OwnedFd,
    /// The polarity last written (`true`: inversed); unknown at first.
    inversed: Option<bool>,
}

impl SysfsChannel {
    /// The channel from its four files, in the grant's order.
    pub(crate) fn new([period, duty_cycle, polarity, enable]: [OwnedFd; 4]) -> SysfsChannel {
        SysfsChannel {
            period,
            duty_cycle,
            polarity,
            enable,
            inversed: None,
        }
    }

    pub(crate) fn apply(
        &mut self,
        period_ns: u32,
        duty_ns: u32,
        inversed: bool,
        enabled: bool,
    ) -> io::Result<()> {
        if self.inversed != Some(inversed) {
            write(&self.enable, "0")?;
            write(&self.polarity, if inversed { "inversed" } else { "normal" })?;
            self.inversed = Some(inversed);
        }
        match write(&self.duty_cycle, &duty_ns.to_string()) {
            Ok(()) => write(&self.period, &period_ns.to_string())?,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                write(&self.period, &period_ns.to_string())?;
                write(&self.duty_cycle, &duty_ns.to_string())?;
            }
            Err(e) => return Err(e),
        }
        write(&self.enable, if enabled { "1" } else { "0" })
    }
}

fn write(fd: &OwnedFd, value: &str) -> io::Result<()> {
    loop {
        match rustix::io::pwrite(fd, value.as_bytes(), 0) {
            Ok(n) if n == value.len() => return Ok(()),
            Ok(n) => {
                return Err(io::Error::other(format!(
                    "wrote {n} of {} bytes of {value:?}",
                    value.len()
                )));
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn files() -> ([OwnedFd; 4], [std::fs::File; 4]) {
        let make = || tempfile::tempfile().unwrap_or_else(|e| panic!("{e}"));
        let files = [make(), make(), make(), make()];
        let clones = files
            .each_ref()
            .map(|f| f.try_clone().unwrap_or_else(|e| panic!("{e}")));
        (files.map(OwnedFd::from), clones)
    }

    fn text(file: &mut std::fs::File) -> String {
        let mut s = String::new();
        std::io::Seek::rewind(file).unwrap_or_else(|e| panic!("{e}"));
        file.read_to_string(&mut s)
            .unwrap_or_else(|e| panic!("{e}"));
        s
    }

    #[test]
    fn a_state_is_written_to_the_four_files() {
        let (fds, mut files) = files();
        let mut channel = SysfsChannel::new(fds);
        channel
            .apply(20_000, 5_000, true, true)
            .unwrap_or_else(|e| panic!("{e}"));
        let [period, duty, polarity, enable] = &mut files;
        assert_eq!(text(period), "20000");
        assert_eq!(text(duty), "5000");
        assert_eq!(text(polarity), "inversed");
        assert_eq!(text(enable), "1");
    }
}
