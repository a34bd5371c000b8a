//! The `warden` command line: OEM and developer tooling for keys, trust stores, development
//! unlock tokens, signed app and real-time core packages, and hardware-definition checks.
//!
//! `main.rs` only calls [`run`]. Each command group lives in its own module; every file the
//! tool writes goes through [`files`] (atomic, no-clobber unless `--force`, private keys 0600),
//! and everything it prints goes through [`output`].
#![forbid(unsafe_code)]

mod build;
mod cli;
pub mod client;
mod device_cmd;
mod files;
mod hwdef_cmd;
mod keys_cmd;
mod new_cmd;
mod output;
mod package_cmd;
mod run_cmd;
mod trust_cmd;

use std::process::ExitCode;

use clap::Parser as _;

/// Parses the command line, runs the command, and reports an error on stderr.
pub fn run() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            output::error(&err);
            ExitCode::FAILURE
        }
    }
}
