//! Per-app logs: what the app wrote to stdout and stderr, kept in a bounded ring. A flooding
//! app never blocks the supervisor and never grows its memory: the oldest lines go, and the
//! count of dropped bytes is kept.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Longest line kept; longer lines are cut and marked.
pub const MAX_LINE: usize = 4096;

/// Which stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
    /// A line the supervisor wrote about the app (started, stopped, restarting).
    Supervisor,
}

/// One line of an app's log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Line {
    pub seq: u64,
    pub time: u64,
    pub stream: Stream,
    pub text: String,
}

#[derive(Debug)]
struct Ring {
    lines: VecDeque<Line>,
    bytes: usize,
    capacity: usize,
    next_seq: u64,
    dropped_bytes: u64,
}

/// A bounded log, shared between the threads that read a worker's pipes and the API.
#[derive(Clone, Debug)]
pub struct Log {
    ring: Arc<Mutex<Ring>>,
    /// Signalled on every new line, for readers that wait (`logs?wait_ms=`).
    grown: Arc<Condvar>,
}

impl Log {
    /// A log holding at most `capacity` bytes of text.
    pub fn new(capacity: usize) -> Log {
        Log {
            ring: Arc::new(Mutex::new(Ring {
                lines: VecDeque::new(),
                bytes: 0,
                capacity,
                next_seq: 1,
                dropped_bytes: 0,
            })),
            grown: Arc::new(Condvar::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one line (without its newline); longer than [`MAX_LINE`] is cut.
    pub fn push(&self, stream: Stream, bytes: &[u8]) {
        self.push_line(stream, bytes, bytes.len() > MAX_LINE);
    }

    fn push_line(&self, stream: Stream, bytes: &[u8], cut: bool) {
        let mut text = String::from_utf8_lossy(bytes.get(..MAX_LINE).unwrap_or(bytes)).into_owned();
        if cut {
            text.push_str(" […cut]");
        }
        let mut ring = self.lock();
        let line = Line {
            seq: ring.next_seq,
            time: crate::now(),
            stream,
            text,
        };
        ring.next_seq += 1;
        ring.bytes += line.text.len();
        ring.lines.push_back(line);
        while ring.bytes > ring.capacity {
            let Some(old) = ring.lines.pop_front() else {
                break;
            };
            ring.bytes -= old.text.len();
            ring.dropped_bytes += old.text.len() as u64;
        }
        drop(ring);
        self.grown.notify_all();
    }

    /// Lines with `seq > after`, oldest first, and the bytes dropped so far.
    pub fn since(&self, after: u64) -> (Vec<Line>, u64) {
        self.wait_since(after, Duration::ZERO)
    }

    /// Like [`Log::since`], but if there is no line after `after` yet, waits up to `timeout`
    /// for one (a follower's long poll). Returns what there is when the time is up.
    pub fn wait_since(&self, after: u64, timeout: Duration) -> (Vec<Line>, u64) {
        let deadline = Instant::now() + timeout;
        let mut ring = self.lock();
        while ring.next_seq <= after.saturating_add(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            ring = self
                .grown
                .wait_timeout(ring, left)
                .map_or_else(|p| p.into_inner().0, |(guard, _)| guard);
        }
        (
            ring.lines
                .iter()
                .filter(|l| l.seq > after)
                .cloned()
                .collect(),
            ring.dropped_bytes,
        )
    }

    /// Reads `reader` line by line into the log until it ends (the worker closed its end).
    pub fn pump(&self, stream: Stream, reader: impl std::io::Read) {
        use std::io::{BufRead, Read};
        let mut reader = std::io::BufReader::with_capacity(64 * 1024, reader);
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            // Bounded: a line longer than MAX_LINE is cut there and continues as the next.
            match (&mut reader)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut line)
            {
                Ok(0) | Err(_) => break,
                Ok(_) => match line.strip_suffix(b"\n") {
                    Some(text) => self.push_line(stream, text, false),
                    None => self.push_line(stream, &line, line.len() == MAX_LINE),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_keeps_the_newest_lines_within_capacity() {
        let log = Log::new(1000);
        let flood: Vec<u8> = (0..10_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        log.pump(Stream::Stdout, &flood[..]);
        let (lines, dropped) = log.since(0);
        let kept: usize = lines.iter().map(|l| l.text.len()).sum();
        assert!(kept <= 1000);
        assert_eq!(lines.last().unwrap().text, "line 9999");
        assert!(dropped > 0);
        let (newer, _) = log.since(lines[lines.len() - 2].seq);
        assert_eq!(newer.len(), 1);
    }

    #[test]
    fn long_lines_are_cut() {
        let log = Log::new(100_000);
        log.pump(Stream::Stderr, &vec![b'x'; MAX_LINE * 2 + 10][..]);
        let (lines, _) = log.since(0);
        assert_eq!(lines.len(), 3);
        assert!(lines[0].text.ends_with("[…cut]"));
    }

    #[test]
    fn a_waiting_reader_wakes_on_the_next_line_and_times_out_without_one() {
        let log = Log::new(1000);
        log.push(Stream::Stdout, b"first");
        let (lines, _) = log.wait_since(1, Duration::from_millis(30));
        assert!(lines.is_empty(), "nothing new: the wait times out empty");
        let writer = log.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            writer.push(Stream::Stdout, b"second");
        });
        let (lines, _) = log.wait_since(1, Duration::from_secs(30));
        thread.join().unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text, "second");
        let (lines, _) = log.wait_since(0, Duration::from_secs(30));
        assert_eq!(lines.len(), 2, "lines already there come back at once");
    }
}
