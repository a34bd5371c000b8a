//! The serial framing of inter-core messages on the emulated real-time core
//! ([docs/formats/intercore.md](../../../docs/formats/intercore.md)).
//!
//! The emulated Cortex-M4 shares no memory with the host, so its UART0 carries each rpmsg
//! message with its 16-byte header behind a two-byte sync mark:
//!
//! ```text
//! frame  := 0xA5 0x5A  src u32 | dst u32 | reserved u32 = 0 | len u16 | flags u16 = 0  payload
//! ```
//!
//! (little-endian, `1 <= len <= 496`). [`encode`] writes one frame; a [`Decoder`] takes the
//! byte stream in pieces of any size and gives back whole frames. The stream comes from
//! firmware, which is untrusted: the decoder holds at most [`DECODER_BUFFER`] bytes whatever it
//! is fed, never panics (fuzz target `intercore`), and counts what it had to drop.

use std::fmt;

/// The two bytes that begin every frame.
pub const SYNC: [u8; 2] = [0xA5, 0x5A];
/// `struct rpmsg_hdr`: src, dst, reserved, len, flags.
pub const HEADER_LEN: usize = 16;
/// Largest payload: an rpmsg buffer of 512 bytes less its header.
pub const MAX_PAYLOAD: usize = 496;
/// Largest frame on the line: sync mark, header and the largest payload.
pub const MAX_FRAME: usize = SYNC.len() + HEADER_LEN + MAX_PAYLOAD;
/// The firmware's service endpoint (the first dynamic rpmsg address).
pub const FIRMWARE_ENDPOINT: u32 = 0x400;
/// Bytes a [`Decoder`] holds at most: two frames, so a whole frame always fits behind the
/// bytes it is still looking at.
pub const DECODER_BUFFER: usize = 2 * MAX_FRAME;

/// One message between two rpmsg endpoints.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub src: u32,
    pub dst: u32,
    /// 1 to [`MAX_PAYLOAD`] bytes.
    pub payload: Vec<u8>,
}

impl fmt::Debug for Frame {
    // Payloads can be 496 bytes: show their length and a short prefix, not every byte.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = &self.payload[..self.payload.len().min(32)];
        f.debug_struct("Frame")
            .field("src", &format_args!("{:#x}", self.src))
            .field("dst", &format_args!("{:#x}", self.dst))
            .field("len", &self.payload.len())
            .field("payload", &String::from_utf8_lossy(shown))
            .finish()
    }
}

/// Why a frame cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("an empty payload: an inter-core message is 1 to {MAX_PAYLOAD} bytes")]
    Empty,
    #[error("a payload of {0} bytes: an inter-core message is at most {MAX_PAYLOAD} bytes")]
    TooLong(usize),
}

/// Appends `frame` as it goes on the line to `out`.
pub fn encode_into(frame: &Frame, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let len = frame.payload.len();
    if len == 0 {
        return Err(EncodeError::Empty);
    }
    if len > MAX_PAYLOAD {
        return Err(EncodeError::TooLong(len));
    }
    out.reserve(SYNC.len() + HEADER_LEN + len);
    out.extend_from_slice(&SYNC);
    out.extend_from_slice(&frame.src.to_le_bytes());
    out.extend_from_slice(&frame.dst.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    // len <= MAX_PAYLOAD, checked above, so it fits in u16.
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&frame.payload);
    Ok(())
}

/// `frame` as it goes on the line.
pub fn encode(frame: &Frame) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_into(frame, &mut out)?;
    Ok(out)
}

/// What a [`Decoder`] has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecoderStats {
    /// Whole frames given back.
    pub frames: u64,
    /// Bytes that were not part of a frame given back: line noise, the first byte of each
    /// refused header, and cut-off frames.
    pub dropped_bytes: u64,
    /// Sync marks followed by a header that is not one (reserved or flags not 0, len 0 or
    /// over 496).
    pub bad_headers: u64,
    /// Frames cut off by the end of the stream ([`Decoder::finish`]).
    pub cut_off: u64,
}

