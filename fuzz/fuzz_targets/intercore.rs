//! The inter-core frame decoder never panics on any byte stream pushed in any pieces, holds
//! bounded memory, and everything it yields is a valid frame that re-encodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_ipc::intercore::{DECODER_BUFFER, Decoder, MAX_FRAME, MAX_PAYLOAD, SYNC, encode};

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the piece size, so splits are explored along with contents.
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(split).max(1);
    let mut decoder = Decoder::new();
    let mut frames = Vec::new();
    for chunk in stream.chunks(piece) {
        decoder.feed(chunk, |f| frames.push(f));
        assert!(
            decoder.buffered() < MAX_FRAME,
            "{decoder:?} holds a decidable prefix"
        );
        assert!(decoder.buffered() <= DECODER_BUFFER);
    }
    decoder.finish();
    assert_eq!(decoder.buffered(), 0);
    let mut on_the_line = 0u64;
    let mut again = Vec::new();
    for frame in &frames {
        assert!(!frame.payload.is_empty() && frame.payload.len() <= MAX_PAYLOAD);
        let bytes = encode(frame).expect("a decoded frame encodes");
        assert_eq!(bytes[..2], SYNC);
        on_the_line += bytes.len() as u64;
        again.extend_from_slice(&bytes);
    }
    let stats = decoder.stats();
    assert_eq!(stats.frames, frames.len() as u64);
    // Every byte was either part of a frame yielded or counted as dropped.
    assert_eq!(on_the_line + stats.dropped_bytes, stream.len() as u64);
    // The frames alone, re-encoded, decode to the same frames with nothing dropped.
    let mut clean = Decoder::new();
    let mut round = Vec::new();
    clean.feed(&again, |f| round.push(f));
    assert_eq!(round, frames);
    assert_eq!(clean.stats().dropped_bytes, 0);
});
