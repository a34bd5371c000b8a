//! Simulated GPIO lines through `SimBoard::open`: driving, reading, edges, ownership.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{ask, eventually, gpio, open, reference_board, reply};
use warden_ipc::broker::{Access, Denial, Detail, GpioMode};
use warden_ipc::sim::{SimError, SimReply, SimRequest};
use warden_simboard::{Direction, SimBoardError};

const LED: &str = "SIM_GPIO8";
/// Idle high, pressed low (the board file's button lines).
const BUTTON: &str = "SIM_GPIO3";

fn output(initial_high: bool) -> warden_ipc::broker::ResourceRequest {
    gpio(GpioMode::Output { initial_high })
}

fn wait(rising: Option<bool>, timeout_ms: u32) -> SimRequest {
    SimRequest::GpioWaitEdge { rising, timeout_ms }
}

#[test]
fn an_output_is_driven_at_open_and_by_set() {
    let board = reference_board();
    assert!(!board.gpio_level(LED).unwrap());
    let (ch, access) = open(&board, "blink", LED, output(true));
    assert_eq!(
        access,
        Access::Sim {
            detail: Detail::Gpio
        }
    );
    assert!(board.gpio_level(LED).unwrap(), "driven high at open");
    assert_eq!(
        ask(&ch, &SimRequest::GpioSet { high: false }),
        SimReply::Done
    );
    assert!(!board.gpio_level(LED).unwrap());
    assert_eq!(ask(&ch, &SimRequest::GpioGet), SimReply::Level(false));
    assert_eq!(
        ask(&ch, &SimRequest::GpioSet { high: true }),
        SimReply::Done
    );
    assert!(board.gpio_level(LED).unwrap());
    let view = board.view();
    let line = view.gpio.iter().find(|g| g.peripheral == LED).unwrap();
    assert_eq!(line.owner.as_deref(), Some("blink"));
    assert_eq!(line.direction, Direction::Output);
    assert_eq!(line.line, Some(8));
    // The outside world cannot fight an app's output.
    assert!(matches!(
        board.gpio_drive(LED, false),
        Err(SimBoardError::DrivenByApp { app, .. }) if app == "blink"
    ));
}

#[test]
fn an_input_reads_what_the_outside_world_drives_and_refuses_writes() {
    let board = reference_board();
    let (ch, _) = open(&board, "buttons", BUTTON, gpio(GpioMode::Input));
    assert_eq!(
        ask(&ch, &SimRequest::GpioGet),
        SimReply::Level(true),
        "initial High"
    );
    board.gpio_drive(BUTTON, false).unwrap();
    assert_eq!(ask(&ch, &SimRequest::GpioGet), SimReply::Level(false));
    assert!(matches!(
        ask(&ch, &SimRequest::GpioSet { high: true }),
        SimReply::Error(SimError::InvalidArgument(m)) if m.contains("input")
    ));
    assert!(matches!(
        ask(&ch, &SimRequest::GpioDirection { output: Some(true) }),
        SimReply::Error(SimError::InvalidArgument(m)) if m.contains("in-out")
    ));
    assert!(
        !board.gpio_level(BUTTON).unwrap(),
        "the refused write changed nothing"
    );
}

#[test]
fn an_edge_wait_is_woken_by_the_outside_world() {
    let board = reference_board();
    let (ch, _) = open(&board, "buttons", BUTTON, gpio(GpioMode::Input));
    ch.send(&wait(Some(false), 10_000), &[]).unwrap();
    let presser = {
        let board = board.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            board.gpio_drive(BUTTON, false).unwrap();
        })
    };
    let started = Instant::now();
    assert_eq!(
        reply(&ch),
        SimReply::Edge(Some(false)),
        "falling: the level after is low"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(80),
        "answered before the press: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    presser.join().unwrap();
}

#[test]
fn an_edge_wait_times_out_with_none() {
    let board = reference_board();
    let (ch, _) = open(&board, "buttons", BUTTON, gpio(GpioMode::Input));
    let started = Instant::now();
    assert_eq!(ask(&ch, &wait(None, 150)), SimReply::Edge(None));
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(
        ask(&ch, &wait(None, 0)),
        SimReply::Edge(None),
        "a zero timeout polls"
    );
}

#[test]
fn edges_since_the_last_wait_are_kept_and_filtered_by_kind() {
    let board = reference_board();
    let (ch, _) = open(&board, "buttons", BUTTON, gpio(GpioMode::Input));
    // Press and release before anyone waits: both edges are queued, as the kernel queues
    // line events.
    board.gpio_drive(BUTTON, false).unwrap();
    board.gpio_drive(BUTTON, true).unwrap();
    // Driving the level it already has is no edge.
    board.gpio_drive(BUTTON, true).unwrap();
    assert_eq!(
        ask(&ch, &wait(Some(true), 0)),
        SimReply::Edge(Some(true)),
        "the falling one is skipped"
    );
    assert_eq!(
        ask(&ch, &wait(None, 0)),
        SimReply::Edge(None),
        "both consumed"
    );
    board.gpio_drive(BUTTON, false).unwrap();
    assert_eq!(ask(&ch, &wait(None, 0)), SimReply::Edge(Some(false)));
    let view = board.view();
    assert_eq!(
        view.gpio
            .iter()
            .find(|g| g.peripheral == BUTTON)
            .unwrap()
            .edges,
        3
    );
}

