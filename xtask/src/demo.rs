//! `cargo xtask demo [--once]`: the main job — the demo fleet on the simulated board.
//!
//! Builds every sample app from source with `warden app build` (Rust, C, Python, JavaScript,
//! AssemblyScript) and the C echo firmware for the real-time core; makes development keys and
//! a root-signed trust store; packs and signs every app with its unchanged Azure Sphere
//! manifest (and shows a tampered package refused); starts the real supervisor, `wardend`, on
//! the simulated board in a scratch directory, with a telemetry collector on loopback; installs
//! the fleet; and shows it live — each app's state, memory and restarts, and the board: the
//! LED, the button, the UART's traffic, the temperature and potentiometer the demo turns, what
//! the collector received, the inter-core echoes — until Ctrl-C, then stops the supervisor and
//! removes everything it made.
//!
//! `--once` is the same run headless, for CI: after installing, it checks each app's
//! observable behaviour on the board and exits non-zero naming every app that misbehaved.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::os::fd::AsFd as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use warden_cli::client;

use crate::device::{Daemon, Scratch, Warden};
use crate::{cargo, render, step};

/// The telemetry sample's collector: the name its manifest allows and the port in its
/// `CmdArgs`, mapped to loopback by the supervisor's hosts table.
const COLLECTOR_HOST: &str = "telemetry.warden.test";
const COLLECTOR_PORT: u16 = 8080;
/// The host the telemetry sample also tries, which its manifest does not allow.
const DISALLOWED_HOST: &str = "elsewhere.warden.test";
/// The UART the uart-echo sample answers on, and the LED and button blinky uses.
const UART: &str = "UART_CONSOLE";
const LED: &str = "SAMPLE_LED";
const BUTTON: &str = "SAMPLE_BUTTON_1";
/// The temperature sensor sensor-logger reads (bus and I2C address) and the potentiometer
/// telemetry samples.
const SENSOR_BUS: &str = "SENSOR_I2C";
const SENSOR_ADDRESS: u16 = 0x48;
const POTENTIOMETER: &str = "POTENTIOMETER_ADC";
/// The SPI bus of the LSM6DS3 motion sensor (chip select 0), whose temperature telemetry sends.
const MOTION_BUS: &str = "SENSOR_SPI";
/// How much of each app's output the demo keeps (the checks look at the last minute or two).
const OUTPUT_KEPT: usize = 64 * 1024;
/// How long `--once` gives each app to show it works.
const CHECK_TIMEOUT: Duration = Duration::from_secs(90);

/// One app of the fleet: a sample directory and what shows it works.
struct Member {
    sample: &'static str,
    language: &'static str,
    /// What `--once` waits for, as a description and a test on the snapshot.
    expect: &'static str,
    works: fn(&Snapshot, &str) -> bool,
}

/// The fleet, in install order. `blinky-py` is blinky in Python: both cannot own the LED at
/// once, so the fleet has the Rust one (the tests run both).
const FLEET: &[Member] = &[
    Member {
        sample: "hello",
        language: "Rust",
        expect: "its greeting, then a clean exit",
        works: |s, id| s.state(id) == "exited" && s.output(id).contains("hello from a Warden app"),
    },
    Member {
        sample: "blinky",
        language: "Rust",
        expect: "SAMPLE_LED seen high and low, and a faster rate after a button press",
        works: |s, id| s.led_high && s.led_low && s.output(id).contains("pressed: blinking every"),
    },
    Member {
        sample: "uart-echo",
        language: "C",
        expect: "PONG on the UART for the demo's PING",
        works: |s, _| s.uart_replies.iter().any(|l| l == "PONG"),
    },
    Member {
        sample: "sensor-logger",
        language: "Python",
        expect: "a reading of the temperature the demo set",
        works: |s, id| {
            s.state(id) == "running"
                && s.output(id)
                    .lines()
                    .any(|l| l.starts_with("reading ") && l.ends_with(" C"))
        },
    },
    Member {
        sample: "telemetry",
        language: "JavaScript",
        expect: "readings received by the collector, and the disallowed host refused",
        works: |s, id| s.collector_posts > 0 && s.output(id).contains(DISALLOWED_HOST),
    },
    Member {
        sample: "intercore",
        language: "Rust",
        expect: "echoes from the firmware on the emulated Cortex-M4",
        works: |s, id| s.output(id).contains(": echo in "),
    },
    Member {
        sample: "heartbeat",
        language: "AssemblyScript",
        expect: "heartbeats",
        works: |s, id| s.output(id).matches("heartbeat").count() >= 2,
    },
];

