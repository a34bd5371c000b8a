//! Simulated UARTs: two ptys per UART, bridged by a thread.
//!
//! ```text
//!  app (worker)            board (this process)                         developer
//!  app pty slave ◀──▶ app pty master ◀── bridge thread ──▶ exposed pty master ◀──▶ exposed slave
//!  (a dup per open:                                                        (`uart_path`, e.g.
//!   raw, board settings)                                                     /dev/pts/7)
//! ```
//!
//! The app gets a real tty, so the host API uses the same code as on a real UART. The
//! developer opens the exposed slave with any terminal program. With `Loopback`, TX is wired
//! to RX: what the app writes comes back to the app, and is still copied to the exposed end
//! (as a probe on the TX line would show it); what the developer writes is dropped, since RX
//! listens to TX only.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{
    self, BaudRate, ControlFlags, FlushArg, InputFlags, SetArg, Termios, cfmakeraw, cfsetspeed,
    tcflush, tcgetattr, tcsetattr,
};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use warden_ipc::broker::{Access, Denial};
use warden_policy::board::{FlowControl, Parity, SerialSettings};

use crate::SimBoardError;
use crate::serve::lock;

/// What the app transmitted most recently, kept for [`crate::SimBoard::view`].
pub const TX_HISTORY: usize = 4096;

/// Bytes waiting for a slow reader in each direction; beyond this they are dropped (and
/// counted), as a UART with nobody listening drops them, instead of blocking the app.
const PENDING_MAX: usize = 64 * 1024;

/// One UART as [`crate::SimBoard::view`] shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UartView {
    pub peripheral: String,
    /// The exposed end a developer opens.
    pub path: PathBuf,
    pub baud: u64,
    pub data_bits: u8,
    /// `none`, `even` or `odd`.
    pub parity: String,
    pub stop_bits: u8,
    /// `none`, `rts_cts` or `xon_xoff`.
    pub flow_control: String,
    pub loopback: bool,
    /// The last (at most 4 KiB) bytes the app transmitted, as text (invalid UTF-8 replaced).
    pub transmitted: String,
    /// Bytes the app transmitted since the board started.
    pub transmitted_bytes: u64,
    /// Bytes the app was sent from the exposed end (or, in loopback, from its own TX).
    pub received_bytes: u64,
    /// Bytes dropped: a reader too slow, or the developer writing to a loopback UART.
    pub dropped_bytes: u64,
    /// The app whose worker opened the UART last (a tty gives no word when it is closed).
    pub last_opened_by: Option<String>,
    /// Why the bridge stopped, if it did.
    pub bridge_error: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Uart {
    peripheral: String,
    settings: SerialSettings,
    baud: BaudRate,
    loopback: bool,
    /// Dup'd for each worker that opens the UART.
    app_slave: OwnedFd,
    exposed_path: PathBuf,
    /// Held so that the exposed master never reads EIO ("no slave open") before a developer
    /// opens the path, or after they close it.
    _exposed_slave: OwnedFd,
    /// The write end of a pipe whose read end the bridge polls: dropping the board closes it,
    /// which ends the bridge thread.
    _stop: OwnedFd,
    shared: Arc<Mutex<Traffic>>,
}

#[derive(Debug, Default)]
struct Traffic {
    transmitted: VecDeque<u8>,
    transmitted_bytes: u64,
    received_bytes: u64,
    dropped_bytes: u64,
    last_opened_by: Option<String>,
    bridge_error: Option<String>,
}

