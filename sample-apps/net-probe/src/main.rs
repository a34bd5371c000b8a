//! net-probe: a Warden test app that runs network steps with Rust's `std::net` (which, on
//! wasm32-wasip2, is `wasi:sockets`), so end-to-end tests can check what the host's broker
//! allows, refuses and carries.
//!
//! # Steps
//!
//! Each command-line argument (after `argv[0]`) is one step: words separated by spaces, a verb
//! first (in an `app_manifest.json`, one `CmdArgs` string per step).
//!
//! ```text
//! lookup HOST                     prints the addresses HOST resolves to, sorted
//! tcp-echo HOST PORT TEXT         connects, sends TEXT, reads as many bytes back; prints them
//!                                 quoted
//! tcp-send HOST PORT BYTES        connects, sends BYTES bytes in 64 KiB writes, shuts down
//!                                 its sending side, reads the peer's answer to its end;
//!                                 prints `BYTES MICROSECONDS ANSWER` (the time from connected
//!                                 to answered)
//! tcp-serve PORT COUNT            listens on 0.0.0.0:PORT, prints `tcp-serve listening` at
//!                                 once, then echoes COUNT connections, each to its end;
//!                                 prints the bytes echoed
//! udp-echo HOST PORT TEXT         binds an ephemeral port, connects to HOST:PORT, sends
//!                                 TEXT, waits up to 5 s for a datagram; prints it quoted
//! http-get URL                    a `wasi:http` GET; prints `STATUS "BODY"`
//! http-post URL TEXT              a `wasi:http` POST of TEXT; prints `STATUS "BODY"`
//! udp-serve PORT COUNT            binds 0.0.0.0:PORT, prints `udp-serve listening` at once,
//!                                 then sends each of COUNT datagrams back to its sender;
//!                                 prints the senders
//! ```
//!
//! HOST is a name or a literal address. TEXT is the rest of the step, with `\n`, `\\` and
//! `\xNN` escapes.
//!
//! # Output
//!
//! One line per step on stdout (two for the servers), starting with the verb: `VERB ok
//! [VALUES...]`, or `VERB error KIND MESSAGE` where KIND is the `std::io::ErrorKind`
//! (`PermissionDenied`, `ConnectionRefused`, …). A step that does not parse is a usage error:
//! nothing runs and the probe exits 1; otherwise it exits 0.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod http;

/// One parsed step.
enum Step {
    Lookup(String),
    TcpEcho(String, u16, Vec<u8>),
    TcpSend(String, u16, u64),
    TcpServe(u16, u32),
    UdpEcho(String, u16, Vec<u8>),
    UdpServe(u16, u32),
    Http(String, Option<Vec<u8>>),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() {
        eprintln!("net-probe: no steps given");
        return ExitCode::from(1);
    }
    let mut steps = Vec::with_capacity(args.len());
    for (index, arg) in args.iter().enumerate() {
        match parse(arg) {
            Ok(step) => steps.push(step),
            Err(problem) => {
                eprintln!("net-probe: step {} {arg:?}: {problem}", index + 1);
                return ExitCode::from(1);
            }
        }
    }
    for (arg, step) in args.iter().zip(&steps) {
        let verb = arg.split(' ').next().unwrap_or_default();
        let line = if let Step::Http(url, body) = step {
            match http::request(url, body.as_deref()) {
                Ok((status, body)) => format!("ok {status} {}", quote(&body)),
                Err(e) => format!("error {e}"),
            }
        } else {
            match run(verb, step) {
            Ok(values) if values.is_empty() => "ok".to_owned(),
            Ok(values) => format!("ok {values}"),
                Err(e) => format!("error {:?} {}", e.kind(), one_line(&e.to_string())),
            }
        };
        println!("{verb} {line}");
    }
    ExitCode::SUCCESS
}