/// The firmware the intercore sample talks to.
const FIRMWARE: &str = "rt-echo-c";

pub(crate) fn run(root: &Path, args: &[String]) -> Result<()> {
    let once = match args {
        [] => false,
        [flag] if flag == "--once" => true,
        _ => bail!("usage: cargo xtask demo [--once]"),
    };
    // Ctrl-C (or SIGTERM) from here on ends the demo in order: whatever runs stops, and the
    // supervisor, in its own process group so the terminal's Ctrl-C does not reach it first,
    // is stopped by the demo, which then removes its scratch directory.
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&stop))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&stop))?;
    crate::setup::ensure_tools(root)?;
    step(
        "build the warden CLI, the supervisor and the worker",
        cargo(root).args([
            "build",
            "--locked",
            "-p",
            "warden-cli",
            "-p",
            "wardend",
            "-p",
            "warden-worker",
        ]),
    )?;
    let names: Vec<&str> = FLEET.iter().map(|m| m.sample).collect();
    let built = crate::samples::build(root, &names)?;
    let (firmware, _) = crate::firmware::build_firmware(root)?;

    let scratch = Scratch::new("demo")?;
    let dir = scratch.path();
    let warden = Warden {
        bin: root.join("target/debug/warden"),
        verbose: true,
    };
    let (app_key, rt_key, trust) = keys_and_trust(&warden, dir)?;
    let mut packages = Vec::new();
    for (member, wasm) in FLEET.iter().zip(&built) {
        let package = dir.join(format!("{}.wpkg", member.sample));
        let manifest = root
            .join("sample-apps")
            .join(member.sample)
            .join("app_manifest.json");
        warden.pack(&manifest, wasm, &app_key, 1, &package)?;
        packages.push(package);
    }
    let rt_package = dir.join(format!("{FIRMWARE}.wpkg"));
    warden.ok(
        "pack and sign the real-time firmware with the rtcore key",
        |c| {
            c.args(["rtcore", "pack", "--manifest"])
                .arg(
                    root.join("sample-apps")
                        .join(FIRMWARE)
                        .join("app_manifest.json"),
                )
                .arg("--elf")
                .arg(&firmware)
                .arg("--key")
                .arg(&rt_key)
                .args(["--version", "1", "-o"])
                .arg(&rt_package);
        },
    )?;
    show_tampering_refused(&warden, dir, &packages[0], &trust)?;

    // The collector telemetry posts to, on loopback; the hosts table maps both the allowed and
    // the disallowed name there, so only the manifest stands between the app and the second.
    let collector = Collector::start()?;
    let hosts = dir.join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1 {COLLECTOR_HOST} {DISALLOWED_HOST}\n"),
    )?;
    let bin_dir = root.join("target/debug");
    let mut daemon = Daemon::command(root, &bin_dir, dir, &trust, None);
    daemon.arg("--hosts").arg(&hosts);
    std::os::unix::process::CommandExt::process_group(&mut daemon, 0);
    println!(
        "\n==> start the supervisor on the simulated board\n$ {}",
        render(&daemon)
    );
    let daemon = Daemon::start(daemon, dir)?;
    let socket = daemon.socket.clone();
    warden.ok("install the firmware on the real-time core", |c| {
        c.args(["device", "--socket"])
            .arg(&socket)
            .arg("sideload")
            .arg(&rt_package);
    })?;
    for (member, package) in FLEET.iter().zip(&packages) {
        warden.ok(
            &format!(
                "install {} ({}): verified, compiled in a confined worker, started",
                member.sample, member.language
            ),
            |c| {
                c.args(["device", "--socket"])
                    .arg(&socket)
                    .arg("sideload")
                    .arg(package);
            },
        )?;
    }
    let ids: Vec<String> = FLEET
        .iter()
        .map(|m| component_id(root, m.sample))
        .collect::<Result<_>>()?;
    let mut board = Board::open(&socket)?;
    let result = if once {
        check_fleet(&mut board, &collector, &ids, &stop)
    } else {
        live(&mut board, &collector, &ids, &stop)
    };
    drop(daemon);
    drop(scratch);
    result?;
    println!("\ndemo: the supervisor is stopped and its scratch directory removed");
    Ok(())
}

