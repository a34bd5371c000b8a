//! A confused or hostile worker: garbage, oversized packets, descriptors, requests for
//! another kind, out-of-bounds values. Each gets an error reply, and the board keeps serving
//! that handle and every other.
#![allow(clippy::unwrap_used)]

mod common;

use std::os::fd::AsFd;

use common::{ask, gpio, i2c, open, reference_board, reply};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rustix::net::{SendFlags, send};
use warden_ipc::broker::GpioMode;
use warden_ipc::sim::{BusOp, MAX_WAIT_MS, SimError, SimReply, SimRequest};
use warden_ipc::{Channel, MAX_MESSAGE};

fn send_raw(channel: &Channel, bytes: &[u8]) {
    let sent = send(channel.as_fd(), bytes, SendFlags::NOSIGNAL).unwrap();
    assert_eq!(sent, bytes.len());
}

fn invalid(reply: SimReply) -> String {
    match reply {
        SimReply::Error(SimError::InvalidArgument(m)) => m,
        other => panic!("expected invalid-argument, got {other:?}"),
    }
}

#[test]
fn garbage_and_oversized_requests_get_errors_and_the_board_keeps_serving() {
    let board = reference_board();
    let (ch, _) = open(
        &board,
        "hostile",
        "SIM_GPIO8",
        gpio(GpioMode::Output { initial_high: true }),
    );
    let still_serving =
        |ch: &Channel| assert_eq!(ask(ch, &SimRequest::GpioGet), SimReply::Level(true));

    for garbage in [
        &b"not json"[..],
        b"{",
        b"\xff\xfe\x00",
        br#"{"op":"gpio_set"}"#,
        br#"{"op":"gpio_set","high":true,"extra":1}"#,
        br#"{"op":"launch_missiles"}"#,
        br#"[1,2,3]"#,
        br#"{"op":"i2c","address":-1,"ops":[]}"#,
    ] {
        send_raw(&ch, garbage);
        let message = invalid(reply(&ch));
        assert!(message.starts_with("malformed request"), "{message}");
        still_serving(&ch);
    }

    // An empty packet reads as end-of-file on a SEQPACKET socket: do not send one. A packet
    // beyond the channel's limit is consumed whole and refused.
    send_raw(&ch, &vec![b' '; MAX_MESSAGE + 4096]);
    assert!(invalid(reply(&ch)).contains("larger than"));
    still_serving(&ch);

    // A hostile op name is quoted back by serde; the reply stays small.
    let long_name = format!(r#"{{"op":"{}"}}"#, "x".repeat(MAX_MESSAGE - 100));
    send_raw(&ch, long_name.as_bytes());
    let message = invalid(reply(&ch));
    assert!(message.len() < 1024, "{} bytes", message.len());
    still_serving(&ch);
}

#[test]
fn descriptors_attached_to_a_request_are_refused_and_closed() {
    let board = reference_board();
    let (ch, _) = open(&board, "hostile", "SIM_GPIO8", gpio(GpioMode::Input));
    let (spare, other_end) = Channel::pair().unwrap();
    ch.send(&SimRequest::GpioGet, &[spare.as_fd()]).unwrap();
    assert!(invalid(reply(&ch)).contains("descriptor"));
    assert_eq!(ask(&ch, &SimRequest::GpioGet), SimReply::Level(false));
    // The board kept no copy: with ours closed, the pair's other end sees its peer gone.
    drop(spare);
    let mut fds = [PollFd::new(other_end.as_fd(), PollFlags::empty())];
    poll(&mut fds, PollTimeout::from(1000u16)).unwrap();
    assert!(fds[0].revents().unwrap().contains(PollFlags::POLLHUP));
}

#[test]
fn requests_out_of_bounds_or_for_another_kind_are_refused() {
    let board = reference_board();
    let (line, _) = open(&board, "hostile", "SIM_GPIO8", gpio(GpioMode::Input));
    let m = invalid(ask(
        &line,
        &SimRequest::GpioWaitEdge {
            rising: None,
            timeout_ms: MAX_WAIT_MS + 1,
        },
    ));
    assert!(m.contains("edge wait"), "{m}");
    for wrong in [
        SimRequest::I2c {
            address: 0x48,
            ops: vec![BusOp::Read(1)],
        },
        SimRequest::Spi {
            ops: vec![BusOp::Read(1)],
        },
        SimRequest::AdcSample { channel: 0 },
    ] {
        assert!(invalid(ask(&line, &wrong)).contains("GPIO line"));
    }
    let (bus, _) = open(&board, "hostile", "SIM_ISU2_I2C", i2c());
    assert!(invalid(ask(&bus, &SimRequest::GpioGet)).contains("I2C bus"));
    assert!(
        invalid(ask(
            &bus,
            &SimRequest::I2c {
                address: 0x48,
                ops: vec![]
            }
        ))
        .contains("0 operations")
    );
    assert!(
        invalid(ask(
            &bus,
            &SimRequest::I2c {
                address: 0x48,
                ops: vec![BusOp::Read(4097)]
            }
        ))
        .contains("4097")
    );
    assert!(
        invalid(ask(
            &bus,
            &SimRequest::I2c {
                address: 0x48,
                ops: vec![BusOp::Write(vec![0; 1]); 17]
            }
        ))
        .contains("17")
    );
    // Both handles still work.
    assert_eq!(ask(&line, &SimRequest::GpioGet), SimReply::Level(false));
    assert!(matches!(
        ask(&bus, &SimRequest::I2c { address: 0x6a, ops: vec![BusOp::Write(vec![0x0F]), BusOp::Read(1)] }),
        SimReply::Data(d) if d == [vec![0x69]]
    ));
}

#[test]
fn a_worker_flooding_without_reading_harms_only_itself() {
    let board = reference_board();
    let (flood, _) = open(&board, "flood", "SIM_ISU2_I2C", i2c());
    flood
        .set_recv_timeout(Some(std::time::Duration::from_millis(10)))
        .unwrap();
    let request = SimRequest::I2c {
        address: 0x48,
        ops: vec![BusOp::Read(2048)],
    };
    // Send until the socket is full (the board blocks on its replies, which nobody reads).
    rustix::io::ioctl_fionbio(flood.as_fd(), true).unwrap();
    let mut sent = 0;
    while flood.send(&request, &[]).is_ok() && sent < 10_000 {
        sent += 1;
    }
    assert!(sent > 0);
    // Another worker on the same bus, and the control API, are still answered.
    let (other, _) = open(&board, "polite", "SIM_ISU2_I2C", i2c());
    assert!(matches!(
        ask(
            &other,
            &SimRequest::I2c {
                address: 0x6a,
                ops: vec![BusOp::Write(vec![0x0F]), BusOp::Read(1)]
            }
        ),
        SimReply::Data(_)
    ));
    board
        .sensor_set("SIM_ISU2_I2C", 0x48, "temperature_c", 30.0)
        .unwrap();
    assert!(!board.bus_log("SIM_ISU2_I2C").unwrap().is_empty());
    drop(flood);
    // Its thread ends with it: the bus is held by the polite worker only.
    common::eventually("the flooder's release", || {
        board.view().i2c[0].open_by == ["polite"]
    });
}
