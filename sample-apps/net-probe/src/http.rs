//! The `http-get` and `http-post` steps: one `wasi:http` outgoing request, its body read to
//! the end.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

/// Sends the request; the status and the body, or the error code's name (with its detail).
pub(crate) fn request(url: &str, body: Option<&[u8]>) -> Result<(u16, Vec<u8>), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url:?} has no scheme"))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_owned()),
    };
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    let method = if body.is_some() {
        Method::Post
    } else {
        Method::Get
    };
    request.set_method(&method).map_err(|()| "bad method")?;
    request.set_scheme(Some(&scheme)).map_err(|()| "bad scheme")?;
    request
        .set_authority(Some(authority))
        .map_err(|()| format!("bad authority {authority:?}"))?;
    request
        .set_path_with_query(Some(path))
        .map_err(|()| format!("bad path {path:?}"))?;
    let outgoing = request.body().map_err(|()| "no request body")?;
    if let Some(bytes) = body {
        let stream = outgoing.write().map_err(|()| "no body stream")?;
        stream
            .blocking_write_and_flush(bytes)
            .map_err(|e| format!("writing the body: {e:?}"))?;
    }
    OutgoingBody::finish(outgoing, None).map_err(name)?;
    let pending = outgoing_handler::handle(request, None).map_err(name)?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or("no response after the pollable was ready")?
        .map_err(|()| "the response was taken twice")?
        .map_err(name)?;
    let status = response.status();
    let incoming = response.consume().map_err(|()| "no response body")?;
    let stream = incoming.stream().map_err(|()| "no response body stream")?;
    let mut data = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => data.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading the body: {}", e.to_debug_string()));
            }
        }
    }
    Ok((status, data))
}

/// An error code as its case name (`HttpRequestDenied`), its detail after it if it has one.
fn name(code: ErrorCode) -> String {
    let text = format!("{code:?}");
    text.strip_prefix("ErrorCode::").unwrap_or(&text).to_owned()
}
