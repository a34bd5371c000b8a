//! A UART (`Backend::Uart` → `Access::Tty`): the tty, in raw mode with the board file's line
//! settings, which are read back from the driver and compared, so a line the hardware cannot
//! run (a rate or a character format the driver replaced with another) is refused instead of
//! handed out wrong.
//!
//! The tty is opened `O_NONBLOCK` so that a port with modem control never blocks the broker
//! waiting for carrier; once `CLOCAL` is set the descriptor goes back to blocking, as the
//! simulated board's pty is, and pending bytes from before the grant are flushed.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{
    BaudRate, ControlFlags, FlushArg, InputFlags, SetArg, Termios, cfmakeraw, cfsetspeed, tcflush,
    tcgetattr, tcsetattr,
};
use warden_ipc::broker::{Access, Denial};
use warden_policy::board::{FlowControl, Parity, SerialSettings, is_device_path};

use crate::{Roots, open_file};

/// The rates termios has a constant for, as the board file accepts them
/// (`STANDARD_BAUD_RATES`).
const RATES: &[(u64, BaudRate)] = &[
    (1200, BaudRate::B1200),
    (1800, BaudRate::B1800),
    (2400, BaudRate::B2400),
    (4800, BaudRate::B4800),
    (9600, BaudRate::B9600),
    (19200, BaudRate::B19200),
    (38400, BaudRate::B38400),
    (57600, BaudRate::B57600),
    (115_200, BaudRate::B115200),
    (230_400, BaudRate::B230400),
    (460_800, BaudRate::B460800),
    (500_000, BaudRate::B500000),
    (576_000, BaudRate::B576000),
    (921_600, BaudRate::B921600),
    (1_000_000, BaudRate::B1000000),
    (1_152_000, BaudRate::B1152000),
    (1_500_000, BaudRate::B1500000),
    (2_000_000, BaudRate::B2000000),
    (2_500_000, BaudRate::B2500000),
    (3_000_000, BaudRate::B3000000),
    (3_500_000, BaudRate::B3500000),
    (4_000_000, BaudRate::B4000000),
];

pub(crate) fn open(
    roots: &Roots,
    path: &str,
    settings: &SerialSettings,
) -> Result<(Access, Vec<OwnedFd>), Denial> {
    let (baud, rate) = RATES
        .iter()
        .copied()
        .find(|(b, _)| *b == settings.baud)
        .ok_or_else(|| {
            Denial::InvalidArgument(format!(
                "{path}: {} baud is not a rate termios can set",
                settings.baud
            ))
        })?;
    let wanted = Line::wanted(settings, rate).ok_or_else(|| {
        Denial::InvalidArgument(format!(
            "{path}: {} data bits and {} stop bits are not a tty character format",
            settings.data_bits, settings.stop_bits
        ))
    })?;
    let full = device_path(roots, path)?;
    let fd = open_file(
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK),
        &full,
    )?;
    let failed = |doing: &str, e: nix::Error| {
        Denial::Io(format!("cannot {doing} of {}: {e}", full.display()))
    };
    let mut termios = tcgetattr(fd.as_fd()).map_err(|e| failed("read the line settings", e))?;
    wanted
        .apply(&mut termios, rate)
        .map_err(|e| failed("set the baud rate", e))?;
    tcsetattr(fd.as_fd(), SetArg::TCSANOW, &termios)
        .map_err(|e| failed("set the line settings", e))?;
    // What the driver made of it: `tcsetattr` succeeds if any of it was taken.
    let applied = tcgetattr(fd.as_fd()).map_err(|e| failed("read back the line settings", e))?;
    let got = Line::of(&applied);
    if got != wanted {
        return Err(Denial::Io(format!(
            "the driver of {} does not run the board's line: asked for {wanted}, the line has {got}",
            full.display()
        )));
    }
    // Bytes that arrived before the grant belong to nobody.
    tcflush(fd.as_fd(), FlushArg::TCIOFLUSH).map_err(|e| failed("flush the line", e))?;
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_err(|e| failed("read the flags", e))?;
    let blocking = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(blocking))
        .map_err(|e| failed("clear O_NONBLOCK on the descriptor", e))?;
    let baud = u32::try_from(baud).map_err(|_| {
        Denial::InvalidArgument(format!("{path}: {baud} baud does not fit the grant"))
    })?;
    Ok((Access::Tty { baud }, vec![fd]))
}

/// The board's `/dev/…` path under `roots.dev`.
fn device_path(roots: &Roots, path: &str) -> Result<PathBuf, Denial> {
    match path.strip_prefix("/dev/") {
        Some(rest) if is_device_path(path) => Ok(roots.dev.join(rest)),
        _ => Err(Denial::InvalidArgument(format!(
            "{path:?} is not a device path (`/dev/…` without `.` or `..`)"
        ))),
    }
}

/// The parts of a tty's settings the board file decides, as the kernel holds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Line {
    /// `c_cflag & CBAUD`: the `Bnnn` code.
    baud_code: libc::tcflag_t,
    data_bits: u8,
    parity: Parity,
    stop_bits: u8,
    flow_control: FlowControl,
}

impl Line {
    /// The line `settings` ask for; `None` for a character format no tty has.
    fn wanted(settings: &SerialSettings, rate: BaudRate) -> Option<Line> {
        if !(5..=8).contains(&settings.data_bits) || !(1..=2).contains(&settings.stop_bits) {
            return None;
        }
        Some(Line {
            baud_code: rate as libc::tcflag_t,
            data_bits: settings.data_bits,
            parity: settings.parity,
            stop_bits: settings.stop_bits,
            flow_control: settings.flow_control,
        })
    }