impl Uart {
    pub(crate) fn new(
        peripheral: &str,
        settings: SerialSettings,
        loopback: bool,
    ) -> Result<Uart, SimBoardError> {
        let baud = baud_rate(settings.baud).ok_or_else(|| SimBoardError::Baud {
            peripheral: peripheral.to_owned(),
            baud: settings.baud,
        })?;
        let os = |what| move |e: nix::Error| SimBoardError::os(peripheral, what, e);
        let app = nix::pty::openpty(None, None).map_err(os("cannot open the app's pty"))?;
        let exposed = nix::pty::openpty(None, None).map_err(os("cannot open the exposed pty"))?;
        configure(app.slave.as_fd(), settings, baud).map_err(os("cannot set the app's line"))?;
        // The exposed end starts raw too: a default pty echoes, and an echo would send every
        // byte the app transmits straight back to it.
        configure(exposed.slave.as_fd(), SerialSettings::default(), baud)
            .map_err(os("cannot set the exposed line"))?;
        let exposed_path = nix::unistd::ttyname(exposed.slave.as_fd())
            .map_err(os("cannot name the exposed pty"))?;
        for master in [&app.master, &exposed.master] {
            rustix::io::ioctl_fionbio(master, true)
                .map_err(|e| SimBoardError::os(peripheral, "cannot make a pty non-blocking", e))?;
        }
        let (stop_read, stop_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| SimBoardError::os(peripheral, "cannot make the bridge's stop pipe", e))?;
        let shared = Arc::new(Mutex::new(Traffic::default()));
        let bridge = Bridge {
            app: app.master,
            exposed: exposed.master,
            stop: stop_read,
            loopback,
            mask: data_mask(settings.data_bits),
            traffic: Arc::clone(&shared),
            to_app: VecDeque::new(),
            to_exposed: VecDeque::new(),
        };
        std::thread::Builder::new()
            .name(format!("sim uart {peripheral}"))
            .spawn(move || bridge.run())
            .map_err(|e| SimBoardError::os(peripheral, "cannot start the bridge thread", e))?;
        Ok(Uart {
            peripheral: peripheral.to_owned(),
            settings,
            baud,
            loopback,
            app_slave: app.slave,
            exposed_path,
            _exposed_slave: exposed.slave,
            _stop: stop_write,
            shared,
        })
    }

    /// A descriptor of the app's pty slave, with the board's line settings applied afresh (an
    /// earlier worker may have changed them) and anything left over from before flushed.
    pub(crate) fn open(&self, app: &str) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let io = |what: &str, e: &dyn std::fmt::Display| {
            Denial::Io(format!("`{}`: {what}: {e}", self.peripheral))
        };
        configure(self.app_slave.as_fd(), self.settings, self.baud)
            .map_err(|e| io("cannot set the line", &e))?;
        tcflush(self.app_slave.as_fd(), FlushArg::TCIOFLUSH)
            .map_err(|e| io("cannot flush the line", &e))?;
        let fd = self
            .app_slave
            .try_clone()
            .map_err(|e| io("cannot duplicate the pty", &e))?;
        let baud =
            u32::try_from(self.settings.baud).map_err(|_| io("baud rate", &self.settings.baud))?;
        lock(&self.shared).last_opened_by = Some(app.to_owned());
        Ok((Access::Tty { baud }, vec![fd]))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.exposed_path
    }

    pub(crate) fn view(&self) -> UartView {
        let traffic = lock(&self.shared);
        let (front, back) = traffic.transmitted.as_slices();
        let mut bytes = Vec::with_capacity(front.len() + back.len());
        bytes.extend_from_slice(front);
        bytes.extend_from_slice(back);
        UartView {
            peripheral: self.peripheral.clone(),
            path: self.exposed_path.clone(),
            baud: self.settings.baud,
            data_bits: self.settings.data_bits,
            parity: match self.settings.parity {
                Parity::None => "none",
                Parity::Even => "even",
                Parity::Odd => "odd",
            }
            .to_owned(),
            stop_bits: self.settings.stop_bits,
            flow_control: match self.settings.flow_control {
                FlowControl::None => "none",
                FlowControl::RtsCts => "rts_cts",
                FlowControl::XonXoff => "xon_xoff",
            }
            .to_owned(),
            loopback: self.loopback,
            transmitted: String::from_utf8_lossy(&bytes).into_owned(),
            transmitted_bytes: traffic.transmitted_bytes,
            received_bytes: traffic.received_bytes,
            dropped_bytes: traffic.dropped_bytes,
            last_opened_by: traffic.last_opened_by.clone(),
            bridge_error: traffic.bridge_error.clone(),
        }
    }
}

