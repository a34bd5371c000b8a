//! The device's own TLS roots (`wardend --tls-roots FILE`): certificates that apps' `https`
//! requests (`wasi:http`, TLS in the worker) trust besides the Mozilla roots the worker
//! carries — a private CA of the device maker's own services, a test CA.
//!
//! Read once at start, and every certificate checked here the way the worker's rustls will
//! take it (as a trust anchor: an X.509 certificate whose subject, key and name constraints
//! can be read), so that a bad file stops the start instead of failing apps one by one. The
//! certificates (DER) go to every worker whose app may use the network, in its `RunRequest`,
//! which has to fit one message: hence the bounds ([`MAX_TLS_ROOTS`],
//! [`MAX_TLS_ROOTS_BYTES`]).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;

use crate::file::{ReadBounded, read_bounded};
pub use warden_ipc::{MAX_TLS_ROOTS, MAX_TLS_ROOTS_BYTES};

/// Largest roots file read: 32 certificates of 1 KiB take about 45 KiB as PEM; the rest is room
/// for the explanatory text PEM allows between sections.
pub const MAX_TLS_ROOTS_FILE_BYTES: u64 = 256 * 1024;

/// Why a roots file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsRootsError {
    #[error("cannot read the TLS roots file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the TLS roots file {path} is larger than {MAX_TLS_ROOTS_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    /// Every problem found, each as `path:line: problem` or `path: problem`.
    #[error("invalid TLS roots file:\n{}", .problems.join("\n"))]
    Invalid { problems: Vec<String> },
}

/// The extra roots: DER certificates, in file order. Empty when the device adds none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsRoots {
    certificates: Vec<Vec<u8>>,
}

impl TlsRoots {
    /// Reads and checks the PEM file at `path`.
    pub fn load(path: &Path) -> Result<TlsRoots, TlsRootsError> {
        let bytes = read_bounded(path, MAX_TLS_ROOTS_FILE_BYTES).map_err(|e| match e {
            ReadBounded::Io(source) => TlsRootsError::Io {
                path: path.to_path_buf(),
                source,
            },
            ReadBounded::TooLarge => TlsRootsError::TooLarge {
                path: path.to_path_buf(),
            },
        })?;
        TlsRoots::parse(path, &bytes)
    }

    /// Parses PEM `bytes`, read from `origin`: `CERTIFICATE` sections only (text between
    /// sections is ignored, as PEM allows), each one a certificate that can be a trust anchor,
    /// at least one, at most [`MAX_TLS_ROOTS`] of at most [`MAX_TLS_ROOTS_BYTES`] together.
    /// Reports every problem, with its line.
    pub fn parse(origin: &Path, bytes: &[u8]) -> Result<TlsRoots, TlsRootsError> {
        let file = origin.display();
        let text = std::str::from_utf8(bytes).map_err(|e| TlsRootsError::Invalid {
            problems: vec![format!(
                "{file}: not PEM text: not UTF-8 (byte {})",
                e.valid_up_to()
            )],
        })?;
        // (line, problem); problems of the whole file after every line's.
        let mut problems: Vec<(usize, String)> = Vec::new();
        let mut certificates = Vec::new();
        for section in sections(text, &mut |line, problem| problems.push((line, problem))) {
            let line = section.line;
            if section.label != "CERTIFICATE" {
                problems.push((
                    line,
                    format!(
                        "a `{}` section: only CERTIFICATE sections belong in a roots file",
                        section.label
                    ),
                ));
                continue;
            }
            let der = match STANDARD.decode(&section.base64) {
                Ok(der) => der,
                Err(e) => {
                    problems.push((line, format!("the certificate is not valid base64: {e}")));
                    continue;
                }
            };
            if let Err(e) = webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice()))
            {
                problems.push((
                    line,
                    format!("not an X.509 certificate that can be a trust anchor: {e}"),
                ));
                continue;
            }
            certificates.push(der);
        }
        let whole = usize::MAX;
        if certificates.is_empty() && problems.is_empty() {
            problems.push((whole, "no CERTIFICATE section".to_owned()));
        }
        if certificates.len() > MAX_TLS_ROOTS {
            problems.push((
                whole,
                format!(
                    "{} certificates; at most {MAX_TLS_ROOTS} are passed to an app",
                    certificates.len()
                ),
            ));
        }
        let total: usize = certificates.iter().map(Vec::len).sum();
        if total > MAX_TLS_ROOTS_BYTES {
            problems.push((
                whole,
                format!(
                    "the certificates take {total} bytes (DER); at most {MAX_TLS_ROOTS_BYTES} \
                     are passed to an app"
                ),
            ));
        }
        if problems.is_empty() {
            return Ok(TlsRoots { certificates });
        }
        problems.sort_by_key(|(line, _)| *line);
        Err(TlsRootsError::Invalid {
            problems: problems
                .into_iter()
                .map(|(line, problem)| match line {
                    usize::MAX => format!("{file}: {problem}"),
                    line => format!("{file}:{line}: {problem}"),
                })
                .collect(),
        })
    }

    /// The certificates, DER, in file order.
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.certificates
    }

    /// How many certificates.
    pub fn len(&self) -> usize {
        self.certificates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty()
    }
}

