//! Inter-core messages as serial frames (docs/formats/intercore.md):
//!
//! ```text
//! 0xA5 0x5A | src u32 | dst u32 | reserved u32 = 0 | len u16 | flags u16 = 0 | payload
//! ```
//!
//! little-endian, `1 <= len <= 496`.

use crate::uart::Uart;

pub const SYNC: [u8; 2] = [0xA5, 0x5A];
pub const HEADER_LEN: usize = 16;
pub const MAX_PAYLOAD: usize = 496;
pub const MAX_FRAME: usize = SYNC.len() + HEADER_LEN + MAX_PAYLOAD;

/// One received frame; the payload borrows the parser's buffer.
pub struct Frame<'a> {
    pub src: u32,
    pub dst: u32,
    pub payload: &'a [u8],
}

/// Collects bytes until they make a frame. It never holds a whole frame's worth: at most
/// [`MAX_FRAME`] bytes always decide whether there is a frame at the front.
pub struct Parser {
    buf: [u8; MAX_FRAME],
    held: usize,
}

/// What the bytes at the front of the buffer are.
enum Front {
    NeedMore,
    /// Not the start of a valid frame: drop one byte and search again from the next (so a
    /// sync mark inside a refused header is found), as the format says.
    DropOne,
    Frame {
        len: usize,
    },
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl Parser {
    pub const fn new() -> Self {
        Parser {
            buf: [0; MAX_FRAME],
            held: 0,
        }
    }

    /// Takes one byte; calls `on_frame` with the frame it completes, if any.
    pub fn push(&mut self, byte: u8, mut on_frame: impl FnMut(&Frame<'_>)) {
        if self.held == self.buf.len() {
            // Cannot happen (see the type's comment); keeps the invariant without trusting it.
            self.drop_front(1);
        }
        self.buf[self.held] = byte;
        self.held += 1;
        loop {
            match self.front() {
                Front::NeedMore => return,
                Front::DropOne => self.drop_front(1),
                Front::Frame { len } => {
                    let b = &self.buf[..self.held];
                    let header = &b[SYNC.len()..];
                    let end = SYNC.len() + HEADER_LEN + len;
                    on_frame(&Frame {
                        src: u32_at(header, 0),
                        dst: u32_at(header, 4),
                        payload: &b[SYNC.len() + HEADER_LEN..end],
                    });
                    self.drop_front(end);
                }
            }
        }
    }

    fn front(&self) -> Front {
        let b = &self.buf[..self.held];
        match b {
            [] => Front::NeedMore,
            [first, ..] if *first != SYNC[0] => Front::DropOne,
            [_] => Front::NeedMore,
            [_, second, ..] if *second != SYNC[1] => Front::DropOne,
            _ if b.len() < SYNC.len() + HEADER_LEN => Front::NeedMore,
            _ => {
                let header = &b[SYNC.len()..];
                let len = usize::from(u16_at(header, 12));
                if u32_at(header, 8) != 0
                    || u16_at(header, 14) != 0
                    || len == 0
                    || len > MAX_PAYLOAD
                {
                    Front::DropOne
                } else if b.len() < SYNC.len() + HEADER_LEN + len {
                    Front::NeedMore
                } else {
                    Front::Frame { len }
                }
            }
        }
    }

    fn drop_front(&mut self, n: usize) {
        self.buf.copy_within(n..self.held, 0);
        self.held -= n;
    }
}

/// Sends one frame; `payload` must be 1 to [`MAX_PAYLOAD`] bytes (otherwise nothing is sent).
pub fn send(uart: &Uart, src: u32, dst: u32, payload: &[u8]) {
    if payload.is_empty() || payload.len() > MAX_PAYLOAD {
        return;
    }
    uart.write_all(&SYNC);
    uart.write_all(&src.to_le_bytes());
    uart.write_all(&dst.to_le_bytes());
    uart.write_all(&0u32.to_le_bytes());
    uart.write_all(&(payload.len() as u16).to_le_bytes());
    uart.write_all(&0u16.to_le_bytes());
    uart.write_all(payload);
}
