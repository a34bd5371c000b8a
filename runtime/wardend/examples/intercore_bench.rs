//! The inter-core benchmark behind `cargo xtask bench intercore`: round trips and bursts of
//! messages between the application side and the echo firmware on the emulated Cortex-M4,
//! through the supervisor's bridge and without it, beside the same exchange between two host
//! processes over a pty.
//!
//! ```text
//! intercore_bench FIRMWARE.elf [--qemu PROGRAM] [--rounds R] [--window W]
//!                 [--trips SMALL,LARGE] [--burst SMALL,LARGE]
//! intercore_bench pty-echo        (the pty path's echoing process, on its stdin and stdout)
//! ```
//!
//! One emulator for the whole run: `FIRMWARE.elf` (`sample-apps/rt-echo-c`) started by
//! [`EmulatedCore`], the supervisor's own backend, so QEMU runs as under `wardend` (through
//! `warden_sandbox::spawn`, its UART0 on one end of a socket pair). Each round measures three
//! paths, in an order reversed from one round to the next:
//!
//! - `bridge`: a [`Bridge`] (the supervisor's code) is started on the core's serial stream and a
//!   channel opened on it; this process, on the app's end of the channel, does what the worker
//!   does for `send` and `receive` (`host-api/src/intercore.rs`): poll for room, write one
//!   message; poll for a message, read one. The bridge is dropped at the end of the round, and
//!   the round waits until its thread has let go of the line.
//! - `direct`: this process speaks frames on the same serial stream itself (what an app would
//!   do if it owned the UART): writes a frame, reads and decodes until the answer is whole.
//! - `pty`: the same frames to a second process (this program, `pty-echo`) on the slave of a
//!   raw pty pair, which decodes them and writes each answer back as the firmware would; this
//!   process is on the master, as in `direct`.
//!
//! Per path and round: `--trips` round trips of a 16-byte and of a 496-byte message, one at a
//! time (the median of the round is printed), then a burst of `--burst` messages of each size
//! with at most `--window` in flight (its wall time is printed), and the CPU time this
//! process's threads spent on the path's messages: the thread measuring (the app's side) and,
//! for `bridge`, the bridge's thread (`/proc/thread-self/schedstat`). Every answer is checked
//! against what was sent. The first round is a warm-up and is not printed. Output, for xtask:
//!
//! ```text
//! latency PATH SIZE MEDIAN_NS
//! burst PATH SIZE MESSAGES WALL_NS
//! cpu PATH MESSAGES CLIENT_NS BRIDGE_NS
//! note key=value ...
//! ```
//!
//! Why it is safe: it is an example, never installed on a device; it runs the firmware it is
//! given in the emulator, confined as the supervisor confines it.
#![forbid(unsafe_code)]
// A benchmark tool: its output is the product.
#![allow(clippy::print_stdout)]

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use warden_ipc::intercore::{Decoder, FIRMWARE_ENDPOINT, Frame, MAX_PAYLOAD, encode_into};
use wardend::intercore::{Bridge, FIRST_CHANNEL_ADDRESS};
use wardend::rtcore::{CoreBackend, EmulatedCore};

/// How long any one answer may take: the machine is shared; a working path answers in
/// milliseconds.
const PATIENCE: Duration = Duration::from_secs(30);
/// The message sizes measured: a small message and the largest there is.
const SIZES: [usize; 2] = [16, MAX_PAYLOAD];
/// The A7-side address the direct and pty paths use: the one a bridge gives its first channel.
const CHANNEL: u32 = FIRST_CHANNEL_ADDRESS;

struct Options {
    firmware: PathBuf,
    qemu: PathBuf,
    rounds: usize,
    /// Per size of [`SIZES`].
    trips: [usize; 2],
    burst: [usize; 2],
    window: usize,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("pty-echo") {
        return pty_echo();
    }
    let options = parse_options(&args)?;
    measure(&options)
}

