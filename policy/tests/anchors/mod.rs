//! Where a problem must point: the position of an anchor text in a test document, so tables
//! of malformed inputs state "the error points at this text" rather than magic numbers.
#![allow(dead_code, unreachable_pub)]

use warden_policy::diag::{Problem, Severity};

/// Marks "the end of the document" as the expected position.
pub const END: &str = "<end>";

/// Where `anchor` first occurs in `text` (or the end, for [`END`]), as 1-based line and column
/// (columns count characters).
pub fn position_of(text: &str, anchor: &str) -> (u32, u32) {
    let offset = if anchor == END {
        text.len()
    } else {
        text.find(anchor)
            .unwrap_or_else(|| panic!("anchor {anchor:?} not in {text}"))
    };
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32 + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
    (line, column)
}

/// Asserts that `problems` hold an error at JSON `path`, positioned at `anchor` in `text`, whose
/// message contains `fragment`.
pub fn check(
    scenario: &str,
    problems: &[Problem],
    text: &str,
    path: &str,
    anchor: &str,
    fragment: &str,
) {
    let Some(hit) = problems.iter().find(|p| p.path == path) else {
        panic!("{scenario}: no problem at path `{path}`; got {problems:?}");
    };
    assert_eq!(
        (hit.line, hit.column),
        position_of(text, anchor),
        "{scenario}: wrong position for {hit:?}"
    );
    assert!(
        hit.message.contains(fragment),
        "{scenario}: message `{}` lacks `{fragment}`",
        hit.message
    );
    assert_eq!(hit.severity, Severity::Error, "{scenario}");
}
