//! The UART over a real pseudo-terminal, as the simulated board hands it out (and as a real
//! board's tty behaves): the worker holds the tty end, the test plays the far end (the master).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use common::{broker, devices};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use warden_host_api::bindings::warden::device::types::Error;
use warden_host_api::bindings::warden::device::uart::HostPort;
use warden_ipc::broker::{Access, Grant};

/// A pty with its tty end in raw mode (as the supervisor applies the board's line settings):
/// (the far end, the tty end to grant).
fn pty() -> (std::fs::File, OwnedFd) {
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut settings = tcgetattr(&pty.slave).unwrap();
    cfmakeraw(&mut settings);
    tcsetattr(&pty.slave, SetArg::TCSANOW, &settings).unwrap();
    (std::fs::File::from(pty.master), pty.slave)
}

fn port_on(tty: OwnedFd) -> warden_host_api::Devices {
    let mut tty = Some(tty);
    let (opener, _) = broker(move |_| {
        (
            Ok(Grant {
                peripheral: "SIM_UART0".into(),
                access: Access::Tty { baud: 115_200 },
            }),
            vec![tty.take().unwrap()],
        )
    });
    devices(opener).0
}

#[test]
fn written_bytes_arrive_at_the_far_end_and_the_far_ends_bytes_are_read() {
    let (mut far, tty) = pty();
    let mut devices = port_on(tty);
    let port = HostPort::open(&mut devices, "SAMPLE_UART".into()).unwrap();
    let rep = port.rep();
    let port = || wasmtime::component::Resource::<_>::new_borrow(rep);

    HostPort::write(&mut devices, port(), b"hello\n".to_vec()).unwrap();
    HostPort::flush(&mut devices, port()).unwrap();
    let mut got = [0u8; 6];
    far.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello\n");

    far.write_all(b"ping").unwrap();
    let mut read = Vec::new();
    let started = Instant::now();
    while read.len() < 4 && started.elapsed() < Duration::from_secs(5) {
        read.extend(HostPort::read(&mut devices, port(), 16, 1000).unwrap());
    }
    assert_eq!(read, b"ping");

    // At most `max` bytes per read; the rest waits for the next.
    far.write_all(b"abcdef").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        HostPort::read(&mut devices, port(), 4, 1000).unwrap(),
        b"abcd"
    );
    assert_eq!(
        HostPort::read(&mut devices, port(), 4, 1000).unwrap(),
        b"ef"
    );
}

#[test]
fn a_read_with_nothing_to_read_returns_empty_at_its_timeout() {
    let (_far, tty) = pty();
    let mut devices = port_on(tty);
    let port = HostPort::open(&mut devices, "SAMPLE_UART".into()).unwrap();
    let started = Instant::now();
    let read = HostPort::read(&mut devices, port, 64, 100).unwrap();
    let waited = started.elapsed();
    assert!(read.is_empty());
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
}

#[test]
fn a_port_whose_far_end_hung_up_reports_an_error() {
    let (far, tty) = pty();
    let mut devices = port_on(tty);
    let port = HostPort::open(&mut devices, "SAMPLE_UART".into()).unwrap();
    drop(far);
    let started = Instant::now();
    let err = HostPort::read(&mut devices, port, 8, 5000).unwrap_err();
    assert!(
        matches!(&err, Error::Io(m) if m.contains("SAMPLE_UART")),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no endless wait"
    );
}