fn parse_options(args: &[String]) -> Result<Options> {
    let usage = "usage: intercore_bench FIRMWARE.elf [--qemu PROGRAM] [--rounds R] [--window W] \
                 [--trips SMALL,LARGE] [--burst SMALL,LARGE]";
    let mut options = Options {
        firmware: PathBuf::new(),
        qemu: PathBuf::from("qemu-system-arm"),
        rounds: 61,
        trips: [60, 10],
        burst: [150, 30],
        window: 8,
    };
    let mut firmware = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .with_context(|| format!("{arg} needs a value; {usage}"))
        };
        match arg.as_str() {
            "--qemu" => options.qemu = PathBuf::from(value()?),
            "--rounds" => options.rounds = value()?.parse().context("--rounds")?,
            "--trips" => options.trips = pair(value()?).context("--trips SMALL,LARGE")?,
            "--burst" => options.burst = pair(value()?).context("--burst SMALL,LARGE")?,
            "--window" => options.window = value()?.parse().context("--window")?,
            other if firmware.is_none() && !other.starts_with("--") => {
                firmware = Some(PathBuf::from(other));
            }
            other => bail!("unexpected argument {other:?}; {usage}"),
        }
    }
    options.firmware = firmware.context(usage)?;
    if options.rounds == 0
        || options.window == 0
        || options.trips.contains(&0)
        || options.burst.contains(&0)
    {
        bail!("rounds, trips, burst and window must be at least 1");
    }
    Ok(options)
}

/// `A,B` as two counts.
fn pair(text: &str) -> Result<[usize; 2]> {
    let (a, b) = text.split_once(',').context("two counts, A,B")?;
    Ok([a.parse()?, b.parse()?])
}

// ---- the ends the paths are measured from -------------------------------------------------

/// One end of a path: sends a message and receives the next one.
trait Link {
    fn send(&mut self, payload: &[u8]) -> Result<()>;
    fn receive(&mut self) -> Result<Vec<u8>>;
}

/// Waits until `fd` is ready for `flags` (or hung up), at most [`PATIENCE`].
fn wait_for(fd: BorrowedFd<'_>, flags: PollFlags, what: &str) -> Result<PollFlags> {
    let timeout = Timespec {
        tv_sec: PATIENCE.as_secs() as i64,
        tv_nsec: 0,
    };
    loop {
        let mut fds = [PollFd::new(&fd, flags)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) => bail!("{what}: nothing within {PATIENCE:?}"),
            Ok(_) => return Ok(fds[0].revents()),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e).context(what.to_owned()),
        }
    }
}

/// The app's end of a bridge channel, used as the worker uses it.
struct ChannelEnd {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Link for ChannelEnd {
    fn send(&mut self, payload: &[u8]) -> Result<()> {
        let ready = wait_for(self.fd.as_fd(), PollFlags::OUT, "waiting to send")?;
        if ready.intersects(PollFlags::HUP | PollFlags::ERR) {
            bail!("the channel closed");
        }
        let n = rustix::io::write(&self.fd, payload).context("sending on the channel")?;
        if n != payload.len() {
            bail!("{n} of {} bytes sent", payload.len());
        }
        Ok(())
    }

    fn receive(&mut self) -> Result<Vec<u8>> {
        loop {
            wait_for(self.fd.as_fd(), PollFlags::IN, "waiting for a message")?;
            match rustix::io::read(&self.fd, &mut self.buf) {
                Ok(0) => bail!("the channel closed"),
                Ok(n) => return Ok(self.buf.get(..n).unwrap_or_default().to_vec()),
                Err(Errno::AGAIN | Errno::INTR) => {}
                Err(e) => return Err(e).context("receiving on the channel"),
            }
        }
    }
}

/// A byte stream carrying frames (the core's serial line, or a pty master), spoken directly.
struct FrameStream {
    fd: OwnedFd,
    decoder: Decoder,
    frames: VecDeque<Frame>,
    out: Vec<u8>,
    chunk: Vec<u8>,
}

impl FrameStream {
    fn new(fd: OwnedFd) -> FrameStream {
        FrameStream {
            fd,
            decoder: Decoder::new(),
            frames: VecDeque::new(),
            out: Vec::with_capacity(1024),
            chunk: vec![0; 4096],
        }
    }

