//! The control API over a real Unix socket (workers scripted): resources, clear 4xx errors for
//! malformed requests, and concurrent start/stop that never breaks the supervisor.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::{APP_A, FakeCompiler, Fixture, Script, fixture, manifest, pack, wait_for};
use wardend::supervisor::{RestartPolicy, Supervisor};

struct Api {
    socket: PathBuf,
    sup: Supervisor,
    _f: Fixture,
}

fn api() -> Api {
    let f = fixture();
    let sup = Supervisor::open(
        wardend::state::StateDir::open(&f.state_path).unwrap(),
        common::device(&f),
        Box::new(FakeCompiler::new()),
        Box::new(Script::default()),
        RestartPolicy::default(),
        16,
    )
    .unwrap();
    let socket = f.tmp.path().join("control.sock");
    let listener = wardend::http::bind(&socket).unwrap();
    let served = sup.clone();
    std::thread::spawn(move || {
        wardend::http::serve(
            listener,
            Arc::new(move |req: &mut wardend::http::Request<'_>| wardend::api::route(&served, req)),
        )
    });
    Api { socket, sup, _f: f }
}

/// Sends raw bytes, returns (status, body).
fn raw(socket: &Path, request: &[u8]) -> (u16, String) {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn call(socket: &Path, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    let (status, text) = raw(socket, &request);
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

#[test]
fn the_socket_is_root_only() {
    let api = api();
    let mode = std::fs::metadata(&api.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn sideload_list_start_stop_logs_quota_uninstall() {
    let api = api();
    let s = &api.socket;
    let package = pack(&api._f, &manifest(APP_A, "$SAMPLE_LED"), 1, None);
    let (status, body) = call(s, "POST", "/images", &package);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["component_id"], APP_A);
    assert_eq!(body["decision"], "first install");

    let (status, body) = call(s, "GET", "/apps", b"");
    assert_eq!(status, 200);
    assert_eq!(body[0]["id"], APP_A);
    wait_for("running", || {
        api.sup.app(APP_A).unwrap().uid > 0
            && matches!(
                api.sup.app(APP_A).unwrap().status,
                wardend::supervisor::Status::Running { .. }
            )
    });

    let (status, body) = call(s, "POST", &format!("/apps/{APP_A}/start"), b"");
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("already running"));

    let (status, body) = call(s, "POST", &format!("/apps/{APP_A}/stop"), b"");
    assert_eq!(status, 200);
    assert_eq!(body["status"]["state"], "stopped");

    let (status, body) = call(s, "GET", &format!("/apps/{APP_A}/logs"), b"");
    assert_eq!(status, 200);
    let texts: Vec<&str> = body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert!(texts.contains(&"hello from the fake"), "{texts:?}");

    let (status, body) = call(s, "GET", &format!("/apps/{APP_A}/quota"), b"");
    assert_eq!(status, 200);
    assert!(body["storage"].is_null(), "{body}");

    let (status, body) = call(s, "DELETE", &format!("/apps/{APP_A}"), b"");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("storage=keep"));
    let (status, _) = call(s, "DELETE", &format!("/apps/{APP_A}?storage=wipe"), b"");
    assert_eq!(status, 200);
    let (status, _) = call(s, "GET", &format!("/apps/{APP_A}"), b"");
    assert_eq!(status, 404);

    // A rollback to an older version is a clear 422 with the reason.
    let v2 = pack(&api._f, &manifest(APP_A, "$SAMPLE_LED"), 2, None);
    assert_eq!(call(s, "POST", "/images", &v2).0, 201);
    let (status, body) = call(s, "POST", "/images", &package);
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("rollback"),
        "{body}"
    );

    let (status, body) = call(s, "GET", "/status", b"");
    assert_eq!(status, 200);
    assert_eq!(body["board"], "warden-sim");
    assert_eq!(body["apps"], 1);
}

#[test]
fn malformed_requests_get_clear_4xx_errors() {
    let api = api();
    let s = &api.socket;
    let cases: &[(&str, &str, &[u8], u16, &str)] = &[
        ("GET", "/nowhere", b"", 404, "no resource"),
        ("PUT", "/apps", b"", 405, "not allowed"),
        ("GET", "/apps/not-a-guid", b"", 400, "is not a GUID"),
        (
            "GET",
            &format!("/apps/{APP_A}"),
            b"",
            404,
            "no app with component id",
        ),
        ("POST", &format!("/apps/{APP_A}/start"), b"", 404, "no app"),
        (
            "GET",
            &format!("/apps/{APP_A}/frobnicate"),
            b"",
            404,
            "no such app resource",
        ),
        (
            "GET",
            &format!("/apps/{APP_A}/logs?after=x"),
            b"",
            400,
            "must be a number",
        ),
        ("GET", "/reports?limit=many", b"", 400, "must be a number"),
        ("GET", "/reports?app=zzz", b"", 400, "is not a GUID"),
        ("POST", "/images", b"not a package", 422, "package refused"),
        ("POST", "/images", b"", 422, "package refused"),
    ];
    for (method, path, body, status, fragment) in cases {
        let (got, answer) = call(s, method, path, body);
        assert_eq!(got, *status, "{method} {path}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(fragment), "{method} {path}: {message}");
    }
    // A body without Content-Length, chunked bodies, a lying Content-Length.
    assert_eq!(raw(s, b"POST /images HTTP/1.1\r\n\r\n").0, 411);
    assert_eq!(
        raw(
            s,
            b"POST /images HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        .0,
        411
    );
    let huge = format!(
        "POST /images HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        1u64 << 40
    );
    assert_eq!(raw(s, huge.as_bytes()).0, 413);
    let (status, body) = raw(
        s,
        b"GET /status HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n",
    );
    assert_eq!(status, 400, "{body}");
    // The supervisor still answers.
    assert_eq!(call(s, "GET", "/status", b"").0, 200);
}

#[test]
fn concurrent_starts_and_stops_never_break_the_supervisor() {
    let api = api();
    let package = pack(&api._f, &manifest(APP_A, "$SAMPLE_LED"), 1, None);
    assert_eq!(call(&api.socket, "POST", "/images", &package).0, 201);
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let socket = api.socket.clone();
            std::thread::spawn(move || {
                let mut statuses = Vec::new();
                for j in 0..10 {
                    let action = if (i + j) % 2 == 0 { "start" } else { "stop" };
                    statuses.push(call(&socket, "POST", &format!("/apps/{APP_A}/{action}"), b"").0);
                }
                statuses
            })
        })
        .collect();
    for t in threads {
        for status in t.join().unwrap() {
            assert!(status == 200 || status == 409, "unexpected status {status}");
        }
    }
    let (status, body) = call(&api.socket, "POST", &format!("/apps/{APP_A}/stop"), b"");
    assert_eq!(status, 200);
    assert_eq!(body["status"]["state"], "stopped");
    assert_eq!(call(&api.socket, "GET", "/status", b"").0, 200);
}
