//! Bringing the board up from a board file, and what `view` shows.
#![allow(clippy::unwrap_used)]

mod common;

use common::{board_with, gpio, reference_board};
use warden_ipc::broker::{Denial, GpioMode};
use warden_simboard::{BoardView, Direction, SimBoardError};

#[test]
fn every_simulated_resource_of_the_reference_board_is_up() {
    let board = reference_board();
    let view = board.view();
    assert_eq!(view.gpio.len(), 16);
    assert_eq!(view.uart.len(), 2);
    assert_eq!(
        (
            view.i2c.len(),
            view.spi.len(),
            view.adc.len(),
            view.pwm.len()
        ),
        (1, 1, 1, 1)
    );
    // In board-file order, with the board file's initial levels.
    let names: Vec<&str> = view.gpio.iter().map(|g| g.peripheral.as_str()).collect();
    assert_eq!(names[..3], ["SIM_GPIO0", "SIM_GPIO1", "SIM_GPIO2"]);
    assert_eq!(view.gpio[15].line, Some(15));
    let button = view
        .gpio
        .iter()
        .find(|g| g.peripheral == "SIM_GPIO3")
        .unwrap();
    assert!(button.high && button.owner.is_none() && button.direction == Direction::Input);
    let i2c = &view.i2c[0];
    let models: Vec<(u16, &str)> = i2c
        .devices
        .iter()
        .map(|d| (d.target, d.model.as_str()))
        .collect();
    assert_eq!(models, [(0x48, "tmp102"), (0x6a, "lsm6ds3")]);
    assert_eq!(
        view.spi[0].devices[0].quantities.get("accel_z_g"),
        Some(&1.0)
    );
    assert!(view.uart[1].loopback);
}

#[test]
fn the_view_serialises_for_the_control_api_and_reads_back() {
    let board = reference_board();
    board.gpio_drive("SIM_GPIO4", false).unwrap();
    let text = serde_json::to_string(&board.view()).unwrap();
    let back: BoardView = serde_json::from_str(&text).unwrap();
    assert_eq!(back, board.view());
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["gpio"][4]["peripheral"], "SIM_GPIO4");
    assert_eq!(value["gpio"][4]["high"], false);
    assert_eq!(value["gpio"][4]["direction"], "input");
    assert_eq!(
        value["i2c"][0]["devices"][0]["quantities"]["temperature_c"],
        25.0
    );
}

#[test]
fn real_devices_and_i2s_are_left_to_others() {
    let board = board_with(
        r#"[{"Peripheral": "REAL_GPIO", "Gpio": {"Chip": "gpiochip0", "Line": 3}},
            {"Peripheral": "REAL_UART", "Uart": {"Path": "/dev/ttyS1"}},
            {"Peripheral": "SIM_I2S", "SimI2s": {}},
            {"Peripheral": "SIM_LINE", "SimGpio": {"Initial": "High"}}]"#,
    );
    let view = board.view();
    assert_eq!(view.gpio.len(), 1);
    assert_eq!(view.gpio[0].line, None, "a line without a number");
    assert!(view.uart.is_empty());
    assert!(matches!(
        board.open("app", "REAL_GPIO", &gpio(GpioMode::Input)),
        Err(Denial::UnknownName(m)) if m.contains("REAL_GPIO")
    ));
    assert!(matches!(
        board.gpio_level("REAL_GPIO"),
        Err(SimBoardError::UnknownPeripheral(_))
    ));
    assert!(board.gpio_level("SIM_LINE").unwrap());
}

#[test]
fn clones_share_one_board() {
    let board = reference_board();
    let clone = board.clone();
    clone.gpio_drive("SIM_GPIO9", true).unwrap();
    assert!(board.gpio_level("SIM_GPIO9").unwrap());
    let (_line, _) = common::open(&clone, "app", "SIM_GPIO9", gpio(GpioMode::Input));
    assert!(matches!(
        board.open("other", "SIM_GPIO9", &gpio(GpioMode::Input)),
        Err(Denial::Busy(_))
    ));
}