    /// Writes all of `bytes`, waiting for room when the stream is non-blocking (a bridge made
    /// the serial stream's description non-blocking; this works either way).
    fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            match rustix::io::write(fd, bytes) {
                Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
                Err(Errno::AGAIN) => {
                    wait_for(fd.as_fd(), PollFlags::OUT, "waiting to write")?;
                }
                Err(Errno::INTR) => {}
                Err(e) => return Err(e).context("writing a frame"),
            }
        }
        Ok(())
    }
}

impl Link for FrameStream {
    fn send(&mut self, payload: &[u8]) -> Result<()> {
        self.out.clear();
        let frame = Frame {
            src: CHANNEL,
            dst: FIRMWARE_ENDPOINT,
            payload: payload.to_vec(),
        };
        encode_into(&frame, &mut self.out)?;
        FrameStream::write_all(&self.fd, &self.out)
    }

    fn receive(&mut self) -> Result<Vec<u8>> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                if (frame.src, frame.dst) != (FIRMWARE_ENDPOINT, CHANNEL) {
                    bail!("an answer from {:#x} to {:#x}", frame.src, frame.dst);
                }
                return Ok(frame.payload);
            }
            wait_for(self.fd.as_fd(), PollFlags::IN, "waiting for a frame")?;
            match rustix::io::read(&self.fd, &mut self.chunk) {
                Ok(0) => bail!("the stream closed"),
                Ok(n) => {
                    let frames = &mut self.frames;
                    self.decoder
                        .feed(self.chunk.get(..n).unwrap_or_default(), |f| {
                            frames.push_back(f);
                        });
                }
                Err(Errno::AGAIN | Errno::INTR) => {}
                Err(e) => return Err(e).context("reading frames"),
            }
        }
    }
}

// ---- the measurements -----------------------------------------------------------------

/// The `i`th message of `size` bytes: its number, then a byte that changes with it.
fn message(size: usize, i: usize) -> Vec<u8> {
    let mut m = vec![(i % 251) as u8; size];
    for (b, n) in m.iter_mut().zip((i as u32).to_le_bytes()) {
        *b = n;
    }
    m
}

fn check(got: &[u8], size: usize, i: usize) -> Result<()> {
    if got != message(size, i).as_slice() {
        bail!(
            "answer {i} of {size} bytes is not what was sent ({} bytes came back)",
            got.len()
        );
    }
    Ok(())
}

/// The median time of `trips` round trips of `size`-byte messages, one at a time.
fn latency(link: &mut dyn Link, size: usize, trips: usize) -> Result<Duration> {
    let mut times = Vec::with_capacity(trips);
    for i in 0..trips {
        let m = message(size, i);
        let started = Instant::now();
        link.send(&m)?;
        let got = link.receive()?;
        times.push(started.elapsed());
        check(&got, size, i)?;
    }
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

/// The wall time of `count` messages echoed with at most `window` in flight.
fn burst(link: &mut dyn Link, size: usize, count: usize, window: usize) -> Result<Duration> {
    let started = Instant::now();
    let (mut sent, mut got) = (0, 0);
    while got < count {
        while sent < count && sent - got < window {
            link.send(&message(size, sent))?;
            sent += 1;
        }
        let answer = link.receive()?;
        check(&answer, size, got)?;
        got += 1;
    }
    Ok(started.elapsed())
}

/// What one path measured in one round.
struct Measured {
    latency: Vec<(usize, Duration)>,
    burst: Vec<(usize, usize, Duration)>,
    messages: usize,
    /// CPU time of the measuring thread, and of the bridge's thread, over the round.
    client_cpu: u64,
    bridge_cpu: u64,
}

fn run_path(link: &mut dyn Link, o: &Options) -> Result<Measured> {
    let cpu_before = cpu_time(Path::new("/proc/thread-self"))?;
    let mut measured = Measured {
        latency: Vec::new(),
        burst: Vec::new(),
        messages: 0,
        client_cpu: 0,
        bridge_cpu: 0,
    };
    for (size, trips) in SIZES.into_iter().zip(o.trips) {
        measured.latency.push((size, latency(link, size, trips)?));
        measured.messages += trips;
    }
    for (size, count) in SIZES.into_iter().zip(o.burst) {
        let wall = burst(link, size, count, o.window)?;
        measured.burst.push((size, count, wall));
        measured.messages += count;
    }
    measured.client_cpu = cpu_time(Path::new("/proc/thread-self"))?.saturating_sub(cpu_before);
    Ok(measured)
}

fn print(path: &str, m: &Measured) {
    for (size, median) in &m.latency {
        println!("latency {path} {size} {}", median.as_nanos());
    }
    for (size, count, wall) in &m.burst {
        println!("burst {path} {size} {count} {}", wall.as_nanos());
    }
    println!(
        "cpu {path} {} {} {}",
        m.messages, m.client_cpu, m.bridge_cpu
    );
}

/// The CPU time a task has used so far, in nanoseconds (the first field of its `schedstat`).
fn cpu_time(task: &Path) -> Result<u64> {
    let path = task.join("schedstat");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("unexpected {}: {text:?}", path.display()))
}

