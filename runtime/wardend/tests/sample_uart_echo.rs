#![allow(clippy::unwrap_used)]
//! The C sample `sample-apps/uart-echo`, built with `warden app build` (clang-19, wasi-libc and
//! the SDK's generated C bindings), under a real `wardend` on the simulated board: the test is
//! the other end of the console UART's pty and asserts what the board saw — each line the
//! sample answered — and that without its `Uart` grant the sample is refused `not-granted`,
//! with everything else running on. Needs root, like the supervisor itself.

mod common;

use std::io::{Read, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::daemon::{Daemon, require_root};
use common::fixture;
use common::samples::{install, manifest};

const SAMPLE: &str = "uart-echo";

/// The UART the sample's manifest grants and its code opens.
const UART: &str = "UART_CONSOLE";

/// The board's end of a simulated UART, read on a thread so that a sample that never answers
/// fails the test instead of hanging it.
struct Terminal {
    file: std::fs::File,
    bytes: mpsc::Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl Terminal {
    /// Opens the pty of the simulated `uart` (`GET /sim/uart/NAME`), in raw mode so the line
    /// discipline neither echoes nor rewrites what crosses it.
    fn open(d: &Daemon, uart: &str) -> Terminal {
        let (status, body) = d.call("GET", &format!("/sim/uart/{uart}"), b"");
        assert_eq!(status, 200, "{body}");
        let path = body["path"].as_str().unwrap();
        let file = common::open_raw_pty(path);
        let mut reader = file.try_clone().unwrap();
        let (tx, bytes) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 256];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Terminal {
            file,
            bytes,
            pending: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.file.write_all(bytes).unwrap();
    }

    /// The next line the sample wrote, without its CRLF; fails after 30 s without one.
    fn line_bytes(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line = self.pending[..end].to_vec();
                self.pending.drain(..end + 2);
                return line;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.bytes.recv_timeout(left) {
                Ok(bytes) => self.pending.extend_from_slice(&bytes),
                Err(e) => panic!(
                    "no line from the sample ({e}); so far {:?}",
                    String::from_utf8_lossy(&self.pending)
                ),
            }
        }
    }

    /// The next line, as text.
    fn line(&mut self) -> String {
        String::from_utf8(self.line_bytes()).unwrap()
    }

    /// Sends `request` and returns the answer line.
    fn ask(&mut self, request: &[u8]) -> String {
        self.send(request);
        self.line()
    }
}

#[test]
fn uart_echo_answers_each_line_on_the_boards_uart() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    let mut terminal = Terminal::open(&d, UART);
    let id = install(&d, &f, SAMPLE, &manifest(SAMPLE));
    assert_eq!(terminal.line(), "uart-echo ready");

    assert_eq!(terminal.ask(b"PING\n"), "PONG");
    // CRLF ends one line, not two: exactly one answer, then the next line's.
    assert_eq!(terminal.ask(b"ECHO hello, board\r\n"), "hello, board");
    assert_eq!(terminal.ask(b"ping\r"), "PONG");
    assert_eq!(
        terminal.ask(b"FROB the widget\n"),
        "ERR unknown command: FROB"
    );
    // A line longer than the sample's 128-byte buffer is answered with an error once it ends,
    // and the sample reads on: the next line is answered as usual.
    let mut long = vec![b'A'; 1000];
    long.push(b'\n');
    assert_eq!(terminal.ask(&long), "ERR line too long (at most 128 bytes)");
    assert_eq!(terminal.ask(b"ECHO still here\n"), "still here");
    // Two lines in one write: two answers, in order.
    terminal.send(b"PING\nECHO second\n");
    assert_eq!(terminal.line(), "PONG");
    assert_eq!(terminal.line(), "second");
    // A UART carries any byte, but the log takes UTF-8 text: bytes that are not are echoed
    // as they came and logged escaped, never passed on as a string the host must refuse.
    terminal.send(b"ECHO \xff\xfe ok\n");
    assert_eq!(terminal.line_bytes(), b"\xff\xfe ok");
    assert_eq!(terminal.ask(b"PING\n"), "PONG");
    let uptime: u64 = terminal.ask(b"UPTIME\n").parse().unwrap();
    assert!(uptime < 600, "uptime {uptime} s");

    // What it did is in its log, through the warden:device log interface.
    let logs = d.logs(&id).join("\n");
    for expected in [
        "[info] uart-echo: listening on UART_CONSOLE",
        r#"[info] uart-echo: "PING" -> "PONG""#,
        r#"[warn] uart-echo: "FROB the widget" -> "ERR unknown command: FROB""#,
        "[warn] uart-echo: dropped a line longer than the buffer",
        r#"[info] uart-echo: "ECHO \xff\xfe ok" -> "\xff\xfe ok""#,
    ] {
        assert!(
            logs.contains(expected),
            "{expected:?} not in the log:\n{logs}"
        );
    }
    let (_, app) = d.call("GET", &format!("/apps/{id}"), b"");
    assert_eq!(app["status"]["state"], "running", "{app}");
    // The same run all along: no line made it fail and restart.
    assert_eq!(app["restarts"], 0, "{app}");
    d.kill();
}

#[test]
fn uart_echo_without_its_uart_grant_is_refused_not_granted() {
    require_root("the supervisor");
    let f = fixture();
    let d = Daemon::start(&f);
    // The sample as shipped, on the UART: the neighbour that must keep running.
    let mut terminal = Terminal::open(&d, UART);
    let granted = install(&d, &f, SAMPLE, &manifest(SAMPLE));
    assert_eq!(terminal.line(), "uart-echo ready");

    // The same code under another component id, its manifest granting an LED but no UART.
    let shipped = manifest(SAMPLE);
    let ungranted = shipped
        .replace(&granted, "5cc06372-16fd-484d-8521-00000000c0de")
        .replace(
            r#""Uart": [ "$UART_CONSOLE" ]"#,
            r#""Gpio": [ "$SAMPLE_LED" ]"#,
        );
    assert_ne!(ungranted, shipped, "the sample's manifest changed shape");
    assert!(!ungranted.contains("Uart"), "{ungranted}");
    let id = install(&d, &f, SAMPLE, &ungranted);

    // The refusal is an error value the app logs and exits on (status 1), not a trap.
    let mut logs = String::new();
    d.wait_for("the refusal in the app's log", |d| {
        logs = d.logs(&id).join("\n");
        logs.contains("opening UART_CONSOLE")
    });
    assert!(
        logs.contains("[error] uart-echo: opening UART_CONSOLE: not-granted: "),
        "{logs}"
    );
    let mut report = serde_json::Value::Null;
    d.wait_for("the exit report", |d| {
        let (_, reports) = d.call("GET", &format!("/reports?app={id}"), b"");
        report = reports
            .as_array()
            .unwrap()
            .first()
            .cloned()
            .unwrap_or_default();
        !report.is_null()
    });
    assert_eq!(report["failure"]["kind"], "exit", "{report}");
    assert_eq!(report["failure"]["code"], 1, "{report}");

    // Nothing else noticed: the granted sample still answers, and no report names it.
    assert_eq!(terminal.ask(b"PING\n"), "PONG");
    let (_, reports) = d.call("GET", &format!("/reports?app={granted}"), b"");
    assert_eq!(reports, serde_json::json!([]), "{reports}");
    d.kill();
}