/// Development keys (root, app, rtcore) and a trust store listing the app and rtcore keys.
fn keys_and_trust(warden: &Warden, dir: &Path) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let (app_key, trust) = warden.keys_and_trust(dir)?;
    let keys = dir.join("keys");
    warden.ok("make a real-time firmware signing key", |c| {
        c.args(["keys", "new", "--role", "rtcore", "-o"]).arg(&keys);
    })?;
    warden.ok("trust it for the rtcore role", |c| {
        c.args(["trust", "add", "--trust"])
            .arg(&trust)
            .arg("--root-key")
            .arg(keys.join("root.key.pem"))
            .arg("--key")
            .arg(keys.join("rtcore.pub.pem"))
            .args(["--role", "rtcore"]);
    })?;
    Ok((app_key, keys.join("rtcore.key.pem"), trust))
}

/// Verifies a package, then shows a copy with one bit flipped refused.
fn show_tampering_refused(warden: &Warden, dir: &Path, package: &Path, trust: &Path) -> Result<()> {
    warden.ok("verify a package against the trust store", |c| {
        c.args(["app", "verify"])
            .arg(package)
            .arg("--trust")
            .arg(trust);
    })?;
    let tampered = dir.join("tampered.wpkg");
    let mut bytes = std::fs::read(package)?;
    let last = bytes.len().checked_sub(1).context("empty package")?;
    bytes[last] ^= 0x01;
    std::fs::write(&tampered, &bytes)?;
    warden.refused("a copy with one payload bit flipped is refused", |c| {
        c.args(["app", "verify"])
            .arg(&tampered)
            .arg("--trust")
            .arg(trust);
    })
}

fn component_id(root: &Path, sample: &str) -> Result<String> {
    let path = root
        .join("sample-apps")
        .join(sample)
        .join("app_manifest.json");
    let manifest: Value = serde_json::from_slice(&std::fs::read(&path)?)
        .with_context(|| format!("reading {}", path.display()))?;
    manifest["ComponentId"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{} has no ComponentId", path.display()))
}

/// A tiny HTTP collector on loopback: counts the POSTs it receives and keeps the last body.
struct Collector {
    posts: Arc<Mutex<(usize, String)>>,
}

impl Collector {
    fn start() -> Result<Collector> {
        let listener = TcpListener::bind(("127.0.0.1", COLLECTOR_PORT)).with_context(|| {
            format!(
                "the telemetry collector needs 127.0.0.1:{COLLECTOR_PORT} (the port in the \
                 telemetry sample's CmdArgs); something else is listening there"
            )
        })?;
        let posts = Arc::new(Mutex::new((0, String::new())));
        let seen = Arc::clone(&posts);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                if let (Some(body), Ok(mut seen)) = (read_request(&stream), seen.lock()) {
                    seen.0 += 1;
                    seen.1 = body;
                }
                let _ = (&stream).write_all(
                    b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            }
        });
        Ok(Collector { posts })
    }

    fn received(&self) -> (usize, String) {
        self.posts.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// One HTTP request's body (headers read up to the blank line, then `Content-Length` bytes).
fn read_request(stream: &std::net::TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length.min(64 * 1024)];
    reader.read_exact(&mut body).ok()?;
    Some(String::from_utf8_lossy(&body).into_owned())
}

/// The simulated board as the demo sees and drives it from outside: the control API and the
/// UART's other end.
struct Board {
    socket: PathBuf,
    uart: std::fs::File,
    uart_pending: Vec<u8>,
    /// The sequence number of the last log line read, per app.
    read_to: BTreeMap<String, u64>,
    snapshot: Snapshot,
}

