//! Inter-core channels to a real-time app on an emulated core: the [`Bridge`] between the
//! emulated Cortex-M4's serial line and the apps' channels (docs/formats/intercore.md).
//!
//! Each channel is a `SOCK_SEQPACKET` pair: one end goes to the app's worker (through the
//! broker, [`Access::Channel`]), the other stays here, registered under the channel's own
//! endpoint address (`0x1000 + n`). One thread per core moves messages both ways:
//!
//! - **from the firmware**: bytes read from the serial line go through the frame decoder; each
//!   frame's payload is sent, as one packet and without waiting, to the channel its `dst`
//!   names. A channel whose app does not read fills its socket buffer, and further messages to
//!   it are dropped and counted, never queued here; a frame for no open channel is dropped and
//!   counted. So a firmware flooding the line costs this thread one read per chunk and one
//!   non-blocking send per message, and nothing it sends can make the supervisor wait.
//! - **from the apps**: a packet read from a channel becomes one frame (`src` = the channel's
//!   address, `dst` = [`FIRMWARE_ENDPOINT`]) in a bounded outgoing buffer ([`MAX_PENDING_OUT`]
//!   bytes) that is written to the line as the emulator takes it; while the buffer is full the
//!   thread stops reading the channels, so a firmware that does not read slows the apps' sends
//!   (their own socket buffers fill) instead of growing memory here.
//!
//! When the line closes (the core stopped or crashed), every channel's end here is closed:
//! the apps read end-of-channel.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustix::event::{PollFd, PollFlags};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use serde::Serialize;
use warden_ipc::broker::{Access, Denial};
use warden_ipc::intercore::{Decoder, FIRMWARE_ENDPOINT, Frame, MAX_PAYLOAD, encode_into};

/// The first A7-side endpoint address; each channel takes the next.
pub const FIRST_CHANNEL_ADDRESS: u32 = 0x1000;

/// Most channels open on one core at once.
pub const MAX_CHANNELS: usize = 64;

/// Most bytes of frames waiting for the emulator to take them.
pub const MAX_PENDING_OUT: usize = 64 * 1024;

/// What a bridge did, for `GET /apps/{id}` of the real-time app and for tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BridgeStats {
    /// Messages delivered to a channel, and sent to the firmware.
    pub to_apps: u64,
    pub to_firmware: u64,
    /// Messages from the firmware dropped because the channel's app had no room for them.
    pub dropped_full: u64,
    /// Frames from the firmware for an address no channel has.
    pub dropped_unknown: u64,
    /// Bytes of the serial stream that were not part of a frame.
    pub dropped_bytes: u64,
    /// Channels open now.
    pub channels: usize,
    /// Whether the line is still open.
    pub open: bool,
}

#[derive(Debug)]
struct Shared {
    /// Our end of each open channel, by its address. Shared with the thread, which polls them
    /// without holding the lock.
    channels: Mutex<BTreeMap<u32, Arc<OwnedFd>>>,
    next: AtomicU32,
    stats: Mutex<BridgeStats>,
    stop: AtomicBool,
    /// Written to wake the thread when the channels change or the bridge stops.
    wake_tx: OwnedFd,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The bridge of one emulated core. Dropping it stops its thread and closes every channel.
#[derive(Debug)]
pub struct Bridge {
    shared: Arc<Shared>,
}

impl Bridge {
    /// Starts bridging `serial` (a stream connected to the emulated core's UART), on a thread
    /// named after `core`.
    pub fn start(serial: OwnedFd, core: &str) -> io::Result<Bridge> {
        rustix::io::ioctl_fionbio(&serial, true)?;
        let (wake_rx, wake_tx) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )?;
        let shared = Arc::new(Shared {
            channels: Mutex::new(BTreeMap::new()),
            next: AtomicU32::new(FIRST_CHANNEL_ADDRESS),
            stats: Mutex::new(BridgeStats {
                open: true,
                ..BridgeStats::default()
            }),
            stop: AtomicBool::new(false),
            wake_tx,
        });
        let worker = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("intercore-{core}"))
            .spawn(move || run(&worker, &serial, &wake_rx))?;
        Ok(Bridge { shared })
    }

    /// A new channel to the firmware: the app's end (one message per read and write).
    pub fn open(&self) -> Result<OwnedFd, Denial> {
        let mut channels = lock(&self.shared.channels);
        if !lock(&self.shared.stats).open {
            return Err(Denial::Io(
                "the real-time core's line is closed (the core stopped)".into(),
            ));
        }
        if channels.len() >= MAX_CHANNELS {
            return Err(Denial::Busy(format!(
                "{MAX_CHANNELS} channels are open on this core already"
            )));
        }
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Denial::Io(format!("cannot make the channel's socket pair: {e}")))?;
        rustix::io::ioctl_fionbio(&ours, true)
            .map_err(|e| Denial::Io(format!("cannot make the channel non-blocking: {e}")))?;
        let address = self.shared.next.fetch_add(1, Ordering::Relaxed);
        channels.insert(address, Arc::new(ours));
        drop(channels);
        self.wake();
        Ok(theirs)
    }

    /// What the bridge did so far.
    pub fn stats(&self) -> BridgeStats {
        let mut stats = lock(&self.shared.stats).clone();
        stats.channels = lock(&self.shared.channels).len();
        stats
    }

    fn wake(&self) {
        let _ = rustix::io::write(&self.shared.wake_tx, &[1]);
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.wake();
    }
}

