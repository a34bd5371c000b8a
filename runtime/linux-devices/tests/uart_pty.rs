//! A UART for real: a pty stands in for the tty a board file names (`/dev/pts/N`), so the
//! kernel's tty layer takes (or refuses) the line settings, and bytes written on the granted
//! descriptor arrive at the other end.
#![allow(clippy::unwrap_used)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::pty::{OpenptyResult, openpty};
use nix::sys::termios::{ControlFlags, InputFlags, LocalFlags, OutputFlags, tcgetattr};
use warden_ipc::broker::{Access, Denial, GpioMode, ResourceRequest};
use warden_linux_devices::{Roots, open};
use warden_policy::board::{Backend, FlowControl, Parity, SerialSettings};

fn pty() -> (OpenptyResult, String) {
    let pty = openpty(None, None).unwrap();
    let path = nix::unistd::ttyname(pty.slave.as_fd()).unwrap();
    (pty, path.to_str().unwrap().to_owned())
}

fn uart(path: &str, settings: SerialSettings) -> Backend {
    Backend::Uart {
        path: path.to_owned(),
        settings,
    }
}

fn request() -> ResourceRequest {
    ResourceRequest::Uart {
        name: "SAMPLE_UART".into(),
    }
}

/// Reads what is waiting on `fd`, waiting at most two seconds for the first byte.
fn read_some(fd: BorrowedFd<'_>) -> Vec<u8> {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    assert_eq!(poll(&mut fds, PollTimeout::from(2000u16)).unwrap(), 1);
    let mut buf = [0u8; 256];
    let n = nix::unistd::read(fd, &mut buf).unwrap();
    buf[..n].to_vec()
}

fn open_uart(path: &str, settings: SerialSettings) -> OwnedFd {
    let (access, mut fds) = open(&uart(path, settings), &request(), &Roots::default()).unwrap();
    assert_eq!(
        access,
        Access::Tty {
            baud: u32::try_from(settings.baud).unwrap()
        }
    );
    assert_eq!(fds.len(), access.descriptors());
    fds.pop().unwrap()
}

#[test]
fn the_tty_is_raw_with_the_boards_line_and_carries_bytes_both_ways() {
    let (pty, path) = pty();
    let settings = SerialSettings {
        baud: 9600,
        data_bits: 8,
        parity: Parity::None,
        stop_bits: 2,
        flow_control: FlowControl::RtsCts,
    };
    let fd = open_uart(&path, settings);

    let t = tcgetattr(fd.as_fd()).unwrap();
    let raw = libc::termios::from(t.clone());
    assert_eq!(raw.c_cflag & libc::CBAUD, libc::B9600, "baud");
    let c = t.control_flags;
    assert_eq!(c & ControlFlags::CSIZE, ControlFlags::CS8);
    assert!(!c.contains(ControlFlags::PARENB), "parity");
    assert!(c.contains(ControlFlags::CSTOPB), "two stop bits");
    assert!(c.contains(ControlFlags::CRTSCTS), "RTS/CTS");
    assert!(c.contains(ControlFlags::CLOCAL | ControlFlags::CREAD));
    // Raw: no line editing, echo, signals, output processing or input translation.
    assert!(
        !t.local_flags.intersects(
            LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG | LocalFlags::IEXTEN
        )
    );
    assert!(!t.output_flags.contains(OutputFlags::OPOST));
    assert!(
        !t.input_flags.intersects(
            InputFlags::ICRNL | InputFlags::IXON | InputFlags::IXOFF | InputFlags::INPCK
        )
    );

    // Read-write, blocking again (opened O_NONBLOCK only until CLOCAL was set), close-on-exec.
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFL).unwrap());
    assert_eq!(flags & OFlag::O_ACCMODE, OFlag::O_RDWR);
    assert!(!flags.contains(OFlag::O_NONBLOCK));
    let fd_flags = FdFlag::from_bits_truncate(fcntl(fd.as_fd(), FcntlArg::F_GETFD).unwrap());
    assert!(fd_flags.contains(FdFlag::FD_CLOEXEC));

    // Raw output: "\n" is not turned into "\r\n" on the way out.
    nix::unistd::write(&fd, b"hello\n").unwrap();
    assert_eq!(read_some(pty.master.as_fd()), b"hello\n");
    nix::unistd::write(&pty.master, b"ping\r").unwrap();
    assert_eq!(read_some(fd.as_fd()), b"ping\r");
}

#[test]
fn software_flow_control_and_the_default_line() {
    let (_pty, path) = pty();
    let settings = SerialSettings {
        flow_control: FlowControl::XonXoff,
        ..SerialSettings::default()
    };
    let fd = open_uart(&path, settings);
    let t = tcgetattr(fd.as_fd()).unwrap();
    assert_eq!(
        libc::termios::from(t.clone()).c_cflag & libc::CBAUD,
        libc::B115200
    );
    assert!(t.input_flags.contains(InputFlags::IXON | InputFlags::IXOFF));
    assert!(
        !t.control_flags
            .intersects(ControlFlags::CSTOPB | ControlFlags::CRTSCTS | ControlFlags::PARENB)
    );
}

/// A pty forces 8 data bits without parity whatever is asked (`pty_set_termios`): a driver
/// that does not run the board's line. The grant is refused, naming the tty and both lines.
#[test]
fn a_line_the_driver_does_not_take_is_refused() {
    let (_pty, path) = pty();
    let settings = SerialSettings {
        baud: 19200,
        data_bits: 7,
        parity: Parity::Even,
        stop_bits: 1,
        flow_control: FlowControl::None,
    };
    let denial = open(&uart(&path, settings), &request(), &Roots::default()).unwrap_err();
    let Denial::Io(text) = denial else {
        panic!("{denial:?}")
    };
    assert!(text.contains(&path), "{text}");
    assert!(text.contains("asked for 19200 baud 7E1"), "{text}");
    assert!(text.contains("the line has 19200 baud 8N1"), "{text}");
}

#[test]
fn a_rate_termios_cannot_set_is_an_invalid_argument() {
    let (_pty, path) = pty();
    let settings = SerialSettings {
        baud: 12345,
        ..SerialSettings::default()
    };
    let denial = open(&uart(&path, settings), &request(), &Roots::default()).unwrap_err();
    assert!(
        matches!(&denial, Denial::InvalidArgument(t) if t.contains("12345 baud")),
        "{denial:?}"
    );
}

#[test]
fn a_missing_tty_names_its_path_and_errno() {
    let denial = open(
        &uart("/dev/ttyWARDEN9", SerialSettings::default()),
        &request(),
        &Roots::default(),
    )
    .unwrap_err();
    assert_eq!(
        denial,
        Denial::Io("cannot open /dev/ttyWARDEN9: ENOENT: No such file or directory".into())
    );
}

#[test]
fn a_uart_asked_for_as_a_gpio_is_an_unknown_name() {
    let (_pty, path) = pty();
    let gpio = ResourceRequest::Gpio {
        name: "SAMPLE_UART".into(),
        mode: GpioMode::Input,
    };
    let denial = open(
        &uart(&path, SerialSettings::default()),
        &gpio,
        &Roots::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&denial, Denial::UnknownName(t) if t.contains("SAMPLE_UART") && t.contains("Uart")),
        "{denial:?}"
    );
}