/// Raw mode (no echo, no line editing, no output processing, no signals) with the board file's
/// baud rate, stop bits and flow control. Character size and parity stay 8N: the kernel's pty
/// forces `CS8` without `PARENB` whatever is asked (and glibc then reports `EINVAL`), so the
/// bridge emulates fewer data bits instead, and parity — which never fails on a wire without
/// noise — is only reported.
fn configure(fd: BorrowedFd<'_>, settings: SerialSettings, baud: BaudRate) -> nix::Result<()> {
    let mut t: Termios = tcgetattr(fd)?;
    cfmakeraw(&mut t);
    cfsetspeed(&mut t, baud)?;
    let c = &mut t.control_flags;
    c.remove(ControlFlags::CSIZE | ControlFlags::PARENB | ControlFlags::PARODD);
    c.remove(ControlFlags::CSTOPB | ControlFlags::CRTSCTS);
    c.insert(ControlFlags::CS8 | ControlFlags::CREAD | ControlFlags::CLOCAL);
    if settings.stop_bits == 2 {
        c.insert(ControlFlags::CSTOPB);
    }
    t.input_flags
        .remove(InputFlags::IXON | InputFlags::IXOFF | InputFlags::IXANY);
    match settings.flow_control {
        FlowControl::None => {}
        FlowControl::RtsCts => t.control_flags.insert(ControlFlags::CRTSCTS),
        FlowControl::XonXoff => t.input_flags.insert(InputFlags::IXON | InputFlags::IXOFF),
    }
    tcsetattr(fd, SetArg::TCSANOW, &t)
}

/// The bits of a byte a UART with `data_bits` carries: a 7-bit line cannot carry bit 7.
fn data_mask(data_bits: u8) -> u8 {
    match data_bits {
        5..=7 => (1u8 << data_bits) - 1,
        _ => 0xFF,
    }
}

/// The termios constant for a baud rate the board file accepts (its `STANDARD_BAUD_RATES`).
fn baud_rate(baud: u64) -> Option<BaudRate> {
    use termios::BaudRate as B;
    Some(match baud {
        1200 => B::B1200,
        1800 => B::B1800,
        2400 => B::B2400,
        4800 => B::B4800,
        9600 => B::B9600,
        19200 => B::B19200,
        38400 => B::B38400,
        57600 => B::B57600,
        115_200 => B::B115200,
        230_400 => B::B230400,
        460_800 => B::B460800,
        500_000 => B::B500000,
        576_000 => B::B576000,
        921_600 => B::B921600,
        1_000_000 => B::B1000000,
        1_152_000 => B::B1152000,
        1_500_000 => B::B1500000,
        2_000_000 => B::B2000000,
        2_500_000 => B::B2500000,
        3_000_000 => B::B3000000,
        3_500_000 => B::B3500000,
        4_000_000 => B::B4000000,
        _ => return None,
    })
}

/// The thread that moves bytes between the app's pty and the exposed one.
struct Bridge {
    app: OwnedFd,
    exposed: OwnedFd,
    stop: OwnedFd,
    loopback: bool,
    /// Applied to every byte in both directions (see [`data_mask`]).
    mask: u8,
    traffic: Arc<Mutex<Traffic>>,
    to_app: VecDeque<u8>,
    to_exposed: VecDeque<u8>,
}

impl Bridge {
    fn run(mut self) {
        if let Err(e) = self.pump() {
            lock(&self.traffic).bridge_error = Some(e);
        }
    }