#[test]
fn only_an_input_waits_for_edges_and_only_an_in_out_pin_switches() {
    let board = reference_board();
    let (ch, _) = open(&board, "io", "SIM_GPIO5", gpio(GpioMode::InOut));
    assert_eq!(
        ask(&ch, &SimRequest::GpioGet),
        SimReply::Level(false),
        "starts as an input"
    );
    assert_eq!(
        ask(&ch, &SimRequest::GpioDirection { output: Some(true) }),
        SimReply::Done
    );
    assert!(board.gpio_level("SIM_GPIO5").unwrap());
    assert_eq!(
        ask(&ch, &SimRequest::GpioSet { high: false }),
        SimReply::Done
    );
    assert!(matches!(
        ask(&ch, &wait(None, 10)),
        SimReply::Error(SimError::InvalidArgument(m)) if m.contains("output")
    ));
    assert!(
        board.gpio_drive("SIM_GPIO5", true).is_err(),
        "an output now"
    );
    assert_eq!(
        ask(&ch, &SimRequest::GpioDirection { output: None }),
        SimReply::Done
    );
    board.gpio_drive("SIM_GPIO5", true).unwrap();
    assert_eq!(ask(&ch, &SimRequest::GpioGet), SimReply::Level(true));
    assert_eq!(ask(&ch, &wait(None, 1000)), SimReply::Edge(Some(true)));

    let (out, _) = open(&board, "blink", LED, output(false));
    assert!(matches!(
        ask(&out, &wait(None, 10)),
        SimReply::Error(SimError::InvalidArgument(_))
    ));
}

#[test]
fn a_held_line_is_busy_for_another_worker_until_its_end_closes() {
    let board = reference_board();
    let (first, _) = open(&board, "blink", LED, output(true));
    let refused = board.open("other", LED, &output(false)).unwrap_err();
    assert!(
        matches!(&refused, Denial::Busy(m) if m.contains("blink") && m.contains(LED)),
        "{refused:?}"
    );
    // The same app's second worker is refused too: one line request per line.
    assert!(matches!(
        board.open("blink", LED, &output(false)),
        Err(Denial::Busy(_))
    ));
    assert!(
        board.gpio_level(LED).unwrap(),
        "the refusal changed nothing"
    );

    drop(first);
    // Released at once, without waiting for the serving thread to notice.
    let (second, _) = open(&board, "other", LED, output(false));
    assert!(!board.gpio_level(LED).unwrap());
    assert_eq!(ask(&second, &SimRequest::GpioGet), SimReply::Level(false));
    let view = board.view();
    assert_eq!(
        view.gpio
            .iter()
            .find(|g| g.peripheral == LED)
            .unwrap()
            .owner
            .as_deref(),
        Some("other")
    );
}

#[test]
fn a_closed_line_is_released_and_floats_back_to_the_outside_level() {
    let board = reference_board();
    let (ch, _) = open(&board, "blink", LED, output(true));
    assert!(board.gpio_level(LED).unwrap());
    drop(ch);
    eventually("the line's release", || {
        board
            .view()
            .gpio
            .iter()
            .any(|g| g.peripheral == LED && g.owner.is_none())
    });
    assert!(
        !board.gpio_level(LED).unwrap(),
        "back to the board file's Initial"
    );
    board.gpio_drive(LED, true).unwrap();
}

#[test]
fn a_worker_gone_during_an_edge_wait_releases_its_line_promptly() {
    let board = reference_board();
    let (ch, _) = open(&board, "buttons", BUTTON, gpio(GpioMode::Input));
    ch.send(&wait(None, 60_000), &[]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let closed = Instant::now();
    drop(ch);
    eventually("the line's release", || {
        board
            .view()
            .gpio
            .iter()
            .any(|g| g.peripheral == BUTTON && g.owner.is_none())
    });
    assert!(
        closed.elapsed() < Duration::from_secs(2),
        "{:?}",
        closed.elapsed()
    );
}

#[test]
fn a_gpio_request_on_another_kind_is_an_unknown_name() {
    let board = reference_board();
    let denial = board
        .open("app", "SIM_ISU2_I2C", &gpio(GpioMode::Input))
        .unwrap_err();
    assert!(
        matches!(&denial, Denial::UnknownName(m) if m.contains("I2C")),
        "{denial:?}"
    );
    assert!(matches!(
        board.open("app", "SIM_GPIO99", &gpio(GpioMode::Input)),
        Err(Denial::UnknownName(_))
    ));
    assert!(matches!(
        board.gpio_level("SIM_GPIO99"),
        Err(SimBoardError::UnknownPeripheral(_))
    ));
    assert!(matches!(
        board.gpio_drive("SIM_ISU0_UART", true),
        Err(SimBoardError::WrongKind { .. })
    ));
}
