//! `wasi:http/outgoing-handler` for a confined worker: wasmtime-wasi-http serves the
//! `wasi:http` types (requests, fields, bodies, the size and header checks) and calls
//! [`HttpHooks::send_request`] to send one request; that asks the capability broker for the
//! connection, exactly as `wasi:sockets` does — a lookup of the URI's host (only a name the
//! manifest's `AllowedConnections` lists is resolved), then a connection to one of the
//! addresses it returned (only those, or a listed literal) — and speaks HTTP/1.1 (hyper) over
//! the socket the supervisor made. The worker never resolves or connects by itself.
//!
//! `https` adds TLS (rustls, module `tls`) on that socket before HTTP: the server must prove
//! the URI's host with a certificate from the Mozilla roots or the device's own
//! ([`TlsClient`]). `http` and `https` work on any port (default 80 and 443).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use warden_ipc::broker::{Access, Denial, NetError, ResourceRequest, Transport};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::opener::{Opener, SharedOpener};

mod tls;

pub use tls::{TlsClient, TlsSetupError};

/// How long a request may wait for the TLS handshake (`connect-timeout`; the TCP connection
/// itself is the broker's, at most 10 s), its response's first byte, and then between two body
/// frames, unless the app sets its own (`request-options`): wasmtime-wasi-http's defaults.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The future `send_request` returns.
type Sending = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

/// The app's way out for `wasi:http`: its broker and TLS client, or none (the app may not use
/// the network).
pub struct HttpHooks {
    route: Option<Route>,
}

/// How a request leaves: connections from the broker, TLS for `https`.
#[derive(Clone)]
struct Route {
    opener: SharedOpener,
    tls: TlsClient,
}

impl std::fmt::Debug for HttpHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHooks")
            .field("brokered", &self.route.is_some())
            .field("tls", &self.route.as_ref().map(|r| &r.tls))
            .finish()
    }
}

impl HttpHooks {
    /// Requests go through `opener` (the broker), which decides; `https` ones trust what `tls`
    /// trusts.
    pub fn brokered(opener: SharedOpener, tls: TlsClient) -> HttpHooks {
        HttpHooks {
            route: Some(Route { opener, tls }),
        }
    }

    /// Every request is refused `http-request-denied`: the app's manifest grants no network.
    pub fn denied() -> HttpHooks {
        HttpHooks { route: None }
    }
}

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        // A response-processing error has nowhere else to go here, as with wasmtime-wasi-http's
        // own sender.
        _response_error: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Sending {
        let route = self.route.clone();
        Box::new(send(route, request, options))
    }
}