fn parse(arg: &str) -> Result<Step, String> {
    let mut words = arg.splitn(4, ' ');
    let mut word = |what: &str| {
        words
            .next()
            .filter(|w| !w.is_empty())
            .ok_or_else(|| format!("missing {what}"))
    };
    let port = |w: &str| w.parse::<u16>().map_err(|_| format!("bad PORT {w:?}"));
    let step = match word("a step")? {
        "lookup" => Step::Lookup(word("HOST")?.to_owned()),
        "tcp-echo" => Step::TcpEcho(
            word("HOST")?.to_owned(),
            port(word("PORT")?)?,
            unescape(word("TEXT")?)?,
        ),
        "tcp-send" => {
            let host = word("HOST")?.to_owned();
            let port = port(word("PORT")?)?;
            let bytes = word("BYTES")?;
            let bytes = bytes.parse().map_err(|_| format!("bad BYTES {bytes:?}"))?;
            Step::TcpSend(host, port, bytes)
        }
        "tcp-serve" | "udp-serve" => {
            let verb = arg.split(' ').next().unwrap_or_default();
            let port = port(word("PORT")?)?;
            let count = word("COUNT")?;
            let count = count.parse().map_err(|_| format!("bad COUNT {count:?}"))?;
            if verb == "tcp-serve" {
                Step::TcpServe(port, count)
            } else {
                Step::UdpServe(port, count)
            }
        }
        "udp-echo" => Step::UdpEcho(
            word("HOST")?.to_owned(),
            port(word("PORT")?)?,
            unescape(word("TEXT")?)?,
        ),
        "http-get" => Step::Http(word("URL")?.to_owned(), None),
        "http-post" => Step::Http(word("URL")?.to_owned(), Some(unescape(word("TEXT")?)?)),
        other => return Err(format!("unknown step {other:?}")),
    };
    if words.next().is_some() {
        return Err("too many words".into());
    }
    Ok(step)
}

fn run(verb: &str, step: &Step) -> io::Result<String> {
    match step {
        Step::Lookup(host) => {
            let mut found: Vec<String> = (host.as_str(), 0)
                .to_socket_addrs()?
                .map(|a| a.ip().to_string())
                .collect();
            found.sort();
            found.dedup();
            Ok(found.join(" "))
        }
        Step::TcpEcho(host, port, text) => {
            let mut stream = TcpStream::connect((host.as_str(), *port))?;
            stream.write_all(text)?;
            let mut reply = vec![0; text.len()];
            stream.read_exact(&mut reply)?;
            Ok(quote(&reply))
        }
        Step::TcpSend(host, port, bytes) => {
            let mut stream = TcpStream::connect((host.as_str(), *port))?;
            let chunk = vec![0x5a; 64 * 1024];
            let started = Instant::now();
            let mut left = *bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                stream.write_all(&chunk[..n])?;
                left -= n as u64;
            }
            stream.shutdown(Shutdown::Write)?;
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer)?;
            let micros = started.elapsed().as_micros();
            Ok(format!("{bytes} {micros} {}", quote(&answer)))
        }
        Step::TcpServe(port, count) => {
            let listener = TcpListener::bind(("0.0.0.0", *port))?;
            announce(verb);
            let mut echoed = 0u64;
            for _ in 0..*count {
                let (mut stream, _) = listener.accept()?;
                let mut buf = [0; 4096];
                loop {
                    let n = stream.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    stream.write_all(&buf[..n])?;
                    echoed += n as u64;
                }
            }
            Ok(echoed.to_string())
        }
        Step::UdpEcho(host, port, text) => {
            let socket = UdpSocket::bind(("0.0.0.0", 0))?;
            socket.connect((host.as_str(), *port))?;
            socket.send(text)?;
            // wasi-libc has no SO_RCVTIMEO for UDP: wait by polling a non-blocking socket.
            socket.set_nonblocking(true)?;
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut buf = [0; 2048];
            loop {
                match socket.recv(&mut buf) {
                    Ok(n) => return Ok(quote(&buf[..n])),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Step::Http(..) => unreachable!("run by `http::request`"),
        Step::UdpServe(port, count) => {
            let socket = UdpSocket::bind(("0.0.0.0", *port))?;
            announce(verb);
            let mut buf = [0; 2048];
            let mut peers: Vec<SocketAddr> = Vec::new();
            for _ in 0..*count {
                let (n, from) = socket.recv_from(&mut buf)?;
                socket.send_to(&buf[..n], from)?;
                peers.push(from);
            }
            let peers: Vec<String> = peers.iter().map(SocketAddr::to_string).collect();
            Ok(peers.join(" "))
        }
    }
}

/// Says a server is ready, at once (the test waits for this line before connecting).
fn announce(verb: &str) {
    println!("{verb} listening");
    let _ = io::stdout().flush();
}

fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.bytes();
    while let Some(b) = chars.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match chars.next() {
            Some(b'n') => out.push(b'\n'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex: Vec<u8> = chars.by_ref().take(2).collect();
                let hex = std::str::from_utf8(&hex).map_err(|_| "bad \\x escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad \\x{hex}"))?);
            }
            other => return Err(format!("unknown escape \\{}", other.map_or('?', char::from))),
        }
    }
    Ok(out)
}

/// Bytes as a double-quoted string, non-printable ones as `\xNN`.
fn quote(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

fn one_line(message: &str) -> String {
    message.replace('\\', "\\\\").replace('\n', "\\n")
}
