//! Everything `warden` prints. The workspace denies `print_stdout` so that library code never
//! writes to stdout by accident; this module is the one place the command line does, on purpose.
#![allow(clippy::print_stdout)]

use std::io::Write as _;

/// Prints one line of human-readable output.
pub(crate) fn line(text: impl std::fmt::Display) {
    println!("{text}");
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn json(value: &serde_json::Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    println!("{text}");
}

/// Reports a failed command on stderr, with its chain of causes.
pub(crate) fn error(err: &anyhow::Error) {
    let _ = std::io::stdout().flush();
    eprintln!("error: {}", error_text(err));
}

/// An error and its causes on one line. The policy crate's errors already quote their source in
/// their own message, so a cause whose text is already there is not repeated.
pub(crate) fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}
