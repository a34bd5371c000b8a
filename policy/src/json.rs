//! A strict JSON reader (RFC 8259) that remembers where every key and value starts.
//!
//! `serde_json` reports the position of the first syntax error only; manifests and hardware
//! definitions need the line and column of *every* semantic problem, reported in one pass. This
//! reader builds a small tree of [`Value`]s, each with its [`Pos`], and is deliberately stricter
//! than most JSON readers, because its input is untrusted:
//!
//! - duplicate keys in one object are an error (two readers must never disagree on a value);
//! - nesting depth and input size are bounded ([`Limits`]) before any deep recursion or growth;
//! - numbers keep their exact text, so integers are never rounded through `f64`;
//! - invalid UTF-8, lone surrogates, control characters in strings and trailing bytes are errors;
//! - a leading UTF-8 byte-order mark is skipped (Windows editors write one).

use std::fmt;

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A JSON value and the position where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub pos: Pos,
    pub kind: Kind,
}

/// What a [`Value`] is.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(Vec<Member>),
}

/// One `"key": value` pair of an object, in document order.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_pos: Pos,
    pub value: Value,
}

/// A number as written in the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Number(String);

impl Number {
    /// The exact text of the number.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number as an unsigned integer, if it is written as one (no fraction, no exponent,
    /// no sign) and fits.
    pub fn as_u64(&self) -> Option<u64> {
        if self.0.bytes().all(|b| b.is_ascii_digit()) {
            self.0.parse().ok()
        } else {
            None
        }
    }
}

impl Kind {
    /// A short name of the JSON type, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Number(_) => "a number",
            Kind::String(_) => "a string",
            Kind::Array(_) => "an array",
            Kind::Object(_) => "an object",
        }
    }
}

/// Bounds applied while reading.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest accepted input, in bytes.
    pub max_bytes: usize,
    /// Deepest accepted nesting of arrays and objects.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1024 * 1024,
            max_depth: 32,
        }
    }
}

/// Why a document is not acceptable JSON.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Reads one JSON document from `bytes`.
pub fn parse(bytes: &[u8], limits: Limits) -> Result<Value, SyntaxError> {
    if bytes.len() > limits.max_bytes {
        return Err(SyntaxError {
            pos: Pos { line: 1, column: 1 },
            message: format!(
                "document is {} bytes, larger than the limit of {} bytes",
                bytes.len(),
                limits.max_bytes
            ),
        });
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            // The prefix is valid UTF-8 by construction, so this never falls back.
            let prefix = std::str::from_utf8(valid).unwrap_or_default();
            return Err(SyntaxError {
                pos: position_after(prefix),
                message: "invalid UTF-8".into(),
            });
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader {
        text,
        offset: 0,
        line: 1,
        column: 1,
        limits,
    };
    reader.skip_whitespace();
    let value = reader.value(0)?;
    reader.skip_whitespace();
    if reader.offset != text.len() {
        return Err(reader.error("unexpected text after the end of the document"));
    }
    Ok(value)
}

fn position_after(prefix: &str) -> Pos {
    let mut pos = Pos { line: 1, column: 1 };
    for c in prefix.chars() {
        if c == '\n' {
            pos.line = pos.line.saturating_add(1);
            pos.column = 1;
        } else {
            pos.column = pos.column.saturating_add(1);
        }
    }
    pos
}

struct Reader<'a> {
    text: &'a str,
    offset: usize,
    line: u32,
    column: u32,
    limits: Limits,
}

