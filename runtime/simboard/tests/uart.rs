//! Simulated UARTs through `SimBoard::open`: the app's tty and the exposed pty, both ways,
//! loopback, line settings.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use common::{board_with, reference_board, uart};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{BaudRate, ControlFlags, LocalFlags, cfgetospeed, tcgetattr};
use warden_ipc::broker::{Access, Denial};
use warden_simboard::SimBoard;

const CONSOLE: &str = "SIM_ISU0_UART";
const LOOPBACK: &str = "SIM_ISU1_UART";

fn open_app(board: &SimBoard, peripheral: &str) -> File {
    let (access, fds) = board.open("app", peripheral, &uart()).unwrap();
    assert_eq!(access, Access::Tty { baud: 115_200 });
    let fd: OwnedFd = fds.into_iter().next().unwrap();
    File::from(fd)
}

/// The developer's end, as a terminal program opens it.
fn open_exposed(board: &SimBoard, peripheral: &str) -> File {
    let path = board.uart_path(peripheral).unwrap();
    assert!(path.starts_with("/dev/pts"), "{path:?}");
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(OFlag::O_NOCTTY.bits())
        .open(&path)
        .unwrap()
}

/// Reads until `want` bytes arrived or 5 s passed.
fn read_some(file: &mut File, want: usize) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(100u16)).unwrap() == 0 {
            continue;
        }
        let mut buf = [0u8; 256];
        let n = file.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    got
}

/// Whether anything arrives within `ms`.
fn quiet_for(file: &File, ms: u16) -> bool {
    let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::from(ms)).unwrap() == 0
}

#[test]
fn what_the_app_writes_appears_on_the_exposed_end_and_back() {
    let board = reference_board();
    let mut exposed = open_exposed(&board, CONSOLE);
    let mut app = open_app(&board, CONSOLE);
    app.write_all(b"hello\n").unwrap();
    assert_eq!(read_some(&mut exposed, 6), b"hello\n", "raw: no CR added");
    exposed.write_all(b"typed\r").unwrap();
    assert_eq!(
        read_some(&mut app, 6),
        b"typed\r",
        "raw: no line editing, no CR translation"
    );
    assert!(quiet_for(&app, 100), "no echo of the app's own bytes");

    let view = board.view();
    let console = view.uart.iter().find(|u| u.peripheral == CONSOLE).unwrap();
    assert_eq!(console.transmitted, "hello\n");
    assert_eq!((console.transmitted_bytes, console.received_bytes), (6, 6));
    assert_eq!(console.last_opened_by.as_deref(), Some("app"));
    assert_eq!(console.path, board.uart_path(CONSOLE).unwrap());
    assert_eq!(console.bridge_error, None);
}

#[test]
fn binary_data_passes_unchanged() {
    let board = reference_board();
    let mut exposed = open_exposed(&board, CONSOLE);
    let mut app = open_app(&board, CONSOLE);
    // Every byte value, including ^C, ^S/^Q, ^D and DEL, which a cooked tty would act on.
    let all: Vec<u8> = (0..=255).collect();
    app.write_all(&all).unwrap();
    assert_eq!(read_some(&mut exposed, 256), all);
    exposed.write_all(&all).unwrap();
    assert_eq!(read_some(&mut app, 256), all);
}

#[test]
fn a_loopback_uart_returns_what_the_app_sends_and_mirrors_it_outside() {
    let board = reference_board();
    let mut exposed = open_exposed(&board, LOOPBACK);
    let mut app = open_app(&board, LOOPBACK);
    app.write_all(b"ping").unwrap();
    assert_eq!(read_some(&mut app, 4), b"ping");
    assert_eq!(
        read_some(&mut exposed, 4),
        b"ping",
        "TX is still visible outside"
    );
    // RX listens to TX only: the developer's bytes are dropped, and counted.
    exposed.write_all(b"noise").unwrap();
    let port = || {
        board
            .view()
            .uart
            .into_iter()
            .find(|u| u.peripheral == LOOPBACK)
            .unwrap()
    };
    common::eventually("the bridge to drop the bytes", || port().dropped_bytes == 5);
    assert!(quiet_for(&app, 100));
    assert!(port().loopback);
    assert_eq!(port().transmitted, "ping");
}