async fn send(
    route: Option<Route>,
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
> {
    let Some(Route { mut opener, tls }) = route else {
        return Err(Error::HttpRequestDenied);
    };
    let uri = request.uri();
    let https = uri.scheme() == Some(&Scheme::HTTPS);
    let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
    // An IPv6 literal comes bracketed (`[::1]`).
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    // Before anything leaves: a host that cannot be a certificate's name is refused here.
    let server = if https {
        Some(tls::server_name(&host)?)
    } else {
        None
    };

    // The broker answers synchronously, on this (the worker's only) thread, as for sockets.
    let fd = connect(&mut opener, &host, port)?;
    let stream = tokio::net::TcpStream::from_std(std::net::TcpStream::from(fd))
        .map_err(|e| Error::InternalError(Some(format!("the broker's socket: {e}"))))?;
    match server {
        Some(server) => {
            let handshake = options
                .and_then(|o| o.connect_timeout)
                .unwrap_or(DEFAULT_TIMEOUT);
            let stream = tls.connect(server, stream, handshake).await?;
            exchange(stream, request, options).await
        }
        None => exchange(stream, request, options).await,
    }
}

/// One HTTP/1.1 request and its response over `stream` (plain TCP, or TLS on it).
async fn exchange<S>(
    stream: S,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(Error::from)?;
    // The connection does the I/O; it runs beside the request on the worker's runtime.
    let driver = tokio::task::spawn(connection);

    // The request line carries the origin form: the scheme and authority are the `Host`
    // header's (set by wasmtime-wasi-http), not a proxy request's absolute form.
    let origin = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    *request.uri_mut() = http::Uri::try_from(origin).map_err(|_| Error::HttpRequestUriInvalid)?;

    let first_byte = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let between_bytes = options
        .and_then(|o| o.between_bytes_timeout)
        .unwrap_or(DEFAULT_TIMEOUT);
    let response = tokio::time::timeout(first_byte, sender.send_request(request))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(Error::from)?;
    let response =
        response.map(|body| TimedBody::new(body, between_bytes).boxed_unsync() as WasiBody);
    let finished = async move {
        match driver.await {
            Ok(result) => result.map_err(Error::from),
            Err(e) => Err(Error::InternalError(Some(format!(
                "the HTTP connection task ended: {e}"
            )))),
        }
    };
    Ok((response, Box::new(finished)))
}

/// A TCP connection to `host`:`port` through the broker: a literal is connected as it is, a
/// name is looked up first and its addresses tried in order until one answers.
fn connect(opener: &mut SharedOpener, host: &str, port: u16) -> Result<OwnedFd, Error> {
    let addresses = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => match opener.open(ResourceRequest::Lookup {
            host: host.to_owned(),
        }) {
            Ok((grant, _)) => match grant.access {
                Access::Addresses { addresses } if !addresses.is_empty() => addresses,
                other => {
                    return Err(Error::InternalError(Some(format!(
                        "the broker answered a lookup of `{host}` with {other:?}"
                    ))));
                }
            },
            Err(denial) => return Err(from_denial(denial)),
        },
    };
    let mut last = Error::DestinationNotFound;
    for ip in addresses {
        let request = ResourceRequest::Connect {
            transport: Transport::Tcp,
            address: SocketAddr::new(ip, port),
        };
        match opener.open(request) {
            Ok((grant, mut fds)) => match (grant.access, fds.pop()) {
                (Access::Socket { .. }, Some(fd)) if fds.is_empty() => return Ok(fd),
                (other, _) => {
                    return Err(Error::InternalError(Some(format!(
                        "the broker answered a connection to {ip}:{port} with {other:?}"
                    ))));
                }
            },
            // Refused by policy: no other address of the name will be allowed either.
            Err(denial @ Denial::NotGranted(_)) => return Err(from_denial(denial)),
            Err(denial) => last = from_denial(denial),
        }
    }
    Err(last)
}

/// A broker's refusal as the `wasi:http` error code the app sees.
fn from_denial(denial: Denial) -> Error {
    match denial {
        Denial::NotGranted(_) => Error::HttpRequestDenied,
        Denial::UnknownName(m) => Error::DnsError {
            rcode: Some(m),
            info_code: None,
        },
        Denial::InvalidArgument(_) => Error::HttpRequestUriInvalid,
        Denial::Network { error, detail } => match error {
            NetError::NameUnresolvable | NetError::ResolverFailure => Error::DnsError {
                rcode: Some(detail),
                info_code: None,
            },
            NetError::ConnectionRefused => Error::ConnectionRefused,
            NetError::Timeout => Error::ConnectionTimeout,
            NetError::Unreachable => Error::DestinationUnavailable,
            NetError::AddressInUse | NetError::AddressNotBindable => {
                Error::InternalError(Some(detail))
            }
        },
        Denial::Busy(m) | Denial::Io(m) => Error::InternalError(Some(m)),
    }
}

/// A response body that fails `connection-read-timeout` when no frame comes for `between`.
struct TimedBody {
    inner: hyper::body::Incoming,
    between: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl TimedBody {
    fn new(inner: hyper::body::Incoming, between: Duration) -> TimedBody {
        TimedBody {
            inner,
            between,
            deadline: Box::pin(tokio::time::sleep(between)),
        }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = tokio::time::Instant::now() + this.between;
                this.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
