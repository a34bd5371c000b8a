#![allow(clippy::unwrap_used)]
//! The telemetry sample (`sample-apps/telemetry`, JavaScript, built by ComponentizeJS) under a
//! real `wardend` on the simulated board: it reads the potentiometer and the LSM6DS3's
//! temperature (over SPI) the test sets through `/sim`, and POSTs each reading with `fetch` (`wasi:http` outgoing) to this
//! test's collector on loopback, reached by the name its manifest allows; the one host it tries
//! that the manifest does not list gets nothing, and the app logs the refusal and keeps
//! running. One install only: the worker compiles the 16 MB component (the engine included)
//! at install. Needs root, like the supervisor.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::daemon::{Daemon, require_root};
use common::fixture;
use common::samples::{install, manifest};

/// The names the sample's manifest uses, and where this test's hosts table puts them: the
/// allowed collector, and a host the manifest does not list.
const HOSTS: &str = "127.0.0.2 telemetry.warden.test\n127.0.0.3 elsewhere.warden.test\n";
const COLLECTOR_IP: &str = "127.0.0.2";
const UNLISTED_IP: &str = "127.0.0.3";

/// One request the collector received.
struct Posted {
    request_line: String,
    content_type: Option<String>,
    body: serde_json::Value,
}

/// A minimal HTTP/1.1 collector on `ip`: every request is parsed (head, `Content-Length`
/// body) and sent to the channel, and answered `204 No Content`.
fn collector(ip: &str) -> (u16, mpsc::Receiver<Posted>) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let (mut length, mut content_type) = (0, None);
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap(),
                    "content-type" => content_type = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut stream = reader.into_inner();
            stream
                .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .unwrap();
            let posted = Posted {
                request_line: request_line.trim_end().to_owned(),
                content_type,
                body: serde_json::from_slice(&body)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body))),
            };
            if tx.send(posted).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

/// A server on `ip` that only counts the connections it accepts.
fn counting_server(ip: &str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stream.is_ok() {
                count.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    (port, accepted)
}

fn sim(d: &Daemon, path: &str) {
    let (status, body) = d.call("POST", path, b"");
    assert_eq!(status, 200, "POST {path}: {body}");
}

/// Waits for the next POST whose body satisfies `want`, skipping older readings.
fn next_matching(
    rx: &mpsc::Receiver<Posted>,
    within: Duration,
    what: &str,
    want: impl Fn(&serde_json::Value) -> bool,
) -> Posted {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let posted = rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("no reading {what} within {within:?}: {e}"));
        if want(&posted.body) {
            return posted;
        }
    }
}

#[test]
fn readings_are_posted_to_the_allowed_collector_and_the_unlisted_host_is_refused() {
    require_root("the supervisor");
    let f = fixture();
    let hosts = f.tmp.path().join("hosts");
    std::fs::write(&hosts, HOSTS).unwrap();
    let d = Daemon::start_with_hosts(&f, &hosts);
    let (port, readings) = collector(COLLECTOR_IP);
    let (unlisted_port, unlisted_accepted) = counting_server(UNLISTED_IP);

    // What the sensors read before the app starts.
    sim(&d, "/sim/adc/POTENTIOMETER_ADC/0?raw=1234");
    sim(
        &d,
        "/sim/sensor/SENSOR_SPI/0?quantity=temperature_c&value=25.5",
    );

    // The sample's own manifest; only its arguments point at this test's servers.
    let mut m: serde_json::Value = serde_json::from_str(&manifest("telemetry")).unwrap();
    assert_eq!(
        m["Capabilities"]["AllowedConnections"],
        serde_json::json!(["telemetry.warden.test"])
    );
    m["CmdArgs"] = serde_json::json!([
        "--url",
        format!("http://telemetry.warden.test:{port}/readings"),
        "--unlisted",
        format!("http://elsewhere.warden.test:{unlisted_port}/readings"),
        "--interval-ms",
        "200",
    ]);
    let started = Instant::now();
    let id = install(&d, &f, "telemetry", &m.to_string());
    eprintln!(
        "telemetry installed (compiled) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The first reading: what the board was set to.
    let first = next_matching(&readings, Duration::from_secs(60), "at all", |_| true);
    assert_eq!(first.request_line, "POST /readings HTTP/1.1");
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    let body = &first.body;
    assert_eq!(body["seq"], 1, "{body}");
    assert_eq!(body["potentiometer"]["raw"], 1234, "{body}");
    // 1234 of 4095 on a 2.5 V reference.
    assert_eq!(body["potentiometer"]["millivolts"], 753, "{body}");
    assert_eq!(body["temperature_c"], 25.5, "{body}");

    // The readings follow the board: new values arrive in a later reading.
    sim(&d, "/sim/adc/POTENTIOMETER_ADC/0?raw=4000");
    sim(
        &d,
        "/sim/sensor/SENSOR_SPI/0?quantity=temperature_c&value=-10.25",
    );
    let later = next_matching(
        &readings,
        Duration::from_secs(20),
        "of the new values",
        |b| b["potentiometer"]["raw"] == 4000 && b["temperature_c"] == -10.25,
    );
    let seq = later.body["seq"].as_u64().unwrap();
    assert!(seq > 1, "{}", later.body);
    assert_eq!(later.body["potentiometer"]["millivolts"], 2442);

    // The unlisted host: refused before any packet left, logged, and the app carries on.
    assert_eq!(
        unlisted_accepted.load(Ordering::SeqCst),
        0,
        "the host not in AllowedConnections was reached"
    );
    let logs = d.logs(&id);
    assert!(
        logs.iter().any(|l| l
            .starts_with("[warn] telemetry: refused as expected: http://elsewhere.warden.test")),
        "no refusal in the log: {logs:#?}"
    );
    let (_, app) = d.call("GET", &format!("/apps/{id}"), b"");
    assert_eq!(app["status"]["state"], "running", "{app} {logs:#?}");
    assert_eq!(app["restarts"], 0, "{app}");
    eprintln!("telemetry running after reading {seq}: {app}");
    d.kill();
}