/// An incremental frame decoder: push bytes as they arrive, pull whole frames.
///
/// Resynchronisation is the document's: wherever a sync mark should be and is not, or the
/// header after one is not valid, one byte is dropped and the search for the next sync mark
/// starts from the byte after it (so a sync mark inside a refused header is found).
pub struct Decoder {
    buf: Box<[u8; DECODER_BUFFER]>,
    /// The bytes not yet decoded are `buf[start..end]`.
    start: usize,
    end: usize,
    stats: DecoderStats,
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("buffered", &self.buffered())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

/// What the bytes at the front of the buffer are.
enum Front {
    /// Not enough bytes to tell.
    NeedMore,
    /// Not the start of a frame: drop this many bytes.
    Drop(usize),
    /// A sync mark with a refused header: drop its first byte.
    BadHeader,
    /// A whole frame of this many bytes on the line.
    Frame(Frame, usize),
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            buf: Box::new([0; DECODER_BUFFER]),
            start: 0,
            end: 0,
            stats: DecoderStats::default(),
        }
    }

    /// Bytes held, not yet decoded.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Takes as many of `bytes` as there is room for and returns how many it took. It takes
    /// at least one byte whenever `bytes` is not empty and [`Decoder::next_frame`] has
    /// returned `None` since the last push; [`Decoder::feed`] does that loop.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        if self.start > 0 && DECODER_BUFFER - self.end < bytes.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = bytes.len().min(DECODER_BUFFER - self.end);
        self.buf[self.end..self.end + n].copy_from_slice(&bytes[..n]);
        self.end += n;
        n
    }

    /// The next whole frame, dropping whatever is not one on the way; `None` until more bytes
    /// come.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            match self.front() {
                Front::NeedMore => return None,
                Front::Drop(n) => self.discard(n),
                Front::BadHeader => {
                    self.stats.bad_headers += 1;
                    self.discard(1);
                }
                Front::Frame(frame, len) => {
                    self.start += len;
                    self.stats.frames += 1;
                    return Some(frame);
                }
            }
        }
    }

    /// Pushes all of `bytes`, calling `on_frame` with each frame they complete, in order.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_frame: impl FnMut(Frame)) {
        loop {
            let taken = self.push(bytes);
            bytes = &bytes[taken..];
            while let Some(frame) = self.next_frame() {
                on_frame(frame);
            }
            if bytes.is_empty() {
                return;
            }
        }
    }

    /// The end of the stream: whatever is held is a frame cut off (or noise) and is dropped.
    pub fn finish(&mut self) {
        let held = self.buffered();
        if held > 0 {
            if self.buf[self.start] == SYNC[0] {
                self.stats.cut_off += 1;
            }
            self.discard(held);
        }
        self.start = 0;
        self.end = 0;
    }

    fn discard(&mut self, n: usize) {
        self.start += n;
        self.stats.dropped_bytes += n as u64;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    fn front(&self) -> Front {
        let held = &self.buf[self.start..self.end];
        let Some(&first) = held.first() else {
            return Front::NeedMore;
        };
        if first != SYNC[0] {
            // Skip straight to the next candidate sync byte.
            let skip = held
                .iter()
                .position(|&b| b == SYNC[0])
                .unwrap_or(held.len());
            return Front::Drop(skip);
        }
        match held.get(1) {
            None => return Front::NeedMore,
            Some(&b) if b != SYNC[1] => return Front::Drop(1),
            Some(_) => {}
        }
        let Some(header) = held.get(SYNC.len()..SYNC.len() + HEADER_LEN) else {
            return Front::NeedMore;
        };
        let u32_at =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let u16_at = |i: usize| u16::from_le_bytes([header[i], header[i + 1]]);
        let (src, dst, reserved, len, flags) = (
            u32_at(0),
            u32_at(4),
            u32_at(8),
            usize::from(u16_at(12)),
            u16_at(14),
        );
        if reserved != 0 || flags != 0 || len == 0 || len > MAX_PAYLOAD {
            return Front::BadHeader;
        }
        let total = SYNC.len() + HEADER_LEN + len;
        match held.get(SYNC.len() + HEADER_LEN..total) {
            None => Front::NeedMore,
            Some(payload) => Front::Frame(
                Frame {
                    src,
                    dst,
                    payload: payload.to_vec(),
                },
                total,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn frame(src: u32, dst: u32, payload: &[u8]) -> Frame {
        Frame {
            src,
            dst,
            payload: payload.to_vec(),
        }
    }

    /// Decodes `stream` pushed in pieces of `chunk` bytes, then ends it.
    fn decode_chunked(stream: &[u8], chunk: usize) -> (Vec<Frame>, DecoderStats) {
        let mut decoder = Decoder::new();
        let mut frames = Vec::new();
        for piece in stream.chunks(chunk.max(1)) {
            decoder.feed(piece, |f| frames.push(f));
        }
        decoder.finish();
        (frames, decoder.stats())
    }

    fn decode(stream: &[u8]) -> (Vec<Frame>, DecoderStats) {
        decode_chunked(stream, stream.len())
    }

    fn some_frames() -> Vec<Frame> {
        vec![
            frame(0x1000, FIRMWARE_ENDPOINT, b"hello"),
            frame(FIRMWARE_ENDPOINT, 0x1000, &[0xA5; MAX_PAYLOAD]),
            frame(0x1001, FIRMWARE_ENDPOINT, &[0x5A]),
            frame(u32::MAX, 0, &SYNC),
            frame(7, 8, &(0..=255).collect::<Vec<u8>>()),
        ]
    }

    fn stream_of(frames: &[Frame]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            encode_into(f, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn a_frame_is_laid_out_as_the_document_says() {
        let bytes = encode(&frame(0x1002, 0x400, b"ab")).unwrap();
        assert_eq!(
            bytes,
            [
                0xA5, 0x5A, // sync
                0x02, 0x10, 0, 0, // src
                0x00, 0x04, 0, 0, // dst
                0, 0, 0, 0, // reserved
                2, 0, // len
                0, 0, // flags
                b'a', b'b'
            ]
        );
        assert_eq!(
            encode(&frame(1, 2, &[7; MAX_PAYLOAD])).unwrap().len(),
            MAX_FRAME
        );
    }

    #[test]
    fn empty_and_oversized_payloads_are_refused() {
        assert_eq!(encode(&frame(1, 2, b"")), Err(EncodeError::Empty));
        assert_eq!(
            encode(&frame(1, 2, &[0; MAX_PAYLOAD + 1])),
            Err(EncodeError::TooLong(MAX_PAYLOAD + 1))
        );
        let mut out = vec![9];
        assert!(encode_into(&frame(1, 2, b""), &mut out).is_err());
        assert_eq!(out, [9], "a refused frame writes nothing");
    }

    #[test]
    fn frames_round_trip() {
        let frames = some_frames();
        let (decoded, stats) = decode(&stream_of(&frames));
        assert_eq!(decoded, frames);
        assert_eq!(
            stats,
            DecoderStats {
                frames: frames.len() as u64,
                ..DecoderStats::default()
            }
        );
    }

    #[test]
    fn every_split_into_two_or_three_pieces_decodes_the_same() {
        let frames = some_frames();
        let stream = stream_of(&frames);
        for chunk in 1..=stream.len() {
            assert_eq!(
                decode_chunked(&stream, chunk).0,
                frames,
                "chunks of {chunk}"
            );
        }
        // Every cut into two pieces, and a sample of cuts into three.
        for a in 0..=stream.len() {
            let mut decoder = Decoder::new();
            let mut got = Vec::new();
            decoder.feed(&stream[..a], |f| got.push(f));
            decoder.feed(&stream[a..], |f| got.push(f));
            assert_eq!(got, frames, "cut at {a}");
            for b in (a..=stream.len()).step_by(37) {
                let mut decoder = Decoder::new();
                let mut got = Vec::new();
                for piece in [&stream[..a], &stream[a..b], &stream[b..]] {
                    decoder.feed(piece, |f| got.push(f));
                }
                assert_eq!(got, frames, "cuts at {a} and {b}");
            }
        }
    }

    #[test]
    fn push_takes_what_fits_and_next_frame_makes_room() {
        let frames = vec![frame(1, 2, &[3; MAX_PAYLOAD]); 10];
        let stream = stream_of(&frames);
        let mut decoder = Decoder::new();
        let mut rest = &stream[..];
        let mut got = Vec::new();
        while !rest.is_empty() {
            let taken = decoder.push(rest);
            assert!(taken > 0);
            assert!(decoder.buffered() <= DECODER_BUFFER);
            rest = &rest[taken..];
            while let Some(f) = decoder.next_frame() {
                got.push(f);
            }
        }
        assert_eq!(got, frames);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn garbage_between_frames_is_dropped_and_counted() {
        let frames = some_frames();
        let noise: &[&[u8]] = &[
            b"boot messages\r\n",
            &[0xA5],
            &[0xA5, 0xA5, 0x00],
            &[0x5A, 0x5A],
            &[0xA5, 0x5A, 0xA5],
            b"",
        ];
        let mut stream = Vec::new();
        let mut noise_bytes = 0;
        for (i, f) in frames.iter().enumerate() {
            let n = noise[i % noise.len()];
            stream.extend_from_slice(n);
            noise_bytes += n.len();
            encode_into(f, &mut stream).unwrap();
        }
        stream.extend_from_slice(b"trailing");
        noise_bytes += b"trailing".len();
        for chunk in [1, 2, 7, stream.len()] {
            let (decoded, stats) = decode_chunked(&stream, chunk);
            assert_eq!(decoded, frames, "chunks of {chunk}");
            assert_eq!(stats.dropped_bytes, noise_bytes as u64);
        }
    }

    #[test]
    fn a_bad_header_drops_one_byte_and_resynchronises() {
        let good = frame(0x1000, 0x400, b"after");
        for (field, at, value) in [
            ("reserved", 10, 1u8),
            ("len low byte: 0", 14, 0),
            ("len high byte: over 496", 15, 2),
            ("flags", 16, 1),
        ] {
            let mut bad = encode(&frame(0x1000, 0x400, b"xyz")).unwrap();
            bad[at] = value;
            let mut stream = bad.clone();
            encode_into(&good, &mut stream).unwrap();
            let (decoded, stats) = decode(&stream);
            assert_eq!(decoded, std::slice::from_ref(&good), "{field}");
            assert_eq!(stats.bad_headers, 1, "{field}");
            assert_eq!(stats.dropped_bytes, bad.len() as u64, "{field}");
        }
        // A len of exactly 497 is refused; 496 is not.
        let mut over = encode(&frame(1, 2, &[0; MAX_PAYLOAD])).unwrap();
        over[14..16].copy_from_slice(&497u16.to_le_bytes());
        over.push(0);
        assert!(decode(&over).0.is_empty());
    }

    #[test]
    fn a_sync_mark_inside_a_refused_header_is_found() {
        // The refused header's src holds the start of the real frame: A5 5A then a header.
        let inner = encode(&frame(0x1000, 0x400, b"inner")).unwrap();
        let mut stream = vec![0xA5, 0x5A];
        stream.extend_from_slice(&[1, 2]); // src low half
        stream.extend_from_slice(&inner);
        // The outer header's reserved field is inner's bytes 6..10 (dst 0x400): not 0, so the
        // outer is refused and the search restarts one byte in, finding inner.
        let (decoded, stats) = decode(&stream);
        assert_eq!(decoded, [frame(0x1000, 0x400, b"inner")]);
        assert_eq!(stats.bad_headers, 1);
        assert_eq!(stats.dropped_bytes, 4);
    }

    #[test]
    fn a_frame_cut_off_at_the_end_is_dropped() {
        let frames = some_frames();
        let full = stream_of(&frames);
        let last = encode(frames.last().unwrap()).unwrap().len();
        for cut in 1..last {
            let (decoded, stats) = decode(&full[..full.len() - cut]);
            assert_eq!(decoded, frames[..frames.len() - 1], "cut {cut}");
            assert_eq!(stats.cut_off, 1);
            assert_eq!(stats.dropped_bytes, (last - cut) as u64);
        }
    }

    #[test]
    fn a_frame_cut_off_mid_stream_costs_at_most_the_frames_it_swallows() {
        // A frame announcing 200 bytes gets 10, then good frames follow: its payload swallows
        // what comes next (there is no checksum), and the decoder finds the frames after that.
        let mut stream = encode(&frame(1, 0x400, &[b'x'; 200])).unwrap();
        stream.truncate(SYNC.len() + HEADER_LEN + 10);
        let good: Vec<Frame> = (0..20u8).map(|i| frame(0x1000, 0x400, &[i; 30])).collect();
        stream.extend_from_slice(&stream_of(&good));
        let (decoded, _) = decode(&stream);
        let tail = &decoded[decoded.len() - 10..];
        assert_eq!(tail, &good[10..]);
        assert!(decoded.len() <= 1 + good.len());
    }

    #[test]
    fn noise_alone_is_held_in_bounded_memory() {
        let mut decoder = Decoder::new();
        let noise: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        decoder.feed(&noise, |_| panic!("noise decoded as a frame"));
        assert!(decoder.buffered() <= DECODER_BUFFER);
        // A run of sync marks whose headers are all refused.
        let marks: Vec<u8> = SYNC.iter().copied().cycle().take(50_000).collect();
        decoder.feed(&marks, |_| panic!("sync marks decoded as a frame"));
        assert!(decoder.buffered() < MAX_FRAME);
        decoder.finish();
        assert_eq!(decoder.stats().dropped_bytes, 150_000);
    }
}