/// This process's thread named `name` (a new thread names itself once it runs: wait for it).
fn thread_named(name: &str) -> Result<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for task in std::fs::read_dir("/proc/self/task")?.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim_end() == name {
                return Ok(task.path());
            }
        }
        if Instant::now() > deadline {
            bail!("no thread named {name}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Totals over the bridge rounds, for the notes.
#[derive(Default)]
struct BridgeTotals {
    to_apps: u64,
    to_firmware: u64,
    dropped: u64,
}

/// One round through a bridge started for it on the core's serial stream.
fn bridge_round(
    core: &EmulatedCore,
    round: usize,
    o: &Options,
    totals: &mut BridgeTotals,
) -> Result<Measured> {
    let serial = core.serial().context("the core's serial stream is gone")?;
    // The thread's name (`intercore-<core>`) tells its CPU time apart from earlier rounds'.
    let name = format!("r{round}");
    let thread = format!("intercore-{name}");
    let bridge = Bridge::start(OwnedFd::from(serial), &name).context("starting the bridge")?;
    let fd = bridge
        .open()
        .map_err(|d| anyhow::anyhow!("opening a channel: {d:?}"))?;
    let mut end = ChannelEnd {
        fd,
        buf: vec![0; MAX_PAYLOAD + 1],
    };
    let task = thread_named(&thread)?;
    let cpu_before = cpu_time(&task)?;
    let mut measured = run_path(&mut end, o)?;
    measured.bridge_cpu = cpu_time(&task)?.saturating_sub(cpu_before);
    // The bridge counts a delivery just after the app could already read it.
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut stats = bridge.stats();
    while stats.to_apps < stats.to_firmware && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
        stats = bridge.stats();
    }
    totals.to_apps += stats.to_apps;
    totals.to_firmware += stats.to_firmware;
    totals.dropped += stats.dropped_full + stats.dropped_unknown + stats.dropped_bytes;
    // Stop the bridge and wait until its thread has left the line: it closes every channel
    // once out of its loop, so the app's end reads end-of-channel.
    drop(bridge);
    loop {
        wait_for(
            end.fd.as_fd(),
            PollFlags::IN,
            "waiting for the bridge to stop",
        )?;
        match rustix::io::read(&end.fd, &mut end.buf) {
            Ok(0) => break,
            Ok(_) | Err(Errno::AGAIN | Errno::INTR) => {}
            Err(e) => return Err(e).context("waiting for the bridge to stop"),
        }
    }
    Ok(measured)
}

/// The pty path's echoing process, on a raw pty pair.
struct PtyEcho {
    child: Child,
    master: FrameStream,
}

impl PtyEcho {
    fn start() -> Result<PtyEcho> {
        let pty = nix::pty::openpty(None, None).context("cannot open a pty")?;
        let mut termios = nix::sys::termios::tcgetattr(pty.slave.as_fd())?;
        nix::sys::termios::cfmakeraw(&mut termios);
        nix::sys::termios::tcsetattr(
            pty.slave.as_fd(),
            nix::sys::termios::SetArg::TCSANOW,
            &termios,
        )?;
        let program = std::env::current_exe().context("this program's path")?;
        let child = Command::new(program)
            .arg("pty-echo")
            .stdin(Stdio::from(pty.slave.try_clone()?))
            .stdout(Stdio::from(pty.slave))
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the pty echo")?;
        Ok(PtyEcho {
            child,
            master: FrameStream::new(pty.master),
        })
    }
}

impl Drop for PtyEcho {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn measure(o: &Options) -> Result<()> {
    let firmware = std::fs::canonicalize(&o.firmware)
        .with_context(|| format!("cannot find {}", o.firmware.display()))?;
    let core = EmulatedCore::new("rt0", "mps2-an386", &o.qemu);
    core.load_and_start(&firmware, "intercore-bench.elf")?;
    let mut direct = FrameStream::new(OwnedFd::from(
        core.serial().context("the emulator has no serial stream")?,
    ));
    // The firmware is up once it answers.
    direct.send(b"boot")?;
    if direct.receive()? != b"boot" {
        bail!("the firmware's first answer is not the echo of the first message");
    }
    let mut pty = PtyEcho::start()?;
    let mut totals = BridgeTotals::default();
    for round in 0..=o.rounds {
        let mut order = ["bridge", "direct", "pty"];
        if round % 2 == 1 {
            order.reverse();
        }
        for path in order {
            let measured = match path {
                "bridge" => bridge_round(&core, round, o, &mut totals)?,
                "direct" => run_path(&mut direct, o)?,
                _ => run_path(&mut pty.master, o)?,
            };
            if round > 0 {
                print(path, &measured);
            }
        }
        eprintln!("intercore_bench: round {round} of {} done", o.rounds);
    }
    let line = direct.decoder.stats();
    let echo = pty.master.decoder.stats();
    println!(
        "note bridge_to_apps={} bridge_to_firmware={} bridge_dropped={} direct_frames={} \
         direct_dropped={} pty_frames={} pty_dropped={}",
        totals.to_apps,
        totals.to_firmware,
        totals.dropped,
        line.frames,
        line.dropped_bytes,
        echo.frames,
        echo.dropped_bytes,
    );
    drop(pty);
    core.stop()?;
    Ok(())
}

// ---- the pty path's echo ---------------------------------------------------------------

/// Answers every frame to the service endpoint on stdin with the same payload on stdout, as
/// the firmware does, until stdin ends.
fn pty_echo() -> Result<()> {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let (input, output) = (stdin.as_fd(), stdout.as_fd());
    let mut decoder = Decoder::new();
    let mut chunk = vec![0u8; 4096];
    let mut out = Vec::with_capacity(8192);
    loop {
        let n = match rustix::io::read(input, &mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            // The master closed.
            Err(Errno::IO) => return Ok(()),
            Err(e) => return Err(e).context("pty-echo: reading"),
        };
        out.clear();
        let mut refused = None;
        decoder.feed(chunk.get(..n).unwrap_or_default(), |frame| {
            if frame.dst != FIRMWARE_ENDPOINT {
                return;
            }
            let answer = Frame {
                src: FIRMWARE_ENDPOINT,
                dst: frame.src,
                payload: frame.payload,
            };
            if let Err(e) = encode_into(&answer, &mut out) {
                refused = Some(e);
            }
        });
        if let Some(e) = refused {
            return Err(e).context("pty-echo: encoding");
        }
        let mut rest = out.as_slice();
        while !rest.is_empty() {
            match rustix::io::write(output, rest) {
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(Errno::INTR) => {}
                Err(e) => return Err(e).context("pty-echo: writing"),
            }
        }
    }
}
