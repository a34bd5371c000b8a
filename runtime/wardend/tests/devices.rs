//! Every device interface end to end: a real guest component (`sample-apps/device-probe`, Rust)
//! runs in a confined worker under `wardend` on the simulated board, opens peripherals through
//! the broker, and the tests assert what the board saw (pin levels, bytes on the pty, register
//! writes, PWM duty) through the control API's `/sim`, and what the app was refused.
//! Needs root, like the supervisor itself.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};

use common::daemon::{Daemon, require_root};
use common::guest::{self, stdout, wait_line};
use common::{Fixture, fixture};

const PROBE: &str = "a62f4f74-b43c-4f9b-a7fe-87fe7b5462f6";
const OTHER: &str = "c3d2e1f0-0a1b-4c2d-8e3f-405162738495";

/// Installs (and so starts) the probe with `capabilities` running `steps`.
fn start(d: &Daemon, f: &Fixture, id: &str, capabilities: &str, steps: &[&str]) {
    guest::start(d, f, guest::device_probe(), id, capabilities, steps);
}

/// Runs the probe to its end; its stdout lines.
fn run(d: &Daemon, f: &Fixture, id: &str, capabilities: &str, steps: &[&str]) -> Vec<String> {
    start(d, f, id, capabilities, steps);
    guest::wait_exit(d, id)
}

fn sim(d: &Daemon, method: &str, path: &str) -> serde_json::Value {
    let (status, body) = d.call(method, path, b"");
    assert_eq!(status, 200, "{method} {path}: {body}");
    body
}

#[test]
fn gpio_pins_drive_the_board_and_wait_for_its_buttons() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    start(
        &d,
        &f,
        PROBE,
        r#"{"Gpio": ["$SAMPLE_LED", "$SAMPLE_BUTTON_1"]}"#,
        &[
            "gpio-out SAMPLE_LED high",
            "gpio-wait SAMPLE_BUTTON_1 falling 20000",
            "gpio-toggle SAMPLE_LED",
            "gpio-in SAMPLE_BUTTON_1",
        ],
    );
    assert_eq!(wait_line(&d, PROBE, "gpio-out"), "gpio-out ok");
    assert_eq!(sim(&d, "GET", "/sim/gpio/SAMPLE_LED")["level"], "high");
    // The app drives the LED: the outside world cannot.
    let (status, _) = d.call("POST", "/sim/gpio/SAMPLE_LED?level=low", b"");
    assert_eq!(status, 400);
    // A press of the button (idle high, pressed low) wakes the app's edge wait.
    sim(&d, "POST", "/sim/gpio/SAMPLE_BUTTON_1?level=low");
    assert_eq!(wait_line(&d, PROBE, "gpio-wait"), "gpio-wait ok low");
    assert_eq!(wait_line(&d, PROBE, "gpio-toggle"), "gpio-toggle ok low");
    assert_eq!(wait_line(&d, PROBE, "gpio-in"), "gpio-in ok low");
    let (_, view) = d.call("GET", "/sim/gpio/SIM_GPIO0", b"");
    assert_eq!(view["peripheral"], "SIM_GPIO0");
    d.kill();
}

#[test]
fn uart_bytes_reach_the_ptys_other_end_and_come_back() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    let path = sim(&d, "GET", "/sim/uart/UART_CONSOLE")["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut terminal = common::open_raw_pty(&path);
    start(
        &d,
        &f,
        PROBE,
        r#"{"Uart": ["$UART_CONSOLE", "$SAMPLE_UART"]}"#,
        &[
            "uart-write UART_CONSOLE hello from the app\\n",
            "uart-flush UART_CONSOLE",
            "uart-read UART_CONSOLE 64 20000",
            "uart-write SAMPLE_UART ping",
            "uart-read SAMPLE_UART 16 5000",
        ],
    );
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.ends_with(b"\n") {
        let n = terminal.read(&mut buf).unwrap();
        assert!(n > 0, "the pty closed");
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"hello from the app\n");
    terminal.write_all(b"hi app").unwrap();
    assert_eq!(
        wait_line(&d, PROBE, "uart-read"),
        r#"uart-read ok "hi app""#
    );
    // SAMPLE_UART is the board's loopback UART: what the app sends, it receives.
    d.wait_for("the loopback read", |d| stdout(d, PROBE).len() >= 5);
    assert_eq!(stdout(&d, PROBE)[4], r#"uart-read ok "ping""#);
    d.kill();
}

#[test]
fn i2c_and_spi_reach_the_emulated_sensors_registers() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    sim(
        &d,
        "POST",
        "/sim/sensor/SAMPLE_LSM6DS3_I2C/0x48?quantity=temperature_c&value=25.5",
    );
    let lines = run(
        &d,
        &f,
        PROBE,
        r#"{"I2cMaster": ["$SAMPLE_LSM6DS3_I2C"], "SpiMaster": ["$SAMPLE_LSM6DS3_SPI"]}"#,
        &[
            // WHO_AM_I of the LSM6DS3 at 0x6a, then CTRL1_XL := 0x60 and read back.
            "i2c-write-read SAMPLE_LSM6DS3_I2C 0x6a 0f 1",
            "i2c-write SAMPLE_LSM6DS3_I2C 0x6a 1060",
            "i2c-write-read SAMPLE_LSM6DS3_I2C 0x6a 10 1",
            // The TMP102 at 0x48: 25.5 °C = 408 × 0.0625, left-justified in 12 bits.
            "i2c-write-read SAMPLE_LSM6DS3_I2C 0x48 00 2",
            // Nobody answers at 0x10.
            "i2c-read SAMPLE_LSM6DS3_I2C 0x10 1",
            // The LSM6DS3 on SPI: read (bit 7) of WHO_AM_I.
            "spi-transfer SAMPLE_LSM6DS3_SPI 8f00",
        ],
    );
    assert_eq!(lines[0], "i2c-write-read ok 69", "{lines:?}");
    assert_eq!(lines[1], "i2c-write ok", "{lines:?}");
    assert_eq!(lines[2], "i2c-write-read ok 60", "{lines:?}");
    assert_eq!(lines[3], "i2c-write-read ok 1980", "{lines:?}");
    assert!(lines[4].starts_with("i2c-read error io"), "{lines:?}");
    assert!(
        lines[5].starts_with("spi-transfer ok ") && lines[5].ends_with("69"),
        "{lines:?}"
    );
    // The board saw the register write.
    let log = sim(&d, "GET", "/sim/bus/SAMPLE_LSM6DS3_I2C");
    let text = log.to_string();
    assert!(
        text.contains("16") && text.contains("96"),
        "no write of [0x10, 0x60] in {text}"
    );
    d.kill();
}

