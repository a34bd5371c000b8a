//! Network access end to end, under Azure Sphere's rules: a real guest component
//! (`sample-apps/net-probe`, Rust `std::net`, so `wasi:sockets`) runs in a confined worker —
//! no `socket(2)`, an empty network namespace — and every lookup, connection and server socket
//! goes through the broker. The supervisor resolves with a hosts table it is given
//! (`allowed.test` and `other.test`, on two different loopback addresses), and the servers and
//! clients on the other side are this test's own sockets. Needs root, like the supervisor.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::daemon::{Daemon, Options, require_root};
use common::guest::{self, wait_exit, wait_line};
use common::{Fixture, fixture};

const PROBE: &str = "5d1c0f4e-8a39-4f6b-9c2e-7b3a1e6d40c9";
const OTHER: &str = "c3d2e1f0-0a1b-4c2d-8e3f-405162738495";

/// Where the hosts table says the two names are.
const ALLOWED_IP: &str = "127.0.0.2";
const OTHER_IP: &str = "127.0.0.3";
const HOSTS: &str = "# the test's resolver\n127.0.0.2 allowed.test\n127.0.0.3 other.test\n";

/// The net-probe component, built once.
fn probe_wasm() -> &'static [u8] {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| guest::wasm("net-probe", "WARDEN_NET_PROBE"))
}

fn daemon(f: &Fixture) -> Daemon {
    let hosts = f.tmp.path().join("hosts");
    std::fs::write(&hosts, HOSTS).unwrap();
    Daemon::start_with_hosts(f, &hosts)
}

fn start(d: &Daemon, f: &Fixture, id: &str, capabilities: &str, steps: &[&str]) {
    guest::start(d, f, probe_wasm(), id, capabilities, steps);
}

fn run(d: &Daemon, f: &Fixture, id: &str, capabilities: &str, steps: &[&str]) -> Vec<String> {
    start(d, f, id, capabilities, steps);
    wait_exit(d, id)
}

/// A TCP echo server on `ip`, on a free port, echoing each connection to its end; counts the
/// connections it accepted.
fn echo_server(ip: &str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut buf = [0; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, accepted)
}

/// A UDP echo server on `ip`, on a free port.
fn udp_echo_server(ip: &str) -> u16 {
    let socket = UdpSocket::bind((ip, 0)).unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    port
}

/// A port nobody listens on now (bound and released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn an_allowed_host_is_looked_up_and_connected_and_data_flows() {
    require_root("the supervisor");
    let f = fixture();
    let d = daemon(&f);
    let (port, accepted) = echo_server(ALLOWED_IP);
    let lines = run(
        &d,
        &f,
        PROBE,
        r#"{"AllowedConnections": ["allowed.test"]}"#,
        &[
            "lookup allowed.test",
            &format!("tcp-echo allowed.test {port} hello through the broker"),
            // The address the lookup returned may now be used as a literal, too.
            &format!("tcp-echo {ALLOWED_IP} {port} again"),
        ],
    );
    assert_eq!(
        lines,
        [
            format!("lookup ok {ALLOWED_IP}"),
            r#"tcp-echo ok "hello through the broker""#.to_owned(),
            r#"tcp-echo ok "again""#.to_owned(),
        ]
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    let logs = d.logs(PROBE).join("\n");
    assert!(logs.contains("seccomp: profile worker_network"), "{logs}");
    d.kill();
}

