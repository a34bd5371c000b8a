//! A client of `wardend`'s control API: HTTP/1.1 with JSON over its Unix socket, one request
//! per connection. Used by `warden device …`, and by `cargo xtask` for the demo and benchmarks.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

/// Largest answer read from the supervisor.
const MAX_ANSWER: u64 = 64 * 1024 * 1024;

/// One request to the supervisor at `socket`; returns the HTTP status and the JSON answer (a
/// JSON string holding the body if the body is not JSON). `body_len` bytes of `body` are sent.
pub fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&mut dyn Read>,
    body_len: u64,
) -> anyhow::Result<(u16, Value)> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach wardend at {} (is it running? --socket names another)",
            socket.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(600)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: wardend\r\nContent-Length: {body_len}\r\n\r\n"
    )?;
    if let Some(body) = body {
        std::io::copy(&mut body.take(body_len), &mut stream).context("sending the body")?;
    }
    let mut answer = Vec::new();
    (&mut stream)
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .context("reading the answer")?;
    let text = String::from_utf8_lossy(&answer);
    let status: u16 = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .with_context(|| {
            format!(
                "not an HTTP answer: {:?}",
                text.chars().take(80).collect::<String>()
            )
        })?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let value = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
    Ok((status, value))
}

/// [`request`] without a body, with a 4xx/5xx answer turned into an error carrying the
/// supervisor's message.
pub fn call(socket: &Path, method: &str, path: &str) -> anyhow::Result<Value> {
    let (status, value) = request(socket, method, path, None, 0)?;
    checked(status, value)
}

/// The answer, or an error naming the supervisor's refusal.
pub fn checked(status: u16, value: Value) -> anyhow::Result<Value> {
    if status >= 400 {
        let message = value
            .get("error")
            .and_then(Value::as_str)
            .map_or_else(|| value.to_string(), str::to_owned);
        anyhow::bail!("wardend refused ({status}): {message}");
    }
    Ok(value)
}
