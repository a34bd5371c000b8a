//! Warden's policy: everything the device decides from data, with no I/O of its own.
//!
//! - [`manifest`]: Azure Sphere `app_manifest.json`, validated into typed capabilities.
//! - [`hwdef`], [`board`], [`install`]: hardware definitions, the board file, and resolving a
//!   manifest's peripherals on a device with the install-time checks.
//! - [`keys`], [`envelope`], [`trust`], [`package`], [`rollback`]: signing keys, signed
//!   documents, the trust store, the signed package format and the version rule.
//! - [`json`], [`diag`], [`ids`]: the strict, position-keeping JSON reader, the problem reports
//!   every schema reader shares, and shared identifiers.
#![forbid(unsafe_code)]

pub mod board;
pub mod diag;
pub mod envelope;
pub mod firmware;
pub mod hwdef;
pub mod ids;
pub mod install;
pub mod json;
pub mod keys;
pub mod manifest;
pub mod package;
pub mod rollback;
pub mod trust;