#[test]
fn unlisted_names_literals_and_answers_are_refused() {
    require_root("the supervisor");
    let f = fixture();
    let d = daemon(&f);
    let (allowed_port, _) = echo_server(ALLOWED_IP);
    let (other_port, other_accepted) = echo_server(OTHER_IP);
    let lines = run(
        &d,
        &f,
        PROBE,
        r#"{"AllowedConnections": ["allowed.test"]}"#,
        &[
            // A name not in AllowedConnections: the supervisor does not even resolve it.
            "lookup other.test",
            &format!("tcp-echo other.test {other_port} x"),
            // The address `other.test` resolves to, as a literal: not on the list.
            &format!("tcp-echo {OTHER_IP} {other_port} x"),
            // An allowed name's address before any lookup returned it: not yet allowed.
            &format!("tcp-echo {ALLOWED_IP} {allowed_port} x"),
            &format!("udp-echo {OTHER_IP} {other_port} x"),
        ],
    );
    assert_eq!(lines.len(), 5, "{lines:?}");
    // `access-denied` reaches std as EACCES, whichever step asked.
    for (line, verb) in lines
        .iter()
        .zip(["lookup", "tcp-echo", "tcp-echo", "tcp-echo", "udp-echo"])
    {
        assert!(
            line.starts_with(&format!("{verb} error PermissionDenied")),
            "{lines:?}"
        );
    }
    assert_eq!(
        other_accepted.load(Ordering::SeqCst),
        0,
        "a refused connection reached the server"
    );
    d.kill();
}

