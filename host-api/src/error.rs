//! Building the WIT `error` value from what went wrong: a broker's denial, the simulated
//! board's refusal, an OS error.

use warden_ipc::broker::Denial;
use warden_ipc::sim::SimError;

use crate::bindings::warden::device::types::Error;

pub(crate) fn io(message: impl Into<String>) -> Error {
    Error::Io(message.into())
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidArgument(message.into())
}

/// A broker's refusal, case for case.
pub(crate) fn from_denial(denial: Denial) -> Error {
    match denial {
        Denial::NotGranted(m) => Error::NotGranted(m),
        Denial::UnknownName(m) => Error::UnknownName(m),
        Denial::Busy(m) => Error::Busy(m),
        Denial::InvalidArgument(m) => Error::InvalidArgument(m),
        // Never sent for a peripheral; kept as an `io` error should one come.
        Denial::Io(m) | Denial::Network { detail: m, .. } => Error::Io(m),
    }
}

/// The simulated board's refusal, case for case.
pub(crate) fn from_sim(error: SimError) -> Error {
    match error {
        SimError::InvalidArgument(m) => Error::InvalidArgument(m),
        SimError::Io(m) => Error::Io(m),
    }
}

/// An OS error of `what` on `label`: `ETIMEDOUT` is the WIT `timeout`, `EINVAL` an
/// `invalid-argument` (the driver refused a value), anything else `io`.
pub(crate) fn from_os(label: &str, what: &str, error: &std::io::Error) -> Error {
    match error.raw_os_error() {
        Some(libc::ETIMEDOUT) => Error::Timeout,
        Some(libc::EINVAL) => invalid(format!("{label}: {what}: {error}")),
        _ => io(format!("{label}: {what}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_map_to_the_wit_cases() {
        let os = |errno| {
            from_os(
                "`BUS`",
                "a transfer",
                &std::io::Error::from_raw_os_error(errno),
            )
        };
        assert!(matches!(os(libc::ETIMEDOUT), Error::Timeout));
        assert!(
            matches!(os(libc::EINVAL), Error::InvalidArgument(m) if m.starts_with("`BUS`: a transfer: "))
        );
        assert!(matches!(os(libc::EREMOTEIO), Error::Io(m) if m.contains("`BUS`")));
    }
}
