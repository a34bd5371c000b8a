//! The OS side of device access: descriptors the broker opened on Linux (a tty, a GPIO line
//! request, an i2c-dev bus, a spidev device, IIO and sysfs PWM files), used with exactly the
//! calls the worker's `worker_devices` seccomp profile allows. The ioctls themselves, and with
//! them every `unsafe` block of the crate, are in [`sys`].

pub(crate) mod gpio;
pub(crate) mod i2c;
pub(crate) mod iio;
pub(crate) mod pwm;
pub(crate) mod spi;
pub(crate) mod sys;
pub(crate) mod tty;

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

/// Waits until `fd` has one of `events`, or `deadline` passes (`None`: forever). Returns the
/// events that came, or `None` at the deadline. `ppoll` is never restarted after a signal, and
/// the watchdog's SIGALRM arrives every tick while the host waits, so an interrupted wait
/// resumes with what is left of the time.
pub(crate) fn wait_for(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Option<Instant>,
) -> io::Result<Option<PollFlags>> {
    loop {
        let left = deadline.map(|d| timespec(d.saturating_duration_since(Instant::now())));
        let mut fds = [PollFd::from_borrowed_fd(fd, events)];
        match rustix::event::poll(&mut fds, left.as_ref()) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(fds[0].revents())),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The deadline `timeout_ms` from now.
pub(crate) fn deadline_in(timeout_ms: u32) -> Instant {
    Instant::now() + Duration::from_millis(u64::from(timeout_ms))
}

// Nanoseconds are a 64-bit `long` here but 32-bit on armv7, where the conversion can fail.
#[allow(clippy::unnecessary_fallible_conversions)]
fn timespec(left: Duration) -> Timespec {
    Timespec {
        tv_sec: left.as_secs().try_into().unwrap_or(i64::MAX),
        tv_nsec: rustix::event::Nsecs::try_from(left.subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;

    #[test]
    fn a_wait_ends_at_its_deadline_and_reports_readiness() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap_or_else(|e| panic!("{e}"));
        let started = Instant::now();
        let waited = wait_for(
            a.as_fd(),
            PollFlags::IN,
            Some(started + Duration::from_millis(30)),
        );
        assert!(matches!(waited, Ok(None)), "{waited:?}");
        assert!(started.elapsed() >= Duration::from_millis(30));
        std::io::Write::write_all(&mut &b, b"x").unwrap_or_else(|e| panic!("{e}"));
        let ready = wait_for(a.as_fd(), PollFlags::IN, None);
        assert!(
            matches!(ready, Ok(Some(f)) if f.contains(PollFlags::IN)),
            "{ready:?}"
        );
    }
}
