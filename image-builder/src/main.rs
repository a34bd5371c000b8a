//! `warden`: keys, trust stores, unlock tokens and signed packages. All logic is in the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    warden_cli::run()
}
