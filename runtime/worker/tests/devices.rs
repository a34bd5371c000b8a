//! Components using `warden:device`, run through `Prepared` in this process with a fake broker
//! and a fake simulated board on socket pairs (threads standing in for the supervisor).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::{broker, gpio_line, precompile, request, run_brokered, wat};
use warden_ipc::Outcome;
use warden_ipc::broker::{GpioMode, ResourceRequest};
use warden_ipc::sim::SimRequest;

#[test]
fn a_component_opens_a_granted_pin_through_the_broker_and_drives_it() {
    let app = precompile(&wat("gpio_blink_component.wat"));
    let (board_tx, board_rx) = mpsc::channel();
    let (broker_tx, broker_rx) = mpsc::channel();
    let broker = broker(gpio_line(board_tx), broker_tx);
    let mut req = request(&app);
    req.broker = true;
    let ran = run_brokered(&req, app.open(), None, Some(broker));
    assert_eq!(ran.outcome, Outcome::Exited { code: 0 }, "{ran:?}");
    assert_eq!(
        broker_rx.try_iter().collect::<Vec<_>>(),
        [ResourceRequest::Gpio {
            name: "SAMPLE_LED".into(),
            mode: GpioMode::Output {
                initial_high: false
            }
        }]
    );
    assert_eq!(
        board_rx.try_iter().collect::<Vec<_>>(),
        [SimRequest::GpioSet { high: true }]
    );
    // The app dropped the pin and the run ended: the board's end saw the socket close, so its
    // thread dropped its sender.
    assert!(matches!(
        board_rx.recv_timeout(Duration::from_secs(5)),
        Err(mpsc::RecvTimeoutError::Disconnected)
    ));
}

#[test]
fn without_a_broker_the_open_is_refused_and_the_app_can_say_why() {
    let app = precompile(&wat("gpio_blink_component.wat"));
    let ran = run_brokered(&request(&app), app.open(), None, None);
    assert_eq!(ran.outcome, Outcome::Exited { code: 1 }, "{ran:?}");
    assert_eq!(
        String::from_utf8_lossy(&ran.stderr),
        "[error] blink: this app's manifest grants it no peripheral, network access or device service\n"
    );
}

#[test]
fn a_broker_socket_must_come_exactly_when_the_request_says_so() {
    let app = precompile(&wat("gpio_blink_component.wat"));
    let prepared = warden_worker::Prepared::new(app.kind, false).unwrap();
    let mut req = request(&app);
    req.broker = true;
    let out = || tempfile::tempfile().unwrap();
    let err = prepared
        .run(&req, app.open(), out(), out(), None, None)
        .unwrap_err();
    assert!(
        matches!(
            err,
            warden_worker::RunError::BrokerMismatch {
                requested: true,
                given: false
            }
        ),
        "{err}"
    );
}