    /// The first `n` bytes of `buf` as the line carries them.
    fn on_the_wire<'b>(&self, buf: &'b mut [u8], n: usize) -> &'b [u8] {
        let data = buf.get_mut(..n).unwrap_or_default();
        if self.mask != 0xFF {
            data.iter_mut().for_each(|b| *b &= self.mask);
        }
        data
    }

    /// Returns when the board is dropped (`Ok`) or a pty fails (`Err`, kept for the view).
    fn pump(&mut self) -> Result<(), String> {
        let mut buf = vec![0u8; 4096];
        loop {
            let want = |pending: &VecDeque<u8>| {
                if pending.is_empty() {
                    PollFlags::POLLIN
                } else {
                    PollFlags::POLLIN | PollFlags::POLLOUT
                }
            };
            let mut fds = [
                PollFd::new(self.stop.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.app.as_fd(), want(&self.to_app)),
                PollFd::new(self.exposed.as_fd(), want(&self.to_exposed)),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(format!("poll: {e}")),
            }
            let ready = |i: usize, flag: PollFlags| {
                fds.get(i)
                    .and_then(PollFd::revents)
                    .is_some_and(|r| r.intersects(flag))
            };
            if ready(
                0,
                PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR,
            ) {
                return Ok(());
            }
            let app_in = ready(1, PollFlags::POLLIN);
            let app_out = ready(1, PollFlags::POLLOUT);
            let exposed_in = ready(2, PollFlags::POLLIN);
            let exposed_out = ready(2, PollFlags::POLLOUT);
            if app_in {
                let n = read(&self.app, &mut buf).map_err(|e| format!("app pty: {e}"))?;
                let data = self.on_the_wire(&mut buf, n);
                let mut traffic = lock(&self.traffic);
                remember(&mut traffic.transmitted, data);
                traffic.transmitted_bytes += n as u64;
                if self.loopback {
                    traffic.received_bytes += n as u64;
                    traffic.dropped_bytes += queue(&mut self.to_app, data);
                }
                traffic.dropped_bytes += queue(&mut self.to_exposed, data);
            }
            if exposed_in {
                let n = read(&self.exposed, &mut buf).map_err(|e| format!("exposed pty: {e}"))?;
                let data = self.on_the_wire(&mut buf, n);
                let mut traffic = lock(&self.traffic);
                if self.loopback {
                    traffic.dropped_bytes += n as u64;
                } else {
                    traffic.received_bytes += n as u64;
                    traffic.dropped_bytes += queue(&mut self.to_app, data);
                }
            }
            if app_out {
                flush(&self.app, &mut self.to_app).map_err(|e| format!("app pty: {e}"))?;
            }
            if exposed_out {
                flush(&self.exposed, &mut self.to_exposed)
                    .map_err(|e| format!("exposed pty: {e}"))?;
            }
        }
    }
}

/// Reads what is there (0 when nothing is, the master being non-blocking).
fn read(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Ok(n),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => return Ok(0),
            Err(e) => return Err(e),
        }
    }
}

/// Writes as much of `pending` as the pty takes now.
fn flush(fd: &OwnedFd, pending: &mut VecDeque<u8>) -> Result<(), Errno> {
    while !pending.is_empty() {
        let (front, _) = pending.as_slices();
        match rustix::io::write(fd, front) {
            Ok(0) | Err(Errno::AGAIN) => return Ok(()),
            Ok(n) => drop(pending.drain(..n.min(pending.len()))),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Appends to a pending buffer up to its bound; returns how many bytes did not fit.
fn queue(pending: &mut VecDeque<u8>, data: &[u8]) -> u64 {
    let room = PENDING_MAX.saturating_sub(pending.len());
    let taken = data.len().min(room);
    pending.extend(data.iter().take(taken));
    (data.len() - taken) as u64
}

fn remember(history: &mut VecDeque<u8>, data: &[u8]) {
    let keep = data.len().min(TX_HISTORY);
    let tail = data.get(data.len() - keep..).unwrap_or_default();
    let overflow = (history.len() + tail.len()).saturating_sub(TX_HISTORY);
    history.drain(..overflow.min(history.len()));
    history.extend(tail);
}
