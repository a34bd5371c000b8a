//! `warden device …` against a stand-in for wardend's control socket: what the CLI prints for
//! the supervisor's answers.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::process::Command;

/// Serves one request on `socket` with `body` (200, JSON); returns the request line.
fn answer_once(socket: &std::path::Path, body: &'static str) -> std::thread::JoinHandle<String> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        first
    })
}

fn quota(body: &'static str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let server = answer_once(&socket, body);
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["device", "--socket"])
        .arg(&socket)
        .args(["app", "quota", "app-1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        server.join().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn quota_says_whether_it_is_a_hard_limit() {
    let (request, out) = quota(
        r#"{"quota_bytes":65536,"used_bytes":4096,"available_bytes":61440,"enforced":true,"backing":"ext4-image"}"#,
    );
    assert_eq!(request, "GET /apps/app-1/quota HTTP/1.1\r\n");
    assert_eq!(
        out.trim(),
        "used 4096 of 65536 bytes (61440 available); a hard limit (ext4-image)"
    );
}

#[test]
fn quota_not_enforced_says_so_and_why() {
    let (_, out) = quota(
        r#"{"quota_bytes":65536,"used_bytes":0,"available_bytes":65536,"enforced":false,"backing":"directory","requested_quota_bytes":131072,"reason":"no loop devices"}"#,
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "used 0 of 65536 bytes (65536 available); NOT enforced (directory)",
            "the manifest asks for 131072 bytes, not yet in force",
            "why: no loop devices",
        ]
    );
}

#[test]
fn quota_of_an_app_without_storage() {
    let (_, out) = quota(r#"{"storage":null}"#);
    assert_eq!(out.trim(), "the app has no MutableStorage");
}

fn warden_against(body: &'static str, args: &[&str]) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let server = answer_once(&socket, body);
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(&args[..1])
        .arg("--socket")
        .arg(&socket)
        .args(&args[1..])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    (
        server.join().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

#[test]
fn sim_drives_a_line_and_names_a_uarts_other_end() {
    let (request, out) = warden_against(
        r#"{"peripheral":"SIM_GPIO3","level":"low"}"#,
        &["sim", "gpio", "SAMPLE_BUTTON_1", "--drive", "low"],
    );
    assert_eq!(
        request,
        "POST /sim/gpio/SAMPLE_BUTTON_1?level=low HTTP/1.1\r\n"
    );
    assert_eq!(out.trim(), "SIM_GPIO3 low");
    let (request, out) = warden_against(
        r#"{"peripheral":"SIM_ISU0_UART","path":"/dev/pts/9"}"#,
        &["sim", "uart", "SIM_ISU0_UART"],
    );
    assert_eq!(request, "GET /sim/uart/SIM_ISU0_UART HTTP/1.1\r\n");
    assert_eq!(out.trim(), "/dev/pts/9");
    let (request, out) = warden_against(
        r#"{"peripheral":"SIM_PWM_CONTROLLER0","channel":1,"state":{"period_ns":1000,"duty_ns":250,"inversed":false,"enabled":true}}"#,
        &["device", "sim", "pwm", "SAMPLE_LED_PWM_CONTROLLER", "1"],
    );
    assert_eq!(
        request,
        "GET /sim/pwm/SAMPLE_LED_PWM_CONTROLLER/1 HTTP/1.1\r\n"
    );
    assert_eq!(
        out.trim(),
        "SIM_PWM_CONTROLLER0 channel 1: period 1000 ns, duty 250 ns, normal, enabled"
    );
}

#[test]
fn sim_power_shows_the_board_and_wakes_it() {
    let (request, out) = warden_against(
        r#"{"state":"off","profile":"balanced","reboots":1,"power_downs":0,"wakes_in_s":3599,"requests":[{"app":"0b7e6a52-3c1d-4e8f-9a2b-6c5d4e3f2a10","action":{"action":"power_down","max_residency_s":3600},"at":1}]}"#,
        &["sim", "power"],
    );
    assert_eq!(request, "GET /sim/power HTTP/1.1\r\n");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "power off, profile balanced, 1 reboot(s), 0 power-down(s), wakes in 3599 s"
    );
    assert!(
        lines[1].starts_with("  0b7e6a52-3c1d-4e8f-9a2b-6c5d4e3f2a10 asked for ")
            && lines[1].contains("power_down"),
        "{out}"
    );
    let (request, _) = warden_against(
        r#"{"state":"rebooting","profile":"balanced","reboots":1,"power_downs":0,"wakes_in_s":null,"requests":[]}"#,
        &["sim", "power", "--wake"],
    );
    assert_eq!(request, "POST /sim/power/wake HTTP/1.1\r\n");
}
