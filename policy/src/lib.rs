//! Warden's policy: everything the device decides from data, with no I/O of its own.
//!
//! - [`manifest`]: Azure Sphere `app_manifest.json`, validated into typed capabilities.
//! - [`json`] and [`diag`]: the strict, position-keeping JSON reader and the problem reports
//!   every schema reader shares.
#![forbid(unsafe_code)]

pub mod board;
pub mod diag;
pub mod hwdef;
pub mod envelope;
pub mod ids;
pub mod install;
pub mod json;
pub mod keys;
pub mod manifest;
pub mod package;
pub mod rollback;
pub mod trust;
