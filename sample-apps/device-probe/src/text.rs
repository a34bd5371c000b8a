//! The probe's text forms of numbers and bytes, read from steps and written to output lines.

use std::fmt::Write;

/// A decimal or `0x` hexadecimal number.
pub(crate) fn number(word: &str) -> Result<u32, String> {
    let parsed = match word.strip_prefix("0x") {
        Some(digits) => u32::from_str_radix(digits, 16),
        None => word.parse(),
    };
    parsed.map_err(|_| format!("expected a number, not {word:?}"))
}

/// Bytes as pairs of hex digits, or `-` for none.
pub(crate) fn hex(word: &str) -> Result<Vec<u8>, String> {
    if word == "-" {
        return Ok(Vec::new());
    }
    let digits = word.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("{word:?} is not pairs of hex digits"));
    }
    digits
        .chunks_exact(2)
        .map(|pair| hex_byte(pair[0], pair[1]))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("{word:?} is not pairs of hex digits"))
}

/// Two ASCII hex digits as one byte (no sign, unlike `u8::from_str_radix`).
fn hex_byte(high: u8, low: u8) -> Option<u8> {
    let digit = |d: u8| {
        char::from(d)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    Some(digit(high)? << 4 | digit(low)?)
}

/// A step's TEXT with its escapes (`\n`, `\r`, `\t`, `\\`, `\"`, `\xNN`) replaced.
pub(crate) fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        if byte != b'\\' {
            out.push(byte);
            continue;
        }
        out.push(match bytes.next() {
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'\\') => b'\\',
            Some(b'"') => b'"',
            Some(b'x') => match (bytes.next(), bytes.next()) {
                (Some(high), Some(low)) => hex_byte(high, low),
                _ => None,
            }
            .ok_or("\\x needs two hex digits")?,
            _ => return Err(format!("unknown escape in {text:?}")),
        });
    }
    Ok(out)
}

/// Bytes from a bus: lowercase hex, `-` for none (so the output line keeps its word count).
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".to_owned();
    }
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

/// Bytes from a UART or a channel: a double-quoted string that `unescape` reads back.
pub(crate) fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", escaped(bytes, true))
}

/// Text with every byte that could break a line or be misread shown as an escape.
pub(crate) fn escaped(bytes: &[u8], quote: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        match byte {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'"' if quote => out.push_str("\\\""),
            b' '..=b'~' => out.push(char::from(byte)),
            _ => {
                let _ = write!(out, "\\x{byte:02x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_decimal_or_0x_hex() {
        assert_eq!(number("106"), Ok(106));
        assert_eq!(number("0x6a"), Ok(106));
        assert!(number("6a").is_err());
        assert!(number("-1").is_err());
    }

    #[test]
    fn hex_is_byte_pairs_or_a_dash() {
        assert_eq!(hex("0f8A"), Ok(vec![0x0f, 0x8a]));
        assert_eq!(hex("-"), Ok(vec![]));
        assert!(hex("0f8").is_err());
        assert!(hex("zz").is_err());
        assert!(hex("+f").is_err());
        assert_eq!(to_hex(&[0x0f, 0x8a]), "0f8a");
        assert_eq!(to_hex(&[]), "-");
    }

    #[test]
    fn quoted_text_reads_back_through_unescape() {
        let bytes = b"say \"hi\"\\\r\n\t\x00\xff".to_vec();
        let shown = quoted(&bytes);
        assert_eq!(shown, r#""say \"hi\"\\\r\n\t\x00\xff""#);
        assert_eq!(unescape(&shown[1..shown.len() - 1]), Ok(bytes));
    }

    #[test]
    fn bad_escapes_are_refused() {
        assert!(unescape("\\q").is_err());
        assert!(unescape("\\x4").is_err());
        assert!(unescape("\\x+f").is_err());
        assert!(unescape("\\").is_err());
    }
}