/// What the demo has seen so far.
#[derive(Default)]
struct Snapshot {
    apps: Vec<Value>,
    /// Each app's output (its stdout and stderr lines, one per line), the latest
    /// [`OUTPUT_KEPT`] bytes of it.
    outputs: BTreeMap<String, String>,
    led_high: bool,
    led_low: bool,
    led: String,
    button: String,
    temperature_c: f64,
    potentiometer: u32,
    uart_sent: Vec<String>,
    uart_replies: Vec<String>,
    collector_posts: usize,
    collector_last: String,
}

impl Snapshot {
    fn app(&self, id: &str) -> Option<&Value> {
        self.apps.iter().find(|a| a["id"] == id)
    }

    fn state(&self, id: &str) -> String {
        self.app(id)
            .and_then(|a| a["status"]["state"].as_str())
            .unwrap_or("-")
            .to_owned()
    }

    fn output(&self, id: &str) -> &str {
        self.outputs.get(id).map_or("", String::as_str)
    }
}

impl Board {
    fn open(socket: &Path) -> Result<Board> {
        let uart = client::call(socket, "GET", &format!("/sim/uart/{UART}"))?;
        let path = uart["path"]
            .as_str()
            .with_context(|| format!("no pty for {UART}: {uart}"))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .with_context(|| format!("opening {UART}'s other end {path}"))?;
        // Raw: no echo, no line editing; bytes as the app sent them. Non-blocking reads.
        let mut termios = nix::sys::termios::tcgetattr(file.as_fd())?;
        nix::sys::termios::cfmakeraw(&mut termios);
        termios.control_chars[nix::sys::termios::SpecialCharacterIndices::VMIN as usize] = 0;
        termios.control_chars[nix::sys::termios::SpecialCharacterIndices::VTIME as usize] = 0;
        nix::sys::termios::tcsetattr(file.as_fd(), nix::sys::termios::SetArg::TCSANOW, &termios)?;
        Ok(Board {
            socket: socket.to_path_buf(),
            uart: file,
            uart_pending: Vec::new(),
            read_to: BTreeMap::new(),
            snapshot: Snapshot {
                temperature_c: 25.0,
                ..Snapshot::default()
            },
        })
    }

    fn call(&self, method: &str, path: &str) -> Result<Value> {
        client::call(&self.socket, method, path)
    }

    /// The demo's hand on the board at `tick` (seconds since the fleet started): the
    /// temperature drifts, the potentiometer turns, a PING or an ECHO goes down the UART every
    /// 3 s, and the button is pressed every 10 s.
    fn drive(&mut self, tick: u64) -> Result<()> {
        let phase = tick as f64 / 10.0;
        let temperature = 22.0 + 4.0 * phase.sin();
        let temperature = (temperature * 16.0).round() / 16.0;
        self.call(
            "POST",
            &format!(
                "/sim/sensor/{SENSOR_BUS}/{SENSOR_ADDRESS}?quantity=temperature_c&value={temperature}"
            ),
        )?;
        self.snapshot.temperature_c = temperature;
        // The motion sensor telemetry reads sits a little warmer, on the same drift.
        self.call(
            "POST",
            &format!(
                "/sim/sensor/{MOTION_BUS}/0?quantity=temperature_c&value={}",
                temperature + 3.0
            ),
        )?;
        let raw = ((tick * 97) % 4096) as u32;
        self.call("POST", &format!("/sim/adc/{POTENTIOMETER}/0?raw={raw}"))?;
        self.snapshot.potentiometer = raw;
        if tick.is_multiple_of(3) {
            let line = if tick.is_multiple_of(6) {
                "PING".to_owned()
            } else {
                format!("ECHO hello at {tick} s")
            };
            (&self.uart).write_all(format!("{line}\r\n").as_bytes())?;
            self.snapshot.uart_sent.push(line);
        }
        if tick % 10 == 5 {
            self.call("POST", &format!("/sim/gpio/{BUTTON}?level=low"))?;
            std::thread::sleep(Duration::from_millis(50));
            self.call("POST", &format!("/sim/gpio/{BUTTON}?level=high"))?;
        }
        Ok(())
    }

