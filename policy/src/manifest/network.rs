//! `AllowedConnections` entries: host names (optionally `*.`-wildcarded) and IP literals.

use std::fmt;
use std::net::IpAddr;

/// One host an app may connect to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowedHost {
    /// A DNS name, lower-cased. With `wildcard`, any name *below* it matches (`*.example.com`
    /// matches `a.example.com`, not `example.com`).
    Name { name: String, wildcard: bool },
    /// A literal address.
    Address(IpAddr),
}

impl AllowedHost {
    /// Reads one entry, or says why it is not a host.
    pub fn parse(text: &str) -> Result<AllowedHost, String> {
        if let Ok(address) = text.parse::<IpAddr>() {
            return Ok(AllowedHost::Address(address));
        }
        let (wildcard, name) = match text.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        if name.is_empty() || name.len() > 253 {
            return Err(format!(
                "`{text}` is not a host name: expected 1 to 253 characters"
            ));
        }
        let labels: Vec<&str> = name.split('.').collect();
        for label in &labels {
            let valid = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                let hint = if label.contains('*') {
                    " (a wildcard is allowed only as a leading `*.`)"
                } else if label.contains(':') || label.contains('/') {
                    " (write a bare host: no scheme, port or path)"
                } else {
                    ""
                };
                return Err(format!(
                    "`{text}` is not a host name: label `{label}` must be 1 to 63 letters, \
                     digits or inner `-`{hint}"
                ));
            }
        }
        if labels
            .last()
            .is_some_and(|top| top.chars().all(|c| c.is_ascii_digit()))
        {
            return Err(format!(
                "`{text}` is neither an IP address nor a host name (a name's last label is not all digits)"
            ));
        }
        if wildcard && labels.len() < 2 {
            return Err(format!(
                "`{text}`: a wildcard must stand below a domain of two labels or more, e.g. `*.example.com`"
            ));
        }
        Ok(AllowedHost::Name {
            name: name.to_ascii_lowercase(),
            wildcard,
        })
    }

    /// Whether a looked-up name is covered by this entry.
    pub fn matches_name(&self, candidate: &str) -> bool {
        let candidate = candidate
            .strip_suffix('.')
            .unwrap_or(candidate)
            .to_ascii_lowercase();
        match self {
            AllowedHost::Name {
                name,
                wildcard: false,
            } => candidate == *name,
            AllowedHost::Name {
                name,
                wildcard: true,
            } => candidate
                .strip_suffix(name.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
            AllowedHost::Address(_) => false,
        }
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllowedHost::Name { name, wildcard } => {
                if *wildcard {
                    f.write_str("*.")?;
                }
                f.write_str(name)
            }
            AllowedHost::Address(a) => write!(f, "{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_addresses_and_wildcards() {
        assert_eq!(
            AllowedHost::parse("Global.Azure-Devices-Provisioning.net").unwrap(),
            AllowedHost::Name {
                name: "global.azure-devices-provisioning.net".into(),
                wildcard: false
            }
        );
        assert!(matches!(
            AllowedHost::parse("192.168.1.20").unwrap(),
            AllowedHost::Address(_)
        ));
        assert!(matches!(
            AllowedHost::parse("fe80::1").unwrap(),
            AllowedHost::Address(_)
        ));
        let w = AllowedHost::parse("*.example.com").unwrap();
        assert!(w.matches_name("a.example.com"));
        assert!(w.matches_name("A.B.EXAMPLE.COM."));
        assert!(!w.matches_name("example.com"));
        assert!(!w.matches_name("badexample.com"));
        let n = AllowedHost::parse("example.com").unwrap();
        assert!(n.matches_name("EXAMPLE.com"));
        assert!(!n.matches_name("a.example.com"));
    }

    #[test]
    fn malformed_hosts_are_refused() {
        for bad in [
            "",
            "https://example.com",
            "example.com:443",
            "exa mple.com",
            "-example.com",
            "a..b",
            "*.com",
            "a.*.com",
            "1.2.3.256",
            "*",
            &"a".repeat(64),
        ] {
            assert!(AllowedHost::parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