/// The bridge thread: until the line closes or the bridge is dropped.
fn run(shared: &Shared, serial: &OwnedFd, wake: &OwnedFd) {
    let mut decoder = Decoder::new();
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 4096];
    let mut packet = vec![0u8; MAX_PAYLOAD + 1];
    while !shared.stop.load(Ordering::Relaxed) {
        // The channels to read this round, polled without holding the lock (an `open` must
        // not wait for the line).
        let reading_apps = out.len() < MAX_PENDING_OUT;
        let channels: Vec<(u32, Arc<OwnedFd>)> = if reading_apps {
            lock(&shared.channels)
                .iter()
                .map(|(a, fd)| (*a, Arc::clone(fd)))
                .collect()
        } else {
            Vec::new()
        };
        let mut fds = vec![
            PollFd::new(wake, PollFlags::IN),
            PollFd::new(
                serial,
                if out.is_empty() {
                    PollFlags::IN
                } else {
                    PollFlags::IN | PollFlags::OUT
                },
            ),
        ];
        fds.extend(
            channels
                .iter()
                .map(|(_, fd)| PollFd::new(&**fd, PollFlags::IN)),
        );
        if rustix::event::poll(&mut fds, None).is_err() {
            continue;
        }
        let serial_ready = fds.get(1).map_or(PollFlags::empty(), PollFd::revents);
        let app_ready: Vec<(u32, Arc<OwnedFd>)> = channels
            .iter()
            .zip(fds.iter().skip(2))
            .filter(|(_, f)| {
                f.revents()
                    .intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR)
            })
            .map(|((a, fd), _)| (*a, Arc::clone(fd)))
            .collect();
        drop(fds);
        // Drain the wake pipe.
        while matches!(rustix::io::read(wake, &mut chunk[..64]), Ok(n) if n > 0) {}

        if serial_ready.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR) {
            match rustix::io::read(serial, &mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    let bytes = chunk.get(..n).unwrap_or_default();
                    decoder.feed(bytes, |frame| deliver(shared, frame));
                    lock(&shared.stats).dropped_bytes = decoder.stats().dropped_bytes;
                }
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
        }
        for (address, fd) in app_ready {
            match rustix::net::recv(&*fd, &mut packet, RecvFlags::DONTWAIT).map(|(n, _)| n) {
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                // The app closed its end (or its worker is gone).
                Ok(0) | Err(_) => {
                    lock(&shared.channels).remove(&address);
                }
                Ok(n) if n <= MAX_PAYLOAD => {
                    let frame = Frame {
                        src: address,
                        dst: FIRMWARE_ENDPOINT,
                        payload: packet.get(..n).unwrap_or_default().to_vec(),
                    };
                    if encode_into(&frame, &mut out).is_ok() {
                        lock(&shared.stats).to_firmware += 1;
                    }
                }
                // Longer than a message (the worker checks; a packet this long is dropped).
                Ok(_) => {}
            }
        }
        if !out.is_empty() {
            match rustix::io::write(serial, &out) {
                Ok(n) => {
                    out.drain(..n.min(out.len()));
                }
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
        }
    }
    // The line is closed or the bridge dropped: every app reads end-of-channel.
    lock(&shared.channels).clear();
    lock(&shared.stats).open = false;
}

