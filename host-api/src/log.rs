//! `warden:device/log`: one line per call, `[level] context: message`, to the app's stderr —
//! the same file WASI's stderr writes to, so the two interleave in the order they happened.

use crate::bindings::warden::device::log::{Host, Level};
use crate::devices::Devices;

impl Host for Devices {
    fn log(&mut self, level: Level, context: String, message: String) {
        let level = match level {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        };
        let line = format!("[{level}] {}: {}\n", escape(&context), escape(&message));
        // Like a write to a closed stderr, a failed log write is not the app's error: the
        // function has no error to return, and the line is lost.
        let _ = self.log.write_all(line.as_bytes());
    }
}

/// `text` with control characters escaped (`\n`, `\u{1b}`, …): one call is one line, and
/// an app cannot forge the start of another line or send terminal escapes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\nb\tc\u{1b}[2J é"), "a\\nb\\tc\\u{1b}[2J é");
    }
}
