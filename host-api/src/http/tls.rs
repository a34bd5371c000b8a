//! TLS for `https` requests: rustls with the ring provider (the same code on x86_64, aarch64 and
//! armv7, linked statically into the run-only worker), over the TCP socket the broker made.
//!
//! Trusted: the Mozilla roots (webpki-roots, compiled in) and the device's own roots (`wardend
//! --tls-roots`, passed with the run). The server is checked against the request's host — a
//! name, or an IP literal — as any HTTPS client does; a failure is the app's `wasi:http` error
//! code, never a trap. The handshake needs random bytes: ring asks the kernel (`getrandom`, in
//! the network profiles), nothing else beyond what the sockets already use.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use wasmtime_wasi_http::Error;

/// Why the TLS client of a run could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsSetupError {
    /// One of the device's roots is not a certificate rustls can take as a trust anchor
    /// (`wardend` checks them at start, so this is a supervisor of another build).
    #[error("the device's TLS root {number} cannot be a trust anchor: {source}")]
    Root {
        number: usize,
        source: rustls::Error,
    },
    #[error("cannot configure TLS: {0}")]
    Config(rustls::Error),
}

/// The TLS client of one run: what it trusts and how it connects. Cheap to clone.
#[derive(Clone)]
pub struct TlsClient {
    connector: TlsConnector,
    /// How many roots it trusts, for `Debug`.
    roots: usize,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsClient")
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// Trusts the Mozilla roots and `device_roots` (DER certificates). Parsing only, no system
    /// call: it may be built before or after seccomp.
    pub fn new(device_roots: &[Vec<u8>]) -> Result<TlsClient, TlsSetupError> {
        let mut roots: RootCertStore = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
        for (index, der) in device_roots.iter().enumerate() {
            roots
                .add(CertificateDer::from(der.as_slice()))
                .map_err(|source| TlsSetupError::Root {
                    number: index + 1,
                    source,
                })?;
        }
        let count = roots.len();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsSetupError::Config)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // hyper speaks HTTP/1.1 only; a server that negotiates ALPN must not pick h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            roots: count,
        })
    }

    /// How many roots it trusts (the Mozilla roots and the device's).
    pub fn roots(&self) -> usize {
        self.roots
    }

    /// The TLS handshake with `server` on `stream`, within `timeout`.
    pub(super) async fn connect(
        &self,
        server: ServerName<'static>,
        stream: TcpStream,
        timeout: Duration,
    ) -> Result<TlsStream<TcpStream>, Error> {
        tokio::time::timeout(timeout, self.connector.connect(server, stream))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(|e| from_handshake(&e))
    }
}

/// The name the server's certificate must carry: the request's host, a DNS name or an IP
/// literal (brackets already removed). Anything else is an invalid URI.
pub(super) fn server_name(host: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(host.to_owned()).map_err(|_| Error::HttpRequestUriInvalid)
}

/// A failed handshake as the app's error code: rustls's own errors by what they mean, a
/// connection the server dropped as terminated.
fn from_handshake(error: &std::io::Error) -> Error {
    use std::io::ErrorKind;
    if let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return from_rustls(tls);
    }
    match error.kind() {
        ErrorKind::UnexpectedEof
        | ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe => Error::ConnectionTerminated,
        _ => Error::InternalError(Some(format!("TLS handshake: {error}"))),
    }
}

/// `tls-certificate-error` for a certificate that is untrusted, invalid, expired or for
/// another name (or none at all); `tls-alert-received` with the alert when the server refused;
/// `tls-protocol-error` for everything else that went wrong in TLS.
fn from_rustls(error: &rustls::Error) -> Error {
    match error {
        rustls::Error::InvalidCertificate(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::InvalidCertRevocationList(_) => Error::TlsCertificateError,
        rustls::Error::AlertReceived(alert) => Error::TlsAlertReceived {
            alert_id: Some(u8::from(*alert)),
            alert_message: Some(format!("{alert:?}")),
        },
        _ => Error::TlsProtocolError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{AlertDescription, CertificateError};

    #[test]
    fn the_mozilla_roots_are_trusted_and_a_bad_device_root_is_named() {
        let mozilla = TlsClient::new(&[]).unwrap().roots();
        assert!(mozilla > 100, "{mozilla}");
        let error = TlsClient::new(&[vec![0x30, 0x03, 0x02, 0x01, 0x01]]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("the device's TLS root 1 cannot be a trust anchor"),
            "{error}"
        );
    }

    #[test]
    fn server_names_are_names_or_ip_literals() {
        assert!(matches!(
            server_name("allowed.test"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(matches!(
            server_name("127.0.0.2"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(server_name("::1"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("not a name"),
            Err(Error::HttpRequestUriInvalid)
        ));
    }

    #[test]
    fn tls_failures_become_their_error_codes() {
        let certificate = [
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            rustls::Error::InvalidCertificate(CertificateError::Expired),
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
            rustls::Error::NoCertificatesPresented,
        ];
        for error in certificate {
            assert!(
                matches!(from_rustls(&error), Error::TlsCertificateError),
                "{error:?}"
            );
        }
        assert!(matches!(
            from_rustls(&rustls::Error::AlertReceived(
                AlertDescription::HandshakeFailure
            )),
            Error::TlsAlertReceived {
                alert_id: Some(40),
                alert_message: Some(ref m),
            } if m == "HandshakeFailure"
        ));
        assert!(matches!(
            from_rustls(&rustls::Error::DecryptError),
            Error::TlsProtocolError
        ));
        // As tokio-rustls reports them: an io::Error around the rustls error.
        let wrapped = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert!(matches!(
            from_handshake(&wrapped),
            Error::TlsCertificateError
        ));
        let dropped = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        assert!(matches!(
            from_handshake(&dropped),
            Error::ConnectionTerminated
        ));
    }
}
