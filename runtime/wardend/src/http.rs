//! A deliberately small HTTP/1.1 server for the control API on a Unix socket: one request per
//! connection, bounded head and body, `Content-Length` bodies only, a read timeout, and a cap on
//! concurrent connections. It runs as root, so it stays small enough to read in one sitting.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Largest request head (request line and headers).
pub const MAX_HEAD: usize = 16 * 1024;
/// Most headers in a request.
pub const MAX_HEADERS: usize = 32;
/// Most connections served at once; more are answered 503 at once.
pub const MAX_CONNECTIONS: usize = 16;
/// Most unread request bytes drained after answering, so the client can read the answer.
const LINGER_BYTES: u64 = 1024 * 1024;
/// How long a client may take to send its request.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed request. The body is read lazily, bounded by the route.
pub struct Request<'a> {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub content_length: Option<u64>,
    body: &'a mut dyn Read,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("content_length", &self.content_length)
            .finish_non_exhaustive()
    }
}

impl Request<'_> {
    /// A query parameter's value.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The body as a reader of exactly `Content-Length` bytes, refused above `limit`.
    pub fn body(&mut self, limit: u64) -> Result<impl Read + '_, Response> {
        match self.content_length {
            None => Err(Response::error(411, "a body needs a Content-Length header")),
            Some(len) if len > limit => Err(Response::error(
                413,
                &format!("body of {len} bytes is larger than the limit of {limit} bytes"),
            )),
            Some(len) => Ok((&mut self.body).take(len)),
        }
    }

    /// The body as JSON, at most `limit` bytes.
    pub fn json<T: serde::de::DeserializeOwned>(&mut self, limit: u64) -> Result<T, Response> {
        let mut bytes = Vec::new();
        self.body(limit)?
            .read_to_end(&mut bytes)
            .map_err(|e| Response::error(400, &format!("cannot read the body: {e}")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Response::error(400, &format!("invalid JSON body: {e}")))
    }
}

/// A response: a status and a JSON body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

impl Response {
    pub fn json(status: u16, value: &impl serde::Serialize) -> Response {
        let body = serde_json::to_vec_pretty(value).unwrap_or_else(|_| b"{}".to_vec());
        Response {
            status,
            body,
            content_type: "application/json",
        }
    }

    pub fn error(status: u16, message: &str) -> Response {
        Response::json(status, &serde_json::json!({ "error": message }))
    }

    pub fn text(status: u16, text: String) -> Response {
        Response {
            status,
            body: text.into_bytes(),
            content_type: "text/plain; charset=utf-8",
        }
    }

