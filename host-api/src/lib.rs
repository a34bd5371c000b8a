//! The host side of the `warden:device` world (`wit/device.wit`), as the worker runs it.
//!
//! An app opens a peripheral by its hardware-definition name; the host asks the capability
//! broker (the supervisor) through an [`Opener`], and uses only the descriptors the broker
//! hands back. It knows the resource it was given, not the policy that granted it.
#![forbid(unsafe_code)]