/// One `-----BEGIN LABEL-----` … `-----END LABEL-----` section.
struct Section<'a> {
    label: &'a str,
    /// The line of its BEGIN marker, from 1.
    line: usize,
    /// Its body, whitespace removed.
    base64: String,
}

/// The PEM sections of `text` (RFC 7468's strict form, lines ending in LF or CRLF); what is
/// malformed goes to `problem` with its line, and that section is left out.
fn sections<'a>(text: &'a str, problem: &mut dyn FnMut(usize, String)) -> Vec<Section<'a>> {
    let mut found = Vec::new();
    let mut open: Option<Section<'a>> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim_end();
        let begin = marker(line, "BEGIN");
        let end = marker(line, "END");
        match (&mut open, begin, end) {
            (None, Some(label), _) => {
                open = Some(Section {
                    label,
                    line: number,
                    base64: String::new(),
                });
            }
            (None, None, Some(label)) => {
                problem(
                    number,
                    format!("`-----END {label}-----` without its BEGIN line"),
                );
            }
            // Text outside sections: explanations, as PEM files often have.
            (None, None, None) => {}
            (Some(section), None, Some(label)) => {
                if label == section.label {
                    found.extend(open.take());
                } else {
                    problem(
                        number,
                        format!(
                            "`-----END {label}-----` ends the `{}` section begun on line {}",
                            section.label, section.line
                        ),
                    );
                    open = None;
                }
            }
            (Some(section), Some(_), _) => {
                problem(
                    number,
                    format!(
                        "a new section begins inside the `{}` section begun on line {}",
                        section.label, section.line
                    ),
                );
                open = None;
            }
            (Some(section), None, None) => {
                section
                    .base64
                    .extend(line.chars().filter(|c| !c.is_ascii_whitespace()));
            }
        }
    }
    if let Some(section) = open {
        problem(
            section.line,
            format!("the `{}` section has no END line", section.label),
        );
    }
    found
}

