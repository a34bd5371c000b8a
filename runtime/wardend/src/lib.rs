//! The Warden supervisor.
#![forbid(unsafe_code)]