/// Sends one message from the firmware to the channel it names, never waiting.
fn deliver(shared: &Shared, frame: Frame) {
    let mut channels = lock(&shared.channels);
    let Some(fd) = channels.get(&frame.dst) else {
        lock(&shared.stats).dropped_unknown += 1;
        return;
    };
    match rustix::net::send(fd.as_ref().as_fd(), &frame.payload, SendFlags::DONTWAIT) {
        Ok(_) => lock(&shared.stats).to_apps += 1,
        Err(rustix::io::Errno::AGAIN | rustix::io::Errno::NOBUFS) => {
            lock(&shared.stats).dropped_full += 1;
        }
        // The app's end is gone.
        Err(_) => {
            channels.remove(&frame.dst);
        }
    }
}

/// Opens channels for the broker through the supervisor, once it is attached (it is made
/// after the broker's services).
#[derive(Debug, Default)]
pub struct Channels {
    supervisor: std::sync::OnceLock<crate::supervisor::WeakSupervisor>,
}

impl Channels {
    pub fn attach(&self, supervisor: crate::supervisor::WeakSupervisor) {
        let _ = self.supervisor.set(supervisor);
    }

    /// A channel from `app` to `peer`, as [`crate::supervisor::Supervisor::open_channel`]
    /// decides it.
    pub fn open(&self, app: &str, peer: &str) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let supervisor = self
            .supervisor
            .get()
            .and_then(crate::supervisor::WeakSupervisor::upgrade)
            .ok_or_else(|| Denial::Io("the supervisor is shutting down".into()))?;
        supervisor.open_channel(app, peer).map(grant)
    }
}

