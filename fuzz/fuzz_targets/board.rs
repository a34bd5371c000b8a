//! The board-file reader never panics, and every refusal carries an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_policy::board::Board;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = Board::parse("board.json", data) {
        assert!(e.errors().next().is_some(), "refused without an error");
    }
});