#[test]
fn adc_samples_and_pwm_states_are_the_boards() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    sim(
        &d,
        "POST",
        "/sim/adc/SAMPLE_POTENTIOMETER_ADC_CONTROLLER/0?raw=1234",
    );
    let lines = run(
        &d,
        &f,
        PROBE,
        r#"{"Adc": ["$SAMPLE_POTENTIOMETER_ADC_CONTROLLER"], "Pwm": ["$SAMPLE_LED_PWM_CONTROLLER"]}"#,
        &[
            "adc SAMPLE_POTENTIOMETER_ADC_CONTROLLER 0",
            "adc SAMPLE_POTENTIOMETER_ADC_CONTROLLER 9",
            "pwm SAMPLE_LED_PWM_CONTROLLER 1 1000000 250000 normal on",
            "pwm SAMPLE_LED_PWM_CONTROLLER 2 1000 2000 normal on",
        ],
    );
    assert_eq!(
        lines[0],
        "adc ok sample=1234 bits=12 reference-microvolts=2500000 channels=4"
    );
    assert!(
        lines[1].starts_with("adc error invalid-argument"),
        "{lines:?}"
    );
    assert!(lines[2].starts_with("pwm ok"), "{lines:?}");
    assert!(
        lines[3].starts_with("pwm error invalid-argument"),
        "{lines:?}"
    );
    let state = &sim(&d, "GET", "/sim/pwm/SAMPLE_LED_PWM_CONTROLLER/1")["state"];
    assert_eq!(state["period_ns"], 1_000_000);
    assert_eq!(state["duty_ns"], 250_000);
    assert_eq!(state["enabled"], true);
    assert!(sim(&d, "GET", "/sim/pwm/SAMPLE_LED_PWM_CONTROLLER/2")["state"].is_null());
    d.kill();
}

#[test]
fn every_interface_refuses_what_the_manifest_does_not_grant() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    // Granted one LED only: every other open is refused with the reason, and the app goes on.
    let lines = run(
        &d,
        &f,
        PROBE,
        r#"{"Gpio": ["$SAMPLE_LED"]}"#,
        &[
            "gpio-in SAMPLE_BUTTON_1",
            "gpio-in NO_SUCH_PIN",
            "gpio-in SAMPLE_UART",
            "uart-write SAMPLE_UART x",
            "i2c-read SAMPLE_LSM6DS3_I2C 0x6a 1",
            "spi-read SAMPLE_LSM6DS3_SPI 1",
            "adc SAMPLE_POTENTIOMETER_ADC_CONTROLLER 0",
            "pwm SAMPLE_LED_PWM_CONTROLLER 0 1000 500 normal on",
            "open-twice gpio-out SAMPLE_LED",
            "gpio-out SAMPLE_LED high",
        ],
    );
    let expect = [
        "gpio-in error not-granted",
        "gpio-in error unknown-name",
        "gpio-in error unknown-name",
        "uart-write error not-granted",
        "i2c-read error not-granted",
        "spi-read error not-granted",
        "adc error not-granted",
        "pwm error not-granted",
        "open-twice ok second error busy",
        "gpio-out ok",
    ];
    assert_eq!(lines.len(), expect.len(), "{lines:?}");
    for (line, prefix) in lines.iter().zip(expect) {
        assert!(
            line.starts_with(prefix),
            "{line:?} is not {prefix:?}… in {lines:?}"
        );
    }
    // An app granted nothing at all has no broker: the same refusals, from the worker itself.
    let lines = run(&d, &f, OTHER, "{}", &["gpio-out SAMPLE_LED high"]);
    assert!(
        lines[0].starts_with("gpio-out error not-granted"),
        "{lines:?}"
    );
    d.kill();
}