    /// Raw mode (no echo, line editing, signals or output processing) with this line.
    fn apply(&self, t: &mut Termios, rate: BaudRate) -> nix::Result<()> {
        cfmakeraw(t);
        cfsetspeed(t, rate)?;
        let c = &mut t.control_flags;
        c.remove(ControlFlags::CSIZE | ControlFlags::PARENB | ControlFlags::PARODD);
        c.remove(ControlFlags::CSTOPB | ControlFlags::CRTSCTS);
        // CLOCAL: the line is used whatever the modem lines say (a UART to a chip has none).
        c.insert(ControlFlags::CREAD | ControlFlags::CLOCAL);
        c.insert(match self.data_bits {
            5 => ControlFlags::CS5,
            6 => ControlFlags::CS6,
            7 => ControlFlags::CS7,
            _ => ControlFlags::CS8,
        });
        match self.parity {
            Parity::None => {}
            Parity::Even => c.insert(ControlFlags::PARENB),
            Parity::Odd => c.insert(ControlFlags::PARENB | ControlFlags::PARODD),
        }
        if self.stop_bits == 2 {
            c.insert(ControlFlags::CSTOPB);
        }
        if self.flow_control == FlowControl::RtsCts {
            c.insert(ControlFlags::CRTSCTS);
        }
        let i = &mut t.input_flags;
        i.remove(InputFlags::IXON | InputFlags::IXOFF | InputFlags::IXANY);
        i.remove(InputFlags::INPCK | InputFlags::IGNPAR);
        if self.parity != Parity::None {
            // Check parity and drop a byte that fails it (or has a framing error): a protocol
            // is better served by a missing byte than by a wrong one, or by a NUL in its place.
            i.insert(InputFlags::INPCK | InputFlags::IGNPAR);
        }
        if self.flow_control == FlowControl::XonXoff {
            i.insert(InputFlags::IXON | InputFlags::IXOFF);
        }
        Ok(())
    }

    /// The line `t` describes.
    fn of(t: &Termios) -> Line {
        let c = t.control_flags;
        let raw = libc::termios::from(t.clone()).c_cflag;
        let data_bits = match c & ControlFlags::CSIZE {
            x if x == ControlFlags::CS5 => 5,
            x if x == ControlFlags::CS6 => 6,
            x if x == ControlFlags::CS7 => 7,
            _ => 8,
        };
        let parity = match (
            c.contains(ControlFlags::PARENB),
            c.contains(ControlFlags::PARODD),
        ) {
            (false, _) => Parity::None,
            (true, false) => Parity::Even,
            (true, true) => Parity::Odd,
        };
        let i = t.input_flags;
        let flow_control = if c.contains(ControlFlags::CRTSCTS) {
            FlowControl::RtsCts
        } else if i.contains(InputFlags::IXON | InputFlags::IXOFF) {
            FlowControl::XonXoff
        } else {
            FlowControl::None
        };
        Line {
            baud_code: raw & libc::CBAUD,
            data_bits,
            parity,
            stop_bits: if c.contains(ControlFlags::CSTOPB) {
                2
            } else {
                1
            },
            flow_control,
        }
    }
}

impl std::fmt::Display for Line {
    /// `115200 baud 8N1, no flow control`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match RATES
            .iter()
            .find(|(_, r)| *r as libc::tcflag_t == self.baud_code)
        {
            Some((baud, _)) => write!(f, "{baud} baud")?,
            None => write!(f, "baud code {:#o}", self.baud_code)?,
        }
        let parity = match self.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        let flow = match self.flow_control {
            FlowControl::None => "no flow control",
            FlowControl::RtsCts => "RTS/CTS",
            FlowControl::XonXoff => "XON/XOFF",
        };
        write!(f, " {}{parity}{}, {flow}", self.data_bits, self.stop_bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rate_the_board_file_accepts_has_a_constant() {
        let ours: Vec<u64> = RATES.iter().map(|(b, _)| *b).collect();
        assert_eq!(ours, warden_policy::board::STANDARD_BAUD_RATES);
    }

    #[test]
    fn device_paths_stay_under_the_dev_root() {
        let roots = Roots {
            dev: PathBuf::from("/tmp/x/dev"),
            sys: PathBuf::from("/tmp/x/sys"),
        };
        assert_eq!(
            device_path(&roots, "/dev/ttySTM1").ok(),
            Some(PathBuf::from("/tmp/x/dev/ttySTM1"))
        );
        for bad in [
            "/dev/../etc/passwd",
            "/etc/passwd",
            "dev/tty",
            "/dev/",
            "/dev/a//b",
        ] {
            assert!(
                matches!(device_path(&roots, bad), Err(Denial::InvalidArgument(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_line_describes_itself_like_a_terminal_program() {
        let settings = SerialSettings {
            baud: 9600,
            data_bits: 7,
            parity: Parity::Even,
            stop_bits: 2,
            flow_control: FlowControl::RtsCts,
        };
        let line = Line::wanted(&settings, BaudRate::B9600);
        assert_eq!(
            line.map(|l| l.to_string()).as_deref(),
            Some("9600 baud 7E2, RTS/CTS")
        );
        let bad = SerialSettings {
            data_bits: 9,
            ..settings
        };
        assert_eq!(Line::wanted(&bad, BaudRate::B9600), None);
    }
}