    /// Reads everything new: apps, their output, the LED and button, the UART, the collector.
    fn observe(&mut self, collector: &Collector) -> Result<()> {
        let apps = self.call("GET", "/apps")?;
        self.snapshot.apps = apps
            .as_array()
            .or_else(|| apps["apps"].as_array())
            .cloned()
            .unwrap_or_default();
        let ids: Vec<String> = self
            .snapshot
            .apps
            .iter()
            .filter_map(|a| a["id"].as_str().map(str::to_owned))
            .collect();
        for id in ids {
            let after = self.read_to.entry(id.clone()).or_default();
            let new = client::call(
                &self.socket,
                "GET",
                &format!("/apps/{id}/logs?after={after}"),
            )?;
            let output = self.snapshot.outputs.entry(id).or_default();
            for line in new["lines"].as_array().into_iter().flatten() {
                *after = (*after).max(line["seq"].as_u64().unwrap_or(*after));
                if line["stream"] != "supervisor" {
                    if !output.is_empty() {
                        output.push('\n');
                    }
                    output.push_str(line["text"].as_str().unwrap_or_default());
                }
            }
            // A live demo runs for hours: keep the latest lines, from a line's start.
            if output.len() > OUTPUT_KEPT {
                let cut = output.len() - OUTPUT_KEPT / 2;
                // By bytes: a newline byte is never inside a character, so `start` is a
                // character boundary.
                let start = output.as_bytes()[cut..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(output.len(), |n| cut + n + 1);
                output.drain(..start);
            }
        }
        let led = self.call("GET", &format!("/sim/gpio/{LED}"))?;
        let led = led["level"].as_str().unwrap_or("-").to_owned();
        self.snapshot.led_high |= led == "high";
        self.snapshot.led_low |= led == "low";
        self.snapshot.led = led;
        let button = self.call("GET", &format!("/sim/gpio/{BUTTON}"))?;
        self.snapshot.button = button["level"].as_str().unwrap_or("-").to_owned();
        let mut buf = [0u8; 512];
        loop {
            match self.uart.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.uart_pending.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e).context("reading the UART"),
            }
        }
        while let Some(end) = self.uart_pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.uart_pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line).trim().to_owned();
            if !line.is_empty() {
                self.snapshot.uart_replies.push(line);
            }
        }
        let (posts, last) = collector.received();
        self.snapshot.collector_posts = posts;
        self.snapshot.collector_last = last;
        Ok(())
    }
}

/// `--once`: drives the board and waits until every app has shown it works, or names those
/// that did not.
fn check_fleet(
    board: &mut Board,
    collector: &Collector,
    ids: &[String],
    stop: &AtomicBool,
) -> Result<()> {
    println!(
        "\n==> check every app's behaviour on the board (up to {} s)",
        CHECK_TIMEOUT.as_secs()
    );
    let started = Instant::now();
    let mut tick = 0;
    let mut passed = vec![false; FLEET.len()];
    while started.elapsed() < CHECK_TIMEOUT && passed.contains(&false) {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        board.drive(tick)?;
        std::thread::sleep(Duration::from_secs(1));
        board.observe(collector)?;
        for ((member, id), ok) in FLEET.iter().zip(ids).zip(passed.iter_mut()) {
            if !*ok && (member.works)(&board.snapshot, id) {
                *ok = true;
                println!(
                    "    ok   {:<14} {:<15} {} ({} s)",
                    member.sample,
                    member.language,
                    member.expect,
                    started.elapsed().as_secs()
                );
            }
        }
        tick += 1;
    }
    println!("\n{}", render_view(&board.snapshot, ids, started.elapsed()));
    let failed: Vec<String> = FLEET
        .iter()
        .zip(ids)
        .zip(&passed)
        .filter(|(_, ok)| !**ok)
        .map(|((m, id), _)| {
            format!(
                "{} ({}): expected {}; state {}, last output {:?}",
                m.sample,
                m.language,
                m.expect,
                board.snapshot.state(id),
                board.snapshot.output(id).lines().last().unwrap_or("")
            )
        })
        .collect();
    if !failed.is_empty() {
        bail!("apps that misbehaved:\n  {}", failed.join("\n  "));
    }
    println!("demo: every app of the fleet behaved as expected");
    Ok(())
}