    fn write_to(&self, out: &mut impl Write) -> std::io::Result<()> {
        write!(
            out,
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        )?;
        out.write_all(&self.body)?;
        out.flush()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Binds the control socket at `path`, readable and writable by its owner (root) only.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if path.exists() {
        // A socket left by a previous run; anything else is not ours to remove.
        let meta = std::fs::symlink_metadata(path)?;
        if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) {
            std::fs::remove_file(path)?;
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves connections until the listener fails; each request goes to `handler`.
pub fn serve<H>(listener: UnixListener, handler: Arc<H>)
where
    H: Fn(&mut Request<'_>) -> Response + Send + Sync + 'static,
{
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = Response::error(503, "too many connections").write_to(&mut stream);
            continue;
        }
        let handler = Arc::clone(&handler);
        let counter = Arc::clone(&active);
        let spawned = std::thread::Builder::new()
            .name("control-api".into())
            .spawn(move || {
                // The connection counts until its answer is sent; the lingering close after it
                // is bounded in time on its own, and a client that reconnects at once must not
                // find its previous connection still counted.
                let writer = answer(stream, &*handler);
                counter.fetch_sub(1, Ordering::SeqCst);
                if let Some((writer, reader)) = writer {
                    linger(&writer, reader);
                }
            });
        if spawned.is_err() {
            // The closure (and its counter decrement) never ran.
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Reads one request from `stream`, answers it, and closes.
pub fn handle(stream: UnixStream, handler: &dyn Fn(&mut Request<'_>) -> Response) {
    if let Some((writer, reader)) = answer(stream, handler) {
        linger(&writer, reader);
    }
}

/// Reads one request from `stream` and answers it; returns the connection's two halves for
/// [`linger`].
fn answer(
    stream: UnixStream,
    handler: &dyn Fn(&mut Request<'_>) -> Response,
) -> Option<(UnixStream, BufReader<UnixStream>)> {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let Ok(mut writer) = stream.try_clone() else {
        return None;
    };
    let mut reader = BufReader::new(stream);
    let response = match read_head(&mut reader) {
        Ok(head) => match parse_head(&head) {
            Ok((method, target, content_length)) => {
                let (path, query) = split_target(&target);
                let mut request = Request {
                    method,
                    path,
                    query,
                    content_length,
                    body: &mut reader,
                };
                handler(&mut request)
            }
            Err(response) => response,
        },
        Err(response) => response,
    };
    let _ = response.write_to(&mut writer);
    let _ = writer.shutdown(std::net::Shutdown::Write);
    Some((writer, reader))
}

/// Lingering close: a client that sent more than was read (a refused body, an oversized head)
/// would otherwise see a reset instead of the answer. Drains a bounded amount, for at most
/// half a second without data.
fn linger(writer: &UnixStream, reader: BufReader<UnixStream>) {
    let _ = writer.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = std::io::copy(&mut reader.take(LINGER_BYTES), &mut std::io::sink());
}

/// Reads up to the blank line that ends the head, at most [`MAX_HEAD`] bytes.
fn read_head(reader: &mut impl BufRead) -> Result<Vec<u8>, Response> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader
            .take((MAX_HEAD - head.len()) as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Response::error(400, &format!("cannot read the request: {e}")))?;
        if n == 0 {
            return Err(Response::error(
                400,
                "the request ended before its head did",
            ));
        }
        head.extend_from_slice(&line);
        if head.len() > MAX_HEAD {
            return Err(Response::error(
                431,
                &format!("request head larger than {MAX_HEAD} bytes"),
            ));
        }
        if line == b"\r\n" || line == b"\n" {
            return Ok(head);
        }
    }
}

type Head = (String, String, Option<u64>);

fn parse_head(head: &[u8]) -> Result<Head, Response> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Response::error(400, "incomplete request")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Response::error(
                431,
                &format!("more than {MAX_HEADERS} headers"),
            ));
        }
        Err(e) => return Err(Response::error(400, &format!("malformed request: {e}"))),
    }
    let method = request.method.unwrap_or_default().to_owned();
    let target = request.path.unwrap_or_default().to_owned();
    let mut content_length = None;
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let value = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| Response::error(400, "Content-Length is not a number"))?;
            if content_length.is_some_and(|seen| seen != value) {
                return Err(Response::error(400, "conflicting Content-Length headers"));
            }
            content_length = Some(value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::error(
                411,
                "chunked bodies are not accepted; send Content-Length",
            ));
        }
    }
    Ok((method, target, content_length))
}

fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    (path.to_owned(), query)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(raw: &[u8]) -> String {
        let (client, server) = UnixStream::pair().unwrap();
        let mut c = client.try_clone().unwrap();
        c.write_all(raw).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        handle(server, &|req: &mut Request<'_>| {
            let mut body = String::new();
            if req.content_length.is_some() {
                match req.body(10) {
                    Ok(mut r) => {
                        r.read_to_string(&mut body).unwrap();
                    }
                    Err(resp) => return resp,
                }
            }
            Response::json(
                200,
                &serde_json::json!({"m": req.method, "p": req.path, "b": body, "q": req.query("x")}),
            )
        });
        let mut out = String::new();
        let mut client = client;
        client.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn a_request_is_parsed_and_answered() {
        let out = roundtrip(b"POST /apps/x/start?x=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        assert!(out.contains("\"p\": \"/apps/x/start\""), "{out}");
        assert!(out.contains("\"b\": \"abc\""), "{out}");
        assert!(out.contains("\"q\": \"1\""), "{out}");
    }

    #[test]
    fn bad_requests_get_clear_4xx_answers() {
        for (raw, status) in [
            (&b"garbage\r\n\r\n"[..], "400"),
            (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "400"),
            (
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "400",
            ),
            (
                b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                "411",
            ),
            (
                b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n01234567890",
                "413",
            ),
            (b"GET / HTTP/1.1\r\n", "400"),
        ] {
            let out = roundtrip(raw);
            assert!(
                out.starts_with(&format!("HTTP/1.1 {status}")),
                "{:?} -> {out}",
                String::from_utf8_lossy(raw)
            );
            assert!(out.contains("\"error\""), "{out}");
        }
        let mut huge = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..2000 {
            huge.extend_from_slice(format!("X-{i}: {}\r\n", "y".repeat(8)).as_bytes());
        }
        huge.extend_from_slice(b"\r\n");
        assert!(roundtrip(&huge).starts_with("HTTP/1.1 431"));
    }
}