/// The grant of a channel: its descriptor, one message per read and write.
pub fn grant(fd: OwnedFd) -> (Access, Vec<OwnedFd>) {
    (
        Access::Channel {
            max_message: MAX_PAYLOAD as u32,
        },
        vec![fd],
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    use warden_ipc::intercore::encode;

    use super::*;

    /// A fake firmware on the other end of the line: echoes every frame to its sender, and
    /// answers `flood:N` with N frames.
    fn firmware(line: UnixStream) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            let mut line = line;
            let mut decoder = Decoder::new();
            let mut buf = [0u8; 4096];
            loop {
                let Ok(n) = line.read(&mut buf) else { return };
                if n == 0 {
                    return;
                }
                let mut frames = Vec::new();
                decoder.feed(&buf[..n], |f| frames.push(f));
                for f in frames {
                    if let Some(count) = f.payload.strip_prefix(b"flood:") {
                        let count: u32 = std::str::from_utf8(count).unwrap().parse().unwrap();
                        for i in 0..count {
                            let frame = Frame {
                                src: FIRMWARE_ENDPOINT,
                                dst: f.src,
                                payload: format!("n:{i}").into_bytes(),
                            };
                            line.write_all(&encode(&frame).unwrap()).unwrap();
                        }
                        let done = Frame {
                            src: FIRMWARE_ENDPOINT,
                            dst: f.src,
                            payload: b"flood-done".to_vec(),
                        };
                        line.write_all(&encode(&done).unwrap()).unwrap();
                    } else {
                        let echo = Frame {
                            src: FIRMWARE_ENDPOINT,
                            dst: f.src,
                            payload: f.payload,
                        };
                        line.write_all(&encode(&echo).unwrap()).unwrap();
                    }
                }
            }
        })
    }

    fn exchange(app: &OwnedFd, message: &[u8]) -> Vec<u8> {
        rustix::net::send(app, message, SendFlags::empty()).unwrap();
        receive(app, Duration::from_secs(5)).expect("an answer")
    }

    fn receive(app: &OwnedFd, within: Duration) -> Option<Vec<u8>> {
        let mut fds = [PollFd::new(app, PollFlags::IN)];
        let timeout = rustix::event::Timespec {
            tv_sec: within.as_secs() as i64,
            tv_nsec: i64::from(within.subsec_nanos()),
        };
        if rustix::event::poll(&mut fds, Some(&timeout)).unwrap() == 0 {
            return None;
        }
        let mut buf = vec![0u8; MAX_PAYLOAD + 1];
        let (n, _) = rustix::net::recv(app, &mut buf, RecvFlags::empty()).unwrap();
        buf.truncate(n);
        Some(buf)
    }

    fn bridge() -> (Bridge, std::thread::JoinHandle<()>) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let bridge = Bridge::start(OwnedFd::from(ours), "rt0").unwrap();
        (bridge, firmware(theirs))
    }

    #[test]
    fn each_channel_gets_its_own_answers() {
        let (bridge, _fw) = bridge();
        let a = bridge.open().unwrap();
        let b = bridge.open().unwrap();
        assert_eq!(exchange(&a, b"ping from a"), b"ping from a");
        assert_eq!(exchange(&b, b"ping from b"), b"ping from b");
        let longest = vec![7u8; MAX_PAYLOAD];
        assert_eq!(exchange(&a, &longest), longest);
        // The count follows the send the app already saw.
        let deadline = Instant::now() + Duration::from_secs(5);
        while bridge.stats().to_apps < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stats = bridge.stats();
        assert_eq!(
            (stats.to_firmware, stats.to_apps, stats.channels),
            (3, 3, 2)
        );
    }

    #[test]
    fn a_flood_to_an_app_that_does_not_read_is_dropped_and_others_go_on() {
        let (bridge, _fw) = bridge();
        let flooded = bridge.open().unwrap();
        let other = bridge.open().unwrap();
        rustix::net::send(&flooded, b"flood:10000", SendFlags::empty()).unwrap();
        // The flooded app reads nothing; the other one is answered meanwhile.
        let began = Instant::now();
        assert_eq!(exchange(&other, b"still there?"), b"still there?");
        assert!(began.elapsed() < Duration::from_secs(5));
        let deadline = Instant::now() + Duration::from_secs(10);
        while bridge.stats().to_apps + bridge.stats().dropped_full < 10_002
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let stats = bridge.stats();
        assert_eq!(stats.to_apps + stats.dropped_full, 10_002, "{stats:?}");
        assert!(stats.dropped_full > 0, "{stats:?}");
        // What did arrive is in order and complete messages.
        let mut last = None;
        while let Some(message) = receive(&flooded, Duration::from_millis(100)) {
            let text = String::from_utf8(message).unwrap();
            let Some(i) = text.strip_prefix("n:") else {
                assert_eq!(text, "flood-done");
                continue;
            };
            let i: u32 = i.parse().unwrap();
            assert!(last.is_none_or(|l| i > l), "{i} after {last:?}");
            last = Some(i);
        }
        assert_eq!(exchange(&other, b"and now?"), b"and now?");
    }

    #[test]
    fn frames_for_no_channel_are_counted_and_a_closed_line_ends_every_channel() {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let bridge = Bridge::start(OwnedFd::from(ours), "rt0").unwrap();
        let app = bridge.open().unwrap();
        let stray = Frame {
            src: FIRMWARE_ENDPOINT,
            dst: 0x7777,
            payload: b"lost".to_vec(),
        };
        theirs.write_all(b"noise").unwrap();
        theirs.write_all(&encode(&stray).unwrap()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while bridge.stats().dropped_unknown == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let stats = bridge.stats();
        assert_eq!(
            (stats.dropped_unknown, stats.dropped_bytes),
            (1, 5),
            "{stats:?}"
        );
        drop(theirs);
        // The app reads end-of-channel.
        let mut buf = [0u8; 16];
        let mut fds = [PollFd::new(&app, PollFlags::IN)];
        rustix::event::poll(&mut fds, None).unwrap();
        let (n, _) = rustix::net::recv(&app, &mut buf, RecvFlags::empty()).unwrap();
        assert_eq!(n, 0);
        let deadline = Instant::now() + Duration::from_secs(5);
        while bridge.stats().open && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!bridge.stats().open);
        assert!(matches!(bridge.open(), Err(Denial::Io(_))));
    }

    #[test]
    fn an_app_that_closes_its_end_is_forgotten() {
        let (bridge, _fw) = bridge();
        let app = bridge.open().unwrap();
        assert_eq!(exchange(&app, b"hi"), b"hi");
        drop(app);
        let deadline = Instant::now() + Duration::from_secs(5);
        while bridge.stats().channels != 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(bridge.stats().channels, 0);
    }
}
