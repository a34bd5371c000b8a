//! `wasi:sockets` error codes from the broker's denials and grants. The code is what the app
//! sees; the broker's message rides along as the error's context (in traces and tests).

use std::net::SocketAddr;
use std::os::fd::OwnedFd;

use warden_ipc::broker::{Access, Denial, Grant, NetError, ResourceRequest, Transport};
use wasmtime_wasi::p2::SocketError;
use wasmtime_wasi::p2::bindings::sockets::network::ErrorCode;

/// `code`, with `reason` for whoever reads the error on the host side.
pub(super) fn with_reason(code: ErrorCode, reason: impl Into<String>) -> SocketError {
    SocketError::trap(wasmtime::Error::new(code).context(reason.into()))
}

/// A broker's refusal of `request`, case by case: `not-granted` is `access-denied`,
/// `unknown-name` `name-unresolvable`, `invalid-argument` itself, `busy` `address-in-use` for a
/// server socket (`unknown` otherwise), `io` `unknown`, and a network answer its own code.
pub(super) fn from_denial(denial: Denial, request: &ResourceRequest) -> SocketError {
    let code = match &denial {
        Denial::NotGranted(_) => ErrorCode::AccessDenied,
        Denial::UnknownName(_) => ErrorCode::NameUnresolvable,
        Denial::InvalidArgument(_) => ErrorCode::InvalidArgument,
        Denial::Busy(_) if matches!(request, ResourceRequest::Listen { .. }) => {
            ErrorCode::AddressInUse
        }
        Denial::Busy(_) | Denial::Io(_) => ErrorCode::Unknown,
        Denial::Network { error, .. } => match error {
            NetError::NameUnresolvable => ErrorCode::NameUnresolvable,
            NetError::ResolverFailure => ErrorCode::TemporaryResolverFailure,
            NetError::ConnectionRefused => ErrorCode::ConnectionRefused,
            NetError::Timeout => ErrorCode::Timeout,
            NetError::Unreachable => ErrorCode::RemoteUnreachable,
            NetError::AddressInUse => ErrorCode::AddressInUse,
            NetError::AddressNotBindable => ErrorCode::AddressNotBindable,
        },
    };
    with_reason(code, format!("{}: {denial}", request.describe()))
}

/// A socket grant: its one descriptor, its own address and (for a connected socket) its peer.
pub(super) struct GrantedSocket {
    pub(super) fd: OwnedFd,
    pub(super) local: SocketAddr,
    pub(super) remote: Option<SocketAddr>,
}

/// The socket a grant for `request` carries, if it is the kind asked for: a `transport`
/// socket, connected exactly when `connected`, with one descriptor. Anything else is the
/// broker's fault: `unknown`, naming what came.
pub(super) fn socket(
    request: &ResourceRequest,
    (grant, fds): (Grant, Vec<OwnedFd>),
    transport: Transport,
    connected: bool,
) -> Result<GrantedSocket, SocketError> {
    let wrong = |what: String| {
        with_reason(
            ErrorCode::Unknown,
            format!("{}: the broker granted {what}", request.describe()),
        )
    };
    let Access::Socket {
        transport: granted,
        local,
        remote,
    } = grant.access
    else {
        return Err(wrong(format!("{:?}, not a socket", grant.access)));
    };
    if granted != transport || remote.is_some() != connected {
        return Err(wrong(format!(
            "a {granted} socket {}",
            if remote.is_some() {
                "connected"
            } else {
                "not connected"
            }
        )));
    }
    let count = fds.len();
    let Ok([fd]) = <[OwnedFd; 1]>::try_from(fds) else {
        return Err(wrong(format!("{count} descriptors for one socket")));
    };
    Ok(GrantedSocket { fd, local, remote })
}

/// An `invalid-state`, `concurrency-conflict` or `not-in-progress` for the call `what`.
pub(super) fn state(code: ErrorCode, what: &str) -> SocketError {
    with_reason(code, format!("{what}: not in this socket's state"))
}

/// Every socket option, read or set: the supervisor made the socket, and this host has no call
/// to read or change its options (`getsockopt`/`setsockopt` are not in the worker's
/// allow-list).
pub(super) fn options<T>() -> Result<T, SocketError> {
    Err(with_reason(
        ErrorCode::NotSupported,
        "socket options are set by the supervisor, which made the socket",
    ))
}

/// An OS error on a granted socket, as its `wasi:sockets` code (wasmtime-wasi's mapping).
pub(super) fn from_io(error: &std::io::Error) -> SocketError {
    with_reason(ErrorCode::from(error), error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(denial: Denial, request: &ResourceRequest) -> ErrorCode {
        from_denial(denial, request)
            .downcast()
            .unwrap_or(ErrorCode::Unknown)
    }

    #[test]
    fn denials_map_to_socket_error_codes() {
        let lookup = ResourceRequest::Lookup {
            host: "example.com".into(),
        };
        let listen = ResourceRequest::Listen {
            transport: Transport::Tcp,
            address: SocketAddr::from(([0, 0, 0, 0], 80)),
            backlog: 8,
        };
        assert_eq!(
            code(Denial::NotGranted("no".into()), &lookup),
            ErrorCode::AccessDenied
        );
        assert_eq!(
            code(Denial::UnknownName("no".into()), &lookup),
            ErrorCode::NameUnresolvable
        );
        assert_eq!(
            code(Denial::InvalidArgument("no".into()), &lookup),
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            code(Denial::Busy("no".into()), &listen),
            ErrorCode::AddressInUse
        );
        assert_eq!(code(Denial::Busy("no".into()), &lookup), ErrorCode::Unknown);
        assert_eq!(code(Denial::Io("no".into()), &lookup), ErrorCode::Unknown);
        for (error, expected) in [
            (NetError::NameUnresolvable, ErrorCode::NameUnresolvable),
            (
                NetError::ResolverFailure,
                ErrorCode::TemporaryResolverFailure,
            ),
            (NetError::ConnectionRefused, ErrorCode::ConnectionRefused),
            (NetError::Timeout, ErrorCode::Timeout),
            (NetError::Unreachable, ErrorCode::RemoteUnreachable),
            (NetError::AddressInUse, ErrorCode::AddressInUse),
            (NetError::AddressNotBindable, ErrorCode::AddressNotBindable),
        ] {
            let denial = Denial::Network {
                error,
                detail: "the network said no".into(),
            };
            assert_eq!(code(denial, &lookup), expected, "{error:?}");
        }
    }

    #[test]
    fn the_broker_message_rides_along() {
        let error = from_denial(
            Denial::NotGranted("`example.com` is not in AllowedConnections".into()),
            &ResourceRequest::Lookup {
                host: "example.com".into(),
            },
        );
        assert_eq!(
            error.to_string(),
            "lookup of `example.com`: `example.com` is not in AllowedConnections"
        );
        assert_eq!(error.downcast().ok(), Some(ErrorCode::AccessDenied));
    }
}