/// The worker of a device app gets the device profile, and only it.
#[test]
fn a_device_app_runs_under_the_device_seccomp_profile() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    run(
        &d,
        &f,
        PROBE,
        r#"{"Gpio": ["$SAMPLE_LED"]}"#,
        &["gpio-out SAMPLE_LED high"],
    );
    let logs = d.logs(PROBE).join("\n");
    assert!(logs.contains("seccomp: profile worker_devices"), "{logs}");
    run(&d, &f, OTHER, "{}", &["log info t nothing granted"]);
    let logs = d.logs(OTHER).join("\n");
    assert!(logs.contains("seccomp: profile worker ("), "{logs}");
    d.kill();
}

/// A real Linux tty, through both sides: the board file names a `Uart` at a path (here a
/// pseudo-terminal's, the one kind of tty this machine has); the supervisor opens it and sets
/// its line discipline (`warden-linux-devices`), the worker writes and reads it
/// (`warden-host-api`'s tty access), and the bytes cross the real pty.
#[test]
fn a_linux_tty_uart_works_through_the_broker_and_the_worker() {
    require_root("the supervisor");
    let pty = nix::pty::openpty(None, None).unwrap();
    let slave_path = nix::unistd::ttyname(&pty.slave).unwrap();
    // The simulated board with its console UART replaced by that tty.
    let sim = common::repo().join("buildroot-overlay/board/warden-sim");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("hardware-definitions")).unwrap();
    for entry in std::fs::read_dir(sim.join("hardware-definitions")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path()
                .join("hardware-definitions")
                .join(entry.file_name()),
        )
        .unwrap();
    }
    let mut board: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sim.join("board.json")).unwrap()).unwrap();
    let console = board["Resources"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["Peripheral"] == "SIM_ISU0_UART")
        .unwrap();
    *console = serde_json::json!({
        "Peripheral": "SIM_ISU0_UART",
        "Uart": {"Path": slave_path, "Baud": 115200}
    });
    let board_file = dir.path().join("board.json");
    std::fs::write(&board_file, board.to_string()).unwrap();

    let f = fixture();
    let d = Daemon::start_on(&f, &board_file);
    start(
        &d,
        &f,
        PROBE,
        r#"{"Uart": ["$UART_CONSOLE"]}"#,
        &[
            "uart-write UART_CONSOLE through a real tty\\n",
            "uart-read UART_CONSOLE 16 20000",
        ],
    );
    let mut master = std::fs::File::from(pty.master);
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.ends_with(b"\n") {
        let n = master.read(&mut buf).unwrap();
        assert!(n > 0, "the tty closed");
        got.extend_from_slice(&buf[..n]);
    }
    // The supervisor made the line raw: no output processing turned the newline into CR LF.
    assert_eq!(got, b"through a real tty\n");
    master.write_all(b"back").unwrap();
    assert_eq!(wait_line(&d, PROBE, "uart-read"), r#"uart-read ok "back""#);
    let logs = d.logs(PROBE).join("\n");
    assert!(logs.contains("seccomp: profile worker_devices"), "{logs}");
    drop(pty.slave);
    d.kill();
}

/// A WASI sleep parks the worker's tokio runtime: on a condition variable (a private futex
/// wait with a deadline) without the I/O driver, in `epoll_wait` with it. Each worker profile
/// must allow its way of sleeping, or an app dies of SIGSYS at its first sleep.
#[test]
fn an_app_sleeps_under_every_worker_profile() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    for (id, capabilities, profile) in [
        ("5e1e0000-0000-4000-8000-000000000001", "{}", "worker "),
        (
            "5e1e0000-0000-4000-8000-000000000002",
            r#"{"Gpio": ["$SAMPLE_LED"]}"#,
            "worker_devices ",
        ),
        (
            "5e1e0000-0000-4000-8000-000000000003",
            r#"{"MutableStorage": {"SizeKB": 64}}"#,
            "worker_storage ",
        ),
        (
            "5e1e0000-0000-4000-8000-000000000004",
            r#"{"AllowedConnections": ["127.0.0.1"]}"#,
            "worker_network ",
        ),
    ] {
        let began = std::time::Instant::now();
        let lines = run(&d, &f, id, capabilities, &["sleep 300", "sleep 1"]);
        assert_eq!(lines, ["sleep ok", "sleep ok"], "under {profile}");
        assert!(began.elapsed() >= std::time::Duration::from_millis(300));
        let logs = d.logs(id).join("\n");
        assert!(
            logs.contains(&format!("profile {profile}")),
            "{profile} not in the log:\n{logs}"
        );
    }
    d.kill();
}
