//! A tty (`Access::Tty`): a real UART or the simulated board's pty, with the board file's line
//! settings already applied by the supervisor. The same calls on both: `write` until all is
//! written, `ppoll` then `read`, and `tcdrain`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Instant;

use rustix::event::PollFlags;

use super::wait_for;

#[derive(Debug)]
pub(crate) struct Tty {
    /// Shared so a write can use it while the app's memory is borrowed (`uart`).
    fd: Arc<OwnedFd>,
}

/// Writes all of `data` to `fd`, waiting for room if the tty is non-blocking.
pub(crate) fn write_all_to(fd: &OwnedFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = data.get(n..).unwrap_or_default(),
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                wait_for(fd.as_fd(), PollFlags::OUT, None)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl Tty {
    pub(crate) fn new(fd: OwnedFd) -> Tty {
        Tty { fd: Arc::new(fd) }
    }

    /// The descriptor, shared.
    pub(crate) fn shared_fd(&self) -> Arc<OwnedFd> {
        Arc::clone(&self.fd)
    }

    /// Writes all of `data`, waiting for room if the tty is non-blocking.
    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        write_all_to(&self.fd, data)
    }

    /// What arrived, at most `max` bytes, waiting until `deadline` for the first; empty if
    /// nothing came. A hang-up (the other end closed) is an error, not an endless stream of
    /// empty reads.
    pub(crate) fn read(&mut self, max: usize, deadline: Instant) -> io::Result<Vec<u8>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; max];
        loop {
            let Some(ready) = wait_for(self.fd.as_fd(), PollFlags::IN, Some(deadline))? else {
                return Ok(Vec::new());
            };
            if !ready.contains(PollFlags::IN) && ready.intersects(PollFlags::HUP | PollFlags::ERR) {
                return Err(io::Error::other("the line hung up"));
            }
            match rustix::io::read(&self.fd, &mut buf) {
                Ok(0) => return Err(io::Error::other("the line hung up")),
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                // Readable, then not (another reader, or a spurious wake-up): wait again.
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Waits until everything written has been sent (`tcdrain`: `ioctl(TCSBRK, 1)`).
    pub(crate) fn drain(&mut self) -> io::Result<()> {
        loop {
            match rustix::termios::tcdrain(&self.fd) {
                Err(rustix::io::Errno::INTR) => {}
                result => return result.map_err(io::Error::from),
            }
        }
    }
}