impl Reader<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn error(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            pos: self.pos(),
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.text
            .get(self.offset..)
            .and_then(|rest| rest.chars().next())
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.offset += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.column = 1;
        } else {
            self.column = self.column.saturating_add(1);
        }
        Some(c)
    }

    fn skip_whitespace(&mut self) {
        while let Some(' ' | '\t' | '\n' | '\r') = self.peek() {
            self.bump();
        }
    }

    fn describe_next(&self) -> String {
        match self.peek() {
            None => "the end of the document".into(),
            Some(c) if c.is_control() => format!("control character U+{:04X}", c as u32),
            Some(c) => format!("`{c}`"),
        }
    }

    fn expect(&mut self, wanted: char, what: &str) -> Result<(), SyntaxError> {
        if self.peek() == Some(wanted) {
            self.bump();
            Ok(())
        } else {
            Err(self.error(format!("expected {what}, found {}", self.describe_next())))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, SyntaxError> {
        let pos = self.pos();
        let kind = match self.peek() {
            Some('{') => self.object(depth)?,
            Some('[') => self.array(depth)?,
            Some('"') => Kind::String(self.string()?),
            Some('t') => self.literal("true", Kind::Bool(true))?,
            Some('f') => self.literal("false", Kind::Bool(false))?,
            Some('n') => self.literal("null", Kind::Null)?,
            Some('-' | '0'..='9') => Kind::Number(self.number()?),
            _ => {
                return Err(self.error(format!("expected a value, found {}", self.describe_next())));
            }
        };
        Ok(Value { pos, kind })
    }

    fn enter(&self, depth: usize) -> Result<usize, SyntaxError> {
        let depth = depth + 1;
        if depth > self.limits.max_depth {
            Err(self.error(format!(
                "nesting deeper than the limit of {} levels",
                self.limits.max_depth
            )))
        } else {
            Ok(depth)
        }
    }

    fn object(&mut self, depth: usize) -> Result<Kind, SyntaxError> {
        let depth = self.enter(depth)?;
        self.bump(); // '{'
        let mut members: Vec<Member> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some('}') {
            self.bump();
            return Ok(Kind::Object(members));
        }
        loop {
            self.skip_whitespace();
            let key_pos = self.pos();
            if self.peek() != Some('"') {
                return Err(self.error(format!(
                    "expected a key in double quotes, found {}",
                    self.describe_next()
                )));
            }
            let key = self.string()?;
            if let Some(first) = members.iter().find(|m| m.key == key) {
                return Err(SyntaxError {
                    pos: key_pos,
                    message: format!("duplicate key `{key}` (first defined at {})", first.key_pos),
                });
            }
            self.skip_whitespace();
            self.expect(':', "`:` after the key")?;
            self.skip_whitespace();
            let value = self.value(depth)?;
            members.push(Member {
                key,
                key_pos,
                value,
            });
            self.skip_whitespace();
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some('}') => {
                    self.bump();
                    return Ok(Kind::Object(members));
                }
                _ => {
                    return Err(self.error(format!(
                        "expected `,` or `}}` in the object, found {}",
                        self.describe_next()
                    )));
                }
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Kind, SyntaxError> {
        let depth = self.enter(depth)?;
        self.bump(); // '['
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(']') {
            self.bump();
            return Ok(Kind::Array(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(depth)?);
            self.skip_whitespace();
            match self.peek() {
                Some(',') => {
                    self.bump();
                }
                Some(']') => {
                    self.bump();
                    return Ok(Kind::Array(items));
                }
                _ => {
                    return Err(self.error(format!(
                        "expected `,` or `]` in the array, found {}",
                        self.describe_next()
                    )));
                }
            }
        }
    }

    fn literal(&mut self, word: &str, kind: Kind) -> Result<Kind, SyntaxError> {
        let rest = self.text.get(self.offset..).unwrap_or_default();
        let end_ok = rest
            .get(word.len()..)
            .and_then(|after| after.chars().next())
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if rest.starts_with(word) && end_ok {
            for _ in 0..word.len() {
                self.bump();
            }
            Ok(kind)
        } else {
            Err(self.error(format!(
                "expected a value, found {} (literals are `true`, `false` and `null`)",
                self.describe_next()
            )))
        }
    }

    fn digits(&mut self) -> usize {
        let mut count = 0;
        while let Some('0'..='9') = self.peek() {
            self.bump();
            count += 1;
        }
        count
    }

    fn number(&mut self) -> Result<Number, SyntaxError> {
        let start = self.offset;
        if self.peek() == Some('-') {
            self.bump();
        }
        match self.peek() {
            Some('0') => {
                self.bump();
                if let Some('0'..='9') = self.peek() {
                    return Err(self.error("numbers must not have leading zeros"));
                }
            }
            Some('1'..='9') => {
                self.digits();
            }
            _ => return Err(self.error("expected a digit")),
        }
        if self.peek() == Some('.') {
            self.bump();
            if self.digits() == 0 {
                return Err(self.error("expected a digit after the decimal point"));
            }
        }
        if let Some('e' | 'E') = self.peek() {
            self.bump();
            if let Some('+' | '-') = self.peek() {
                self.bump();
            }
            if self.digits() == 0 {
                return Err(self.error("expected a digit in the exponent"));
            }
        }
        let text = self.text.get(start..self.offset).unwrap_or_default();
        Ok(Number(text.to_owned()))
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.bump(); // opening quote
        let mut out = String::new();
        loop {
            let pos = self.pos();
            match self.bump() {
                None => return Err(self.error("unterminated string")),
                Some('"') => return Ok(out),
                Some('\\') => {
                    let c = self.escape()?;
                    out.push(c);
                }
                Some(c) if (c as u32) < 0x20 => {
                    return Err(SyntaxError {
                        pos,
                        message: format!(
                            "control character U+{:04X} in a string must be escaped",
                            c as u32
                        ),
                    });
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn escape(&mut self) -> Result<char, SyntaxError> {
        let pos = self.pos();
        let c = match self.bump() {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('/') => '/',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => {
                let first = self.hex4()?;
                if (0xD800..0xDC00).contains(&first) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    if self.peek() != Some('\\') {
                        return Err(SyntaxError {
                            pos,
                            message: "unpaired surrogate in \\u escape".into(),
                        });
                    }
                    self.bump();
                    if self.bump() != Some('u') {
                        return Err(SyntaxError {
                            pos,
                            message: "unpaired surrogate in \\u escape".into(),
                        });
                    }
                    let second = self.hex4()?;
                    if !(0xDC00..0xE000).contains(&second) {
                        return Err(SyntaxError {
                            pos,
                            message: "unpaired surrogate in \\u escape".into(),
                        });
                    }
                    let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                    char::from_u32(code).ok_or_else(|| SyntaxError {
                        pos,
                        message: "invalid \\u escape".into(),
                    })?
                } else {
                    char::from_u32(first).ok_or_else(|| SyntaxError {
                        pos,
                        message: "unpaired surrogate in \\u escape".into(),
                    })?
                }
            }
            _ => {
                return Err(SyntaxError {
                    pos,
                    message: "invalid escape sequence in a string".into(),
                });
            }
        };
        Ok(c)
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut code = 0u32;
        for _ in 0..4 {
            let pos = self.pos();
            let digit = self
                .bump()
                .and_then(|c| c.to_digit(16))
                .ok_or(SyntaxError {
                    pos,
                    message: "expected four hex digits after \\u".into(),
                })?;
            code = code * 16 + digit;
        }
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Value {
        parse(text.as_bytes(), Limits::default()).unwrap()
    }

    fn err(text: &str) -> SyntaxError {
        parse(text.as_bytes(), Limits::default()).unwrap_err()
    }

    #[test]
    fn positions_of_keys_and_values() {
        let v = ok("{\n  \"a\": [1, \"x\"],\n  \"b\": true\n}");
        let Kind::Object(members) = v.kind else {
            panic!("not an object")
        };
        assert_eq!(members[0].key_pos, Pos { line: 2, column: 3 });
        assert_eq!(members[0].value.pos, Pos { line: 2, column: 8 });
        let Kind::Array(items) = &members[0].value.kind else {
            panic!("not an array")
        };
        assert_eq!(
            items[1].pos,
            Pos {
                line: 2,
                column: 12
            }
        );
        assert_eq!(members[1].value.pos, Pos { line: 3, column: 8 });
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let v = ok("{\"é\": 1}");
        let Kind::Object(members) = v.kind else {
            panic!("not an object")
        };
        assert_eq!(members[0].value.pos, Pos { line: 1, column: 7 });
    }

    #[test]
    fn duplicate_keys_are_refused_with_both_positions() {
        let e = err("{\"a\": 1,\n \"a\": 2}");
        assert_eq!(e.pos, Pos { line: 2, column: 2 });
        assert!(e.message.contains("duplicate key `a`"), "{e}");
        assert!(e.message.contains("1:2"), "{e}");
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "[".repeat(40) + &"]".repeat(40);
        assert!(err(&deep).message.contains("nesting deeper"));
        let fine = "[".repeat(32) + &"]".repeat(32);
        ok(&fine);
    }

    #[test]
    fn size_is_bounded() {
        let limits = Limits {
            max_bytes: 4,
            max_depth: 4,
        };
        assert!(parse(b"[1, 2]", limits).is_err());
    }

    #[test]
    fn numbers_keep_their_text() {
        let v = ok("[18446744073709551615, 1.5, -0, 1e3]");
        let Kind::Array(items) = v.kind else {
            panic!("not an array")
        };
        let nums: Vec<_> = items
            .iter()
            .map(|i| match &i.kind {
                Kind::Number(n) => n.clone(),
                _ => panic!("not a number"),
            })
            .collect();
        assert_eq!(nums[0].as_u64(), Some(u64::MAX));
        assert_eq!(nums[1].as_u64(), None);
        assert_eq!(nums[2].as_u64(), None);
        assert_eq!(nums[3].as_str(), "1e3");
        let Kind::Array(big) = ok("[18446744073709551616]").kind else {
            panic!("not an array")
        };
        let Kind::Number(big) = &big[0].kind else {
            panic!("not a number")
        };
        assert_eq!(big.as_u64(), None, "overflow must not wrap or saturate");
    }

    #[test]
    fn malformed_documents_are_refused() {
        for bad in [
            "",
            "{",
            "}",
            "[1,]",
            "{\"a\":1,}",
            "{'a':1}",
            "[01]",
            "[1.]",
            "[1e]",
            "[-]",
            "[tru]",
            "[nul]",
            "[truex]",
            "\"a\nb\"",
            "\"\\x\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "[1] 2",
            "{\"a\" 1}",
            "{1:2}",
            "[\"\\u12\"]",
            "NaN",
            "[Infinity]",
        ] {
            assert!(
                parse(bad.as_bytes(), Limits::default()).is_err(),
                "accepted {bad:?}"
            );
        }
    }

    #[test]
    fn escapes_and_surrogates() {
        let v = ok(r#""a\u00e9\ud83d\ude00\n""#);
        assert_eq!(v.kind, Kind::String("aé😀\n".into()));
    }

    #[test]
    fn invalid_utf8_names_its_position() {
        let e = parse(b"{\n \"a\": \"\xff\"}", Limits::default()).unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, column: 8 });
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        ok("\u{feff}{}");
    }
}