/// `LABEL` if `line` is `-----{kind} LABEL-----`.
fn marker<'a>(line: &'a str, kind: &str) -> Option<&'a str> {
    line.strip_prefix("-----")?
        .strip_prefix(kind)?
        .strip_prefix(' ')?
        .strip_suffix("-----")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed CA certificate (P-256), made for these tests; its key is thrown away.
    fn ca() -> String {
        ca_padded(0)
    }

    /// [`ca`] with a non-critical extension of `padding` bytes.
    fn ca_padded(padding: usize) -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        if padding > 0 {
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 4, 1, 55555, 1],
                    vec![0x04; padding],
                ));
        }
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Warden roots test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    fn parse(text: &str) -> Result<TlsRoots, Vec<String>> {
        TlsRoots::parse(Path::new("roots.pem"), text.as_bytes()).map_err(|e| match e {
            TlsRootsError::Invalid { problems } => problems,
            other => vec![other.to_string()],
        })
    }

    #[test]
    fn certificates_are_read_in_order_with_text_between_them() {
        let ca = ca();
        let text = format!(
            "# the device's CA\n{ca}\nand again, with CRLF:\n{}",
            ca.replace('\n', "\r\n")
        );
        let roots = parse(&text).unwrap();
        assert_eq!(roots.len(), 2);
        assert_eq!(roots.certificates()[0], roots.certificates()[1]);
        // DER: a SEQUENCE.
        assert_eq!(roots.certificates()[0][0], 0x30);
    }

    #[test]
    fn an_empty_file_or_one_without_a_certificate_is_refused() {
        assert_eq!(
            parse("").unwrap_err(),
            ["roots.pem: no CERTIFICATE section"]
        );
        assert_eq!(
            parse("just text\n").unwrap_err(),
            ["roots.pem: no CERTIFICATE section"]
        );
    }

    #[test]
    fn every_problem_is_named_with_its_line() {
        let ca = ca();
        let text = format!(
            "{ca}\
             -----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n\
             -----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n\
             -----END CERTIFICATE-----\n\
             -----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END X509 CRL-----\n\
             -----BEGIN CERTIFICATE-----\nMAMCAQE=\n"
        );
        let first = ca.lines().count() + 1;
        let problems = parse(&text).unwrap_err();
        let expected = [
            format!(
                "roots.pem:{first}: a `PRIVATE KEY` section: only CERTIFICATE sections belong in \
                 a roots file"
            ),
            format!(
                "roots.pem:{}: the certificate is not valid base64",
                first + 3
            ),
            format!(
                "roots.pem:{}: not an X.509 certificate that can be a trust anchor",
                first + 6
            ),
            format!(
                "roots.pem:{}: `-----END CERTIFICATE-----` without its BEGIN line",
                first + 9
            ),
            format!(
                "roots.pem:{}: `-----END X509 CRL-----` ends the `CERTIFICATE` section begun on \
                 line {}",
                first + 12,
                first + 10
            ),
            format!(
                "roots.pem:{}: the `CERTIFICATE` section has no END line",
                first + 13
            ),
        ];
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        for (problem, expected) in problems.iter().zip(&expected) {
            assert!(
                problem.starts_with(expected),
                "{problem}\nexpected {expected}"
            );
        }
    }

    #[test]
    fn more_certificates_than_a_run_request_carries_are_refused() {
        let ca = ca();
        let many = ca.repeat(MAX_TLS_ROOTS + 1);
        let problems = parse(&many).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p == "roots.pem: 33 certificates; at most 32 are passed to an app"),
            "{problems:?}"
        );
        assert_eq!(
            parse(&ca.repeat(MAX_TLS_ROOTS)).unwrap().len(),
            MAX_TLS_ROOTS
        );
    }

    #[test]
    fn more_bytes_of_certificates_than_a_run_request_carries_are_refused() {
        let big = ca_padded(2048);
        let problems = parse(&big.repeat(14)).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("roots.pem: the certificates take ")
                && problems[0].ends_with("bytes (DER); at most 32768 are passed to an app"),
            "{problems:?}"
        );
        assert_eq!(parse(&big.repeat(13)).unwrap().len(), 13);
    }

    #[test]
    fn a_file_too_large_or_not_text_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        std::fs::write(&big, vec![b'#'; MAX_TLS_ROOTS_FILE_BYTES as usize + 1]).unwrap();
        let error = TlsRoots::load(&big).unwrap_err().to_string();
        assert!(
            error.contains("big.pem") && error.contains("larger than"),
            "{error}"
        );

        let binary = dir.path().join("roots.der");
        std::fs::write(&binary, [0x30, 0x82, 0xff, 0xfe]).unwrap();
        let error = TlsRoots::load(&binary).unwrap_err().to_string();
        assert!(error.contains("roots.der: not PEM text"), "{error}");

        let missing = dir.path().join("missing.pem");
        let error = TlsRoots::load(&missing).unwrap_err().to_string();
        assert!(error.contains("cannot read the TLS roots file") && error.contains("missing.pem"));

        let good = dir.path().join("ca.pem");
        std::fs::write(&good, ca()).unwrap();
        assert_eq!(TlsRoots::load(&good).unwrap().len(), 1);
    }
}