/// The live view, redrawn every second until Ctrl-C.
fn live(board: &mut Board, collector: &Collector, ids: &[String], stop: &AtomicBool) -> Result<()> {
    let started = Instant::now();
    let mut tick = 0;
    while !stop.load(Ordering::Relaxed) {
        board.drive(tick)?;
        std::thread::sleep(Duration::from_secs(1));
        board.observe(collector)?;
        // Clear the screen and draw from the top.
        print!(
            "\x1b[2J\x1b[H{}",
            render_view(&board.snapshot, ids, started.elapsed())
        );
        std::io::stdout().flush()?;
        tick += 1;
    }
    println!("\n==> Ctrl-C: stopping the supervisor (it stops every app) and cleaning up");
    Ok(())
}

/// The fleet and the board as text.
fn render_view(s: &Snapshot, ids: &[String], elapsed: Duration) -> String {
    let mut out = format!(
        "Warden demo fleet on the simulated board — {} s — Ctrl-C stops and cleans up\n\n",
        elapsed.as_secs()
    );
    out.push_str(&format!(
        "{:<15} {:<15} {:<12} {:>9} {:>8}  {}\n",
        "APP", "LANGUAGE", "STATE", "MEMORY", "RESTARTS", "LAST OUTPUT"
    ));
    let rows = FLEET
        .iter()
        .map(|m| (m.sample, m.language))
        .zip(ids.iter().map(String::as_str));
    for ((sample, language), id) in rows {
        let app = s.app(id);
        let memory = app.and_then(|a| a["memory_bytes"].as_u64()).map_or_else(
            || "-".to_owned(),
            |b| format!("{:.1} MiB", b as f64 / 1048576.0),
        );
        let restarts = app.and_then(|a| a["restarts"].as_u64()).unwrap_or(0);
        let last: String = s
            .output(id)
            .lines()
            .last()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        out.push_str(&format!(
            "{sample:<15} {language:<15} {:<12} {memory:>9} {restarts:>8}  {last}\n",
            s.state(id)
        ));
    }
    // The real-time app on the emulated core.
    if let Some(rt) = s.apps.iter().find(|a| a["kind"] == "rtcore") {
        out.push_str(&format!(
            "{:<15} {:<15} {:<12} {:>9} {:>8}  on core {}\n",
            rt["name"].as_str().unwrap_or("-"),
            "C (Cortex-M4)",
            rt["status"]["state"].as_str().unwrap_or("-"),
            "-",
            rt["restarts"].as_u64().unwrap_or(0),
            rt["core"].as_str().unwrap_or("-")
        ));
    }
    out.push_str("\nTHE BOARD (seen and driven from outside, through /sim)\n");
    out.push_str(&format!("  {LED:<22} {}\n", s.led));
    out.push_str(&format!(
        "  {BUTTON:<22} {} (the demo presses it every 10 s)\n",
        s.button
    ));
    out.push_str(&format!(
        "  {:<22} {:.2} °C (TMP102 at 0x{SENSOR_ADDRESS:02x}, set by the demo)\n",
        SENSOR_BUS, s.temperature_c
    ));
    out.push_str(&format!(
        "  {MOTION_BUS:<22} {:.2} °C (LSM6DS3 on chip select 0, set by the demo)\n",
        s.temperature_c + 3.0
    ));
    out.push_str(&format!(
        "  {POTENTIOMETER:<22} {} of 4095 (turned by the demo)\n",
        s.potentiometer
    ));
    out.push_str(&format!(
        "  {UART:<22} sent {:?}, answered {:?}\n",
        s.uart_sent.last().map_or("", String::as_str),
        s.uart_replies.last().map_or("", String::as_str)
    ));
    out.push_str(&format!(
        "  collector (loopback)   {} readings received; last {}\n",
        s.collector_posts,
        s.collector_last.chars().take(70).collect::<String>()
    ));
    out
}