#[test]
fn literal_addresses_on_the_list_connect_and_refusals_are_error_values() {
    require_root("the supervisor");
    let f = fixture();
    let d = daemon(&f);
    let (port, accepted) = echo_server(OTHER_IP);
    let closed = free_port();
    let lines = run(
        &d,
        &f,
        PROBE,
        &format!(r#"{{"AllowedConnections": ["{OTHER_IP}", "127.0.0.1"]}}"#),
        &[
            &format!("tcp-echo {OTHER_IP} {port} literal"),
            &format!("tcp-echo 127.0.0.1 {closed} x"),
        ],
    );
    assert_eq!(lines[0], r#"tcp-echo ok "literal""#);
    assert!(
        lines[1].starts_with("tcp-echo error ConnectionRefused"),
        "{lines:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    d.kill();
}

#[test]
fn an_app_without_network_capabilities_is_refused_without_a_crash() {
    require_root("the supervisor");
    let f = fixture();
    let d = daemon(&f);
    let (port, accepted) = echo_server(ALLOWED_IP);
    let lines = run(
        &d,
        &f,
        OTHER,
        "{}",
        &[
            &format!("tcp-echo {ALLOWED_IP} {port} x"),
            "lookup allowed.test",
        ],
    );
    assert!(
        lines[0].starts_with("tcp-echo error PermissionDenied"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("lookup error PermissionDenied"),
        "{lines:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    let logs = d.logs(OTHER).join("\n");
    assert!(logs.contains("seccomp: profile worker ("), "{logs}");
    d.kill();
}

#[test]
fn udp_to_an_allowed_host_echoes() {
    require_root("the supervisor");
    let f = fixture();
    let d = daemon(&f);
    let port = udp_echo_server(ALLOWED_IP);
    let lines = run(
        &d,
        &f,
        PROBE,
        r#"{"AllowedConnections": ["allowed.test"]}"#,
        &[&format!("udp-echo allowed.test {port} datagram")],
    );
    assert_eq!(lines, [r#"udp-echo ok "datagram""#]);
    d.kill();
}

#[test]
fn a_tcp_server_port_is_handed_over_and_others_are_refused() {
    require_root("the supervisor");
    let f = fixture();
    let d = daemon(&f);
    let port = free_port();
    let unlisted = free_port();
    start(
        &d,
        &f,
        PROBE,
        &format!(r#"{{"AllowedTcpServerPorts": [{port}]}}"#),
        &[
            &format!("tcp-serve {unlisted} 1"),
            &format!("tcp-serve {port} 1"),
        ],
    );
    let refused = wait_line(&d, PROBE, "tcp-serve error");
    assert!(refused.contains("PermissionDenied"), "{refused}");
    wait_line(&d, PROBE, "tcp-serve listening");
    // The listening socket is the supervisor's: reachable from the host's loopback.
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.write_all(b"served").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut echoed = Vec::new();
    client.read_to_end(&mut echoed).unwrap();
    assert_eq!(echoed, b"served");
    let lines = wait_exit(&d, PROBE);
    assert_eq!(lines.last().unwrap(), "tcp-serve ok 6", "{lines:?}");
    assert!(
        TcpStream::connect(("127.0.0.1", unlisted)).is_err(),
        "the refused port is open"
    );
    d.kill();
}

#[test]
fn a_udp_server_port_answers_its_senders() {
    require_root("the supervisor");
    let f = fixture();
    let d = daemon(&f);
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    start(
        &d,
        &f,
        PROBE,
        &format!(r#"{{"AllowedUdpServerPorts": [{port}]}}"#),
        &[&format!("udp-serve {port} 1")],
    );
    wait_line(&d, PROBE, "udp-serve listening");
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.send_to(b"ping", ("127.0.0.1", port)).unwrap();
    let mut buf = [0; 64];
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"ping");
    assert_eq!(from, SocketAddr::from(([127, 0, 0, 1], port)));
    let lines = wait_exit(&d, PROBE);
    assert_eq!(
        lines.last().unwrap(),
        &format!("udp-serve ok {}", client.local_addr().unwrap()),
        "{lines:?}"
    );
    d.kill();
}

/// A one-request-per-connection HTTP server on `ip`: answers each request with
/// `REQUEST-LINE host=HOST` as its body; counts the connections.
fn http_server(ip: &str) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            count.fetch_add(1, Ordering::SeqCst);
            answer(&mut stream);
        }
    });
    (port, accepted)
}

/// One line from `stream`, without its CRLF.
fn read_line(stream: &mut impl Read) -> String {
    let mut line = Vec::new();
    let mut byte = [0; 1];
    while !line.ends_with(b"\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        line.push(byte[0]);
    }
    String::from_utf8_lossy(line.strip_suffix(b"\r\n").unwrap_or(&line)).into_owned()
}

/// Reads one request from `stream` and answers `200` with `REQUEST-LINE host=HOST` as the
/// body (and ` body=BODY` if the request had one), then `connection: close`.
fn answer(stream: &mut (impl Read + Write)) {
    let mut head = Vec::new();
    let mut byte = [0; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let line = head.lines().next().unwrap_or_default().to_owned();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (key, value) = l.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let host = header("host").unwrap_or_else(|| "none".to_owned());
    // Read the body to its end: closing with bytes unread would reset the connection under
    // the answer.
    let mut request_body = Vec::new();
    if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let size = read_line(stream);
            let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
                return;
            };
            let mut chunk = vec![0; size + 2];
            if stream.read_exact(&mut chunk).is_err() {
                return;
            }
            if size == 0 {
                break;
            }
            request_body.extend_from_slice(&chunk[..size]);
        }
    } else {
        request_body.resize(
            header("content-length").map_or(0, |n| n.parse().unwrap_or(0)),
            0,
        );
        if stream.read_exact(&mut request_body).is_err() {
            return;
        }
    }
    let mut body = format!("{line} host={host}");
    if !request_body.is_empty() {
        body = format!("{body} body={}", String::from_utf8_lossy(&request_body));
    }
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

#[test]
fn http_requests_obey_the_same_list() {
    require_root("the supervisor");
    let f = fixture();
    let d = daemon(&f);
    let (port, accepted) = http_server(ALLOWED_IP);
    let (other_port, other_accepted) = http_server(OTHER_IP);
    let lines = run(
        &d,
        &f,
        PROBE,
        r#"{"AllowedConnections": ["allowed.test"]}"#,
        &[
            &format!("http-get http://allowed.test:{port}/reading?unit=c"),
            &format!("http-get http://other.test:{other_port}/"),
            &format!("http-get http://{OTHER_IP}:{other_port}/"),
        ],
    );
    assert_eq!(
        lines[0],
        format!(r#"http-get ok 200 "GET /reading?unit=c HTTP/1.1 host=allowed.test:{port}""#),
        "{lines:?}"
    );
    assert_eq!(lines[1], "http-get error HttpRequestDenied", "{lines:?}");
    assert_eq!(lines[2], "http-get error HttpRequestDenied", "{lines:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(other_accepted.load(Ordering::SeqCst), 0);

    // No network key: refused in the worker, the server never sees it.
    let lines = run(
        &d,
        &f,
        OTHER,
        "{}",
        &[&format!("http-get http://{ALLOWED_IP}:{port}/")],
    );
    assert_eq!(lines, ["http-get error HttpRequestDenied"]);
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    d.kill();
}

/// A server's certificate chain and key, as a rustls server takes them.
type Identity = (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// A CA the https test makes: self-signed, able to sign server certificates.
type Ca = rcgen::CertifiedIssuer<'static, rcgen::KeyPair>;

fn ca(name: &str) -> Ca {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap()
}

/// A server certificate for `names` (DNS names or IP literals) signed by `ca`, with its key.
fn identity(ca: &Ca, names: &[&str]) -> Identity {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let params = rcgen::CertificateParams::new(names).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    (vec![cert.der().clone()], key.into())
}

/// How a test TLS server behaves.
enum Tls {
    /// TLS with this identity, answering like [`http_server`].
    Serve(Identity),
    /// The same, but it speaks only `h2` (ALPN): it refuses the worker's `http/1.1` with a
    /// `no_application_protocol` alert.
    OnlyH2(Identity),
    /// No TLS at all: a plain HTTP error answered to the ClientHello.
    Plain,
}

/// A TLS server on `ip` (one request per connection, each on its own thread); counts the
/// connections.
fn tls_server(ip: &str, how: Tls) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let config = |(chain, key): Identity, alpn: &[u8]| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        if !alpn.is_empty() {
            config.alpn_protocols = vec![alpn.to_vec()];
        }
        Some(Arc::new(config))
    };
    let config = match how {
        Tls::Serve(identity) => config(identity, b""),
        Tls::OnlyH2(identity) => config(identity, b"h2"),
        Tls::Plain => None,
    };
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            count.fetch_add(1, Ordering::SeqCst);
            let Some(config) = config.clone() else {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
                continue;
            };
            std::thread::spawn(move || {
                let Ok(connection) = rustls::ServerConnection::new(config) else {
                    return;
                };
                // The handshake runs on the first read; a client that refuses the certificate
                // ends it there with an alert, and the read fails.
                let mut tls = rustls::StreamOwned::new(connection, stream);
                answer(&mut tls);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (port, accepted)
}

/// `wardend` with the test's hosts table and `--tls-roots` naming `ca`'s certificate.
fn daemon_trusting(f: &Fixture, ca: &Ca) -> Daemon {
    let hosts = f.tmp.path().join("hosts");
    std::fs::write(&hosts, HOSTS).unwrap();
    let roots = f.tmp.path().join("device-roots.pem");
    std::fs::write(&roots, format!("# the device maker's CA\n{}", ca.pem())).unwrap();
    Daemon::start_with(
        f,
        &Options {
            hosts: Some(hosts),
            tls_roots: Some(roots),
            ..Options::default()
        },
    )
}

/// An allowed literal address with a server certificate naming it.
const LITERAL_IP: &str = "127.0.0.4";

#[test]
fn https_requests_verify_the_server_against_the_device_roots_under_the_same_list() {
    require_root("the supervisor");
    let f = fixture();
    let device_ca = ca("Warden test device CA");
    let unknown_ca = ca("A CA no device trusts");
    let d = daemon_trusting(&f, &device_ca);
    let (good, good_accepted) = tls_server(
        ALLOWED_IP,
        Tls::Serve(identity(&device_ca, &["allowed.test"])),
    );
    let (literal, _) = tls_server(LITERAL_IP, Tls::Serve(identity(&device_ca, &[LITERAL_IP])));
    let (wrong_name, wrong_name_accepted) = tls_server(
        ALLOWED_IP,
        Tls::Serve(identity(&device_ca, &["other.test"])),
    );
    let (unknown, unknown_accepted) = tls_server(
        ALLOWED_IP,
        Tls::Serve(identity(&unknown_ca, &["allowed.test"])),
    );
    let (h2, _) = tls_server(
        ALLOWED_IP,
        Tls::OnlyH2(identity(&device_ca, &["allowed.test"])),
    );
    let (plain, _) = tls_server(ALLOWED_IP, Tls::Plain);
    let lines = run(
        &d,
        &f,
        PROBE,
        &format!(r#"{{"AllowedConnections": ["allowed.test", "{LITERAL_IP}"]}}"#),
        &[
            &format!("http-get https://allowed.test:{good}/reading?unit=c"),
            &format!("http-post https://allowed.test:{good}/upload 21.5"),
            &format!("http-get https://{LITERAL_IP}:{literal}/"),
            &format!("http-get https://allowed.test:{wrong_name}/"),
            &format!("http-get https://allowed.test:{unknown}/"),
            &format!("http-get https://{ALLOWED_IP}:{good}/"),
            &format!("http-get https://allowed.test:{h2}/"),
            &format!("http-get https://allowed.test:{plain}/"),
            &format!("http-get https://other.test:{good}/"),
            &format!("http-get https://{OTHER_IP}:{good}/"),
        ],
    );
    assert_eq!(lines.len(), 10, "{lines:?}");
    // Verified against the device's CA, through the broker and the whole sandbox.
    assert_eq!(
        lines[0],
        format!(r#"http-get ok 200 "GET /reading?unit=c HTTP/1.1 host=allowed.test:{good}""#)
    );
    assert_eq!(
        lines[1],
        format!(r#"http-post ok 200 "POST /upload HTTP/1.1 host=allowed.test:{good} body=21.5""#)
    );
    assert_eq!(
        lines[2],
        format!(r#"http-get ok 200 "GET / HTTP/1.1 host={LITERAL_IP}:{literal}""#)
    );
    // A certificate for another name, or from a CA the device does not trust.
    assert_eq!(lines[3], "http-get error TlsCertificateError");
    assert_eq!(lines[4], "http-get error TlsCertificateError");
    // The address a lookup of allowed.test returned may be connected to, but the name to
    // verify is the URI's host: the certificate does not name that address.
    assert_eq!(lines[5], "http-get error TlsCertificateError");
    // The server's refusal, with its alert (no_application_protocol = 120).
    assert!(
        lines[6].starts_with("http-get error TlsAlertReceived") && lines[6].contains("120"),
        "{lines:?}"
    );
    // Not TLS at all.
    assert_eq!(lines[7], "http-get error TlsProtocolError");
    // The list still decides, before any connection.
    assert_eq!(lines[8], "http-get error HttpRequestDenied");
    assert_eq!(lines[9], "http-get error HttpRequestDenied");
    assert_eq!(good_accepted.load(Ordering::SeqCst), 3);
    assert_eq!(wrong_name_accepted.load(Ordering::SeqCst), 1);
    assert_eq!(unknown_accepted.load(Ordering::SeqCst), 1);

    d.kill();

    // Without `--tls-roots`, the device's CA is not trusted: only the Mozilla roots are.
    let f = fixture();
    let d = daemon(&f);
    let lines = run(
        &d,
        &f,
        OTHER,
        r#"{"AllowedConnections": ["allowed.test"]}"#,
        &[&format!("http-get https://allowed.test:{good}/")],
    );
    assert_eq!(lines, ["http-get error TlsCertificateError"]);
    d.kill();
}

#[test]
fn a_bad_tls_roots_file_stops_the_start_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("roots.pem");
    std::fs::write(
        &roots,
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wardend"))
        .arg("--board")
        .arg(dir.path().join("no-board.json"))
        .arg("--trust")
        .arg(dir.path().join("no-trust.json"))
        .arg("--socket")
        .arg(dir.path().join("control.sock"))
        .arg("--tls-roots")
        .arg(&roots)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:1: a `PRIVATE KEY` section: only CERTIFICATE sections belong in a roots file",
            roots.display()
        )),
        "{stderr}"
    );
    assert!(!dir.path().join("control.sock").exists());
}
