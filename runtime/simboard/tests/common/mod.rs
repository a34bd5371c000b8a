//! Shared by the scenario tests: the reference board, opening through `SimBoard::open`, and
//! talking `warden_ipc::sim` over the returned descriptor as a worker would.
#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use warden_ipc::Channel;
use warden_ipc::broker::{Access, GpioMode, ResourceRequest};
use warden_ipc::sim::{SimReply, SimRequest};
use warden_policy::board::Board;
use warden_simboard::SimBoard;

/// How long a test waits for a reply before calling the board hung.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The repository's simulated board file (`buildroot-overlay/board/warden-sim/board.json`).
pub fn reference_board() -> SimBoard {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../buildroot-overlay/board/warden-sim/board.json"
    );
    let bytes = std::fs::read(path).unwrap();
    SimBoard::new(&Board::parse("board.json", &bytes).unwrap()).unwrap()
}

/// A board made from `resources` (the `Resources` array of a board file, as JSON text).
pub fn board_with(resources: &str) -> SimBoard {
    let text = format!(
        r#"{{"SchemaVersion": 1, "Name": "test", "HardwareDefinition": "hw.json",
            "Services": {{}}, "UnsupportedCapabilities": "Warn",
            "Defaults": {{"MemoryLimitKB": 1024, "WatchdogMs": 1000, "MaxStorageKB": 0}},
            "Resources": {resources}}}"#
    );
    SimBoard::new(&Board::parse("test.json", text.as_bytes()).unwrap()).unwrap()
}

pub fn gpio(mode: GpioMode) -> ResourceRequest {
    ResourceRequest::Gpio {
        name: "APP_NAME".into(),
        mode,
    }
}

pub fn i2c() -> ResourceRequest {
    ResourceRequest::I2c {
        name: "APP_I2C".into(),
    }
}

pub fn spi() -> ResourceRequest {
    ResourceRequest::Spi {
        name: "APP_SPI".into(),
    }
}

pub fn uart() -> ResourceRequest {
    ResourceRequest::Uart {
        name: "APP_UART".into(),
    }
}

pub fn adc() -> ResourceRequest {
    ResourceRequest::Adc {
        name: "APP_ADC".into(),
    }
}

pub fn pwm() -> ResourceRequest {
    ResourceRequest::Pwm {
        name: "APP_PWM".into(),
    }
}

/// Opens a socket-served resource and returns the worker's channel and the access.
pub fn open(
    board: &SimBoard,
    app: &str,
    peripheral: &str,
    request: ResourceRequest,
) -> (Channel, Access) {
    let (access, fds) = board.open(app, peripheral, &request).unwrap();
    assert_eq!(fds.len(), access.descriptors(), "{access:?}");
    let fd: OwnedFd = fds.into_iter().next().unwrap();
    let channel = Channel::from_fd(fd);
    channel.set_recv_timeout(Some(REPLY_TIMEOUT)).unwrap();
    (channel, access)
}

/// One request, one reply.
pub fn ask(channel: &Channel, request: &SimRequest) -> SimReply {
    channel.send(request, &[]).unwrap();
    reply(channel)
}

/// The next reply.
pub fn reply(channel: &Channel) -> SimReply {
    let (reply, fds): (SimReply, _) = channel.recv().unwrap();
    assert!(fds.is_empty());
    reply
}

/// Waits up to 5 s for `cond`.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