#[test]
fn the_board_file_line_settings_are_applied_in_raw_mode() {
    let board = board_with(
        r#"[{"Peripheral": "PORT", "SimUart": {"Baud": 9600, "DataBits": 7, "Parity": "Even", "StopBits": 2, "FlowControl": "RtsCts"}}]"#,
    );
    let (access, fds) = board.open("app", "PORT", &uart()).unwrap();
    assert_eq!(access, Access::Tty { baud: 9600 });
    let t = tcgetattr(fds[0].as_fd()).unwrap();
    assert_eq!(cfgetospeed(&t), BaudRate::B9600);
    assert!(
        t.control_flags
            .contains(ControlFlags::CSTOPB | ControlFlags::CRTSCTS)
    );
    // A pty is always 8N (the kernel forces it): 7 data bits are emulated by the bridge.
    assert_eq!(t.control_flags & ControlFlags::CSIZE, ControlFlags::CS8);
    assert!(
        !t.local_flags
            .intersects(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG)
    );
    assert!(
        !t.output_flags
            .contains(nix::sys::termios::OutputFlags::OPOST)
    );
    let view = board.view();
    assert_eq!(
        (view.uart[0].parity.as_str(), view.uart[0].data_bits),
        ("even", 7)
    );
    assert_eq!(
        (view.uart[0].stop_bits, view.uart[0].flow_control.as_str()),
        (2, "rts_cts")
    );
}

#[test]
fn a_seven_bit_uart_does_not_carry_bit_7() {
    let board = board_with(r#"[{"Peripheral": "PORT", "SimUart": {"DataBits": 7}}]"#);
    let mut exposed = open_exposed(&board, "PORT");
    let (_, fds) = board.open("app", "PORT", &uart()).unwrap();
    let mut app = File::from(fds.into_iter().next().unwrap());
    app.write_all(&[0x41, 0xC1, 0xFF]).unwrap();
    assert_eq!(read_some(&mut exposed, 3), [0x41, 0x41, 0x7F]);
    exposed.write_all(&[0xE2]).unwrap();
    assert_eq!(read_some(&mut app, 1), [0x62]);
}

#[test]
fn a_reopened_uart_gets_its_settings_back_and_no_stale_input() {
    let board = reference_board();
    let mut exposed = open_exposed(&board, CONSOLE);
    let first = open_app(&board, CONSOLE);
    exposed.write_all(b"old").unwrap();
    // Wait until the bridge delivered it to the app's line, where nobody reads it.
    assert!(!quiet_for(&first, 5000), "delivered");
    let mut t = tcgetattr(first.as_fd()).unwrap();
    t.local_flags.insert(LocalFlags::ECHO | LocalFlags::ICANON);
    nix::sys::termios::tcsetattr(first.as_fd(), nix::sys::termios::SetArg::TCSANOW, &t).unwrap();
    drop(first);
    let mut second = open_app(&board, CONSOLE);
    let t = tcgetattr(second.as_fd()).unwrap();
    assert!(
        !t.local_flags
            .intersects(LocalFlags::ECHO | LocalFlags::ICANON)
    );
    assert!(quiet_for(&second, 100), "the earlier input was flushed");
    exposed.write_all(b"new").unwrap();
    assert_eq!(read_some(&mut second, 3), b"new");
}

#[test]
fn a_uart_request_needs_a_uart() {
    let board = reference_board();
    assert!(matches!(
        board.open("app", "SIM_GPIO0", &uart()),
        Err(Denial::UnknownName(_))
    ));
    assert!(matches!(
        board.open("app", CONSOLE, &common::i2c()),
        Err(Denial::UnknownName(_))
    ));
    assert!(board.uart_path("SIM_GPIO0").is_err());
}

#[test]
fn dropping_the_board_stops_its_bridges() {
    let board = board_with(r#"[{"Peripheral": "PORT", "SimUart": {}}]"#);
    let path = board.uart_path("PORT").unwrap();
    assert!(path.exists());
    drop(board);
    // The bridge thread holds the exposed pty's master; devpts removes the slave's node when
    // the master closes, so the node goes away exactly when the bridge has ended.
    common::eventually("the bridge to end", || !path.exists());
}
