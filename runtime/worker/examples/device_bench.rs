//! The host-API benchmark behind `cargo xtask bench devices`: the cost of a `warden:device`
//! call made by a component, beside the raw syscalls it wraps on the same kind of descriptor,
//! in one process, side by side.
//!
//! ```text
//! device_bench GUEST.wasm BOARD.json [--rounds R] [--gpio-calls N] [--uart-mib M]
//! ```
//!
//! - `GUEST.wasm` is `sample-apps/device-bench` (a wasm32-wasip2 component): it opens one
//!   peripheral and times, with the WASI monotonic clock, a loop of `output-pin.set` or
//!   `port.write` calls.
//! - The board is a real [`SimBoard`] built from `BOARD.json`, loaded and resolved with the
//!   supervisor's own loader (`wardend::device::load_board`).
//! - The app runs through [`Prepared::run_measured`], the worker's real run path, with a real
//!   [`warden_host_api::BrokerClient`] (the worker builds it from the broker socket); the
//!   supervisor end of that socket is served by a thread here that resolves the name through
//!   the board's hardware definitions and hands over what [`SimBoard::open`] returns (or a bare
//!   pty, for `BENCH_PTY`). No sandbox: no namespaces, landlock or seccomp.
//!
//! Each round runs every case twice, through the API and as raw syscalls on a fresh descriptor
//! of the same resource, the two in alternating order from round to round; the first round is
//! a warm-up and is not printed. Each loop reports its wall time (the guest's clock for the
//! API) and the CPU time the calling thread spent on it. Output, one line per measured loop,
//! for xtask to summarise:
//!
//! ```text
//! sample CASE api|raw CALLS BYTES WALL_NS CPU_NS
//! note UART key=value ...
//! ```
//!
//! Why it is safe: it is an example, never installed on a device, and runs only the guest it
//! is given (the benchmark's own) without the sandbox, in a build host's process.
#![forbid(unsafe_code)]
// A benchmark tool: its output is the product.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use warden_ipc::broker::{
    Access, BrokerReply, BrokerRequest, Denial, GpioMode, Grant, ResourceRequest,
};
use warden_ipc::sim::{SimReply, SimRequest};
use warden_ipc::{Channel, CodeKind, Outcome, RunRequest};
use warden_policy::hwdef::HwdefSet;
use warden_policy::ids::PeripheralType;
use warden_simboard::SimBoard;
use warden_worker::Prepared;

/// The app id the board records as the holder.
const APP: &str = "device-bench";
/// The LED the GPIO case drives: `SAMPLE_LED` → `LED_RED` → `SIM_GPIO0` on warden-sim.
const LED: &str = "SAMPLE_LED";
/// The simulated console UART (a pty bridged by the board to an exposed pty).
const SIM_UART: &str = "SIM_ISU0_UART";
/// A name the bench's broker grants as a bare pty pair made here (not on the board), to see
/// the API's cost without the board's bridge in the way.
const BARE_PTY: &str = "BENCH_PTY";
/// A name the bench's broker grants as `/dev/null`, presented as a tty: a `write()` with no
/// device and no reader behind it, so what the API adds to it is the host call's own cost.
const NULL_DEVICE: &str = "BENCH_NULL";
/// Write sizes: the largest one `port.write` accepts (4096, the WIT's transfer bound), and a
/// short line, where the per-call cost shows most.
const CHUNKS: [u64; 2] = [4096, 64];
/// The small chunk moves this fraction of the large one's bytes (each call costs the same
/// however small, so the same byte count would take 64 times longer).
const SMALL_CHUNK_SHARE: u64 = 8;

struct Options {
    guest: std::path::PathBuf,
    board: std::path::PathBuf,
    rounds: usize,
    gpio_calls: u64,
    uart_bytes: u64,
}

fn options() -> Result<Options> {
    let usage = "usage: device_bench GUEST.wasm BOARD.json [--rounds R] [--gpio-calls N] \
                 [--uart-mib M]";
    let mut args = std::env::args().skip(1);
    let (Some(guest), Some(board)) = (args.next(), args.next()) else {
        bail!(usage);
    };
    let mut options = Options {
        guest: guest.into(),
        board: board.into(),
        rounds: 41,
        gpio_calls: 4000,
        uart_bytes: 8 << 20,
    };
    while let Some(flag) = args.next() {
        let value: u64 = args
            .next()
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("{flag} needs a number; {usage}"))?;
        match flag.as_str() {
            "--rounds" => options.rounds = usize::try_from(value)?,
            "--gpio-calls" => options.gpio_calls = value,
            "--uart-mib" => options.uart_bytes = value << 20,
            _ => bail!("unknown option {flag}; {usage}"),
        }
    }
    Ok(options)
}

fn main() -> Result<()> {
    let options = options()?;
    let wasm = std::fs::read(&options.guest)
        .with_context(|| format!("cannot read {}", options.guest.display()))?;
    let app = Artefact::compile(&wasm)?;
    let (board, hwdefs) = wardend::device::load_board(&options.board)
        .with_context(|| format!("cannot load {}", options.board.display()))?;
    let sim = SimBoard::new(&board).context("cannot bring up the simulated board")?;
    let names = Names::resolve(&hwdefs)?;
    let bare = BarePty::new()?;
    let bench = Bench {
        app,
        sim,
        names,
        bare: Arc::clone(&bare.slave),
    };

    // Drained all the time, as a terminal on the other end would be: the sim UART's exposed
    // end (what a developer opens), the bare pty's master.
    let exposed = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(bench.sim.uart_path(SIM_UART)?)
        .context("cannot open the simulated UART's exposed end")?;
    let sim_drained = drain("sim uart drain", exposed.into())?;
    let bare_drained = drain("bare pty drain", bare.master)?;

    let gpio_chip = bench.names.chip(LED)?.to_owned();
    let mut written: BTreeMap<&str, u64> = BTreeMap::new();
    // Per UART case over the measured rounds: the drain's reads during the API loops, during
    // the raw loops, and the writes of one side.
    let mut reads: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    for round in 0..=options.rounds {
        let report = |case: &str, side: &str, m: Measured| {
            if round > 0 {
                println!(
                    "sample {case} {side} {} {} {} {}",
                    m.calls,
                    m.bytes,
                    m.elapsed.as_nanos(),
                    m.cpu.as_nanos()
                );
            }
        };
        // Which side goes first alternates from round to round, so neither always runs on the
        // caches and frequencies the other left behind.
        let api_first = round % 2 == 0;
        let calls = options.gpio_calls.to_string();
        let (api, raw) = both(
            api_first,
            || bench.api(&["gpio", LED, &calls], &["gpio", LED, "0"]),
            || bench.raw_gpio(&gpio_chip, options.gpio_calls),
        )?;
        report("gpio", "api", api);
        report("gpio", "raw", raw);
        // Small writes to /dev/null: as many calls as the large-chunk loops move bytes / 64,
        // enough for the CPU time to dwarf the run's own (a call costs well under 1 µs).
        let chunk = CHUNKS[1];
        let (bytes_arg, chunk_arg) = (options.uart_bytes.to_string(), chunk.to_string());
        let (api, raw) = both(
            api_first,
            || {
                let loop_args = ["uart", NULL_DEVICE, &bytes_arg, &chunk_arg];
                bench.api(&loop_args, &["uart", NULL_DEVICE, "0", &chunk_arg])
            },
            || bench.raw_uart(NULL_DEVICE, options.uart_bytes, chunk),
        )?;
        report(&format!("uart-null-{chunk}"), "api", api);
        report(&format!("uart-null-{chunk}"), "raw", raw);
        for (uart, drained) in [(SIM_UART, &sim_drained), (BARE_PTY, &bare_drained)] {
            let label = if uart == SIM_UART {
                "uart-sim"
            } else {
                "uart-pty"
            };
            for chunk in CHUNKS {
                let bytes = if chunk == CHUNKS[0] {
                    options.uart_bytes
                } else {
                    options.uart_bytes / SMALL_CHUNK_SHARE
                };
                let (bytes_arg, chunk_arg) = (bytes.to_string(), chunk.to_string());
                // The reads the drain made for each loop: each is one wake-up of the reader.
                let (mut api_reads, mut raw_reads) = (0, 0);
                let (api, raw) = both(
                    api_first,
                    || {
                        let loop_args = ["uart", uart, &bytes_arg, &chunk_arg];
                        let before = drained.reads.load(Ordering::Relaxed);
                        let api = bench.api(&loop_args, &["uart", uart, "0", &chunk_arg]);
                        settle(drained);
                        api_reads = drained.reads.load(Ordering::Relaxed) - before;
                        api
                    },
                    || {
                        let before = drained.reads.load(Ordering::Relaxed);
                        let raw = bench.raw_uart(uart, bytes, chunk);
                        settle(drained);
                        raw_reads = drained.reads.load(Ordering::Relaxed) - before;
                        raw
                    },
                )?;
                *written.entry(label).or_default() += api.bytes + raw.bytes;
                let case = format!("{label}-{chunk}");
                if round > 0 {
                    let wakeups = reads.entry(case.clone()).or_default();
                    wakeups[0] += api_reads;
                    wakeups[1] += raw_reads;
                    wakeups[2] += api.calls;
                }
                report(&case, "api", api);
                report(&case, "raw", raw);
            }
        }
    }
    let view = bench.sim.view();
    let sim_view = view
        .uart
        .iter()
        .find(|u| u.peripheral == SIM_UART)
        .context("the board shows no simulated UART")?;
    println!(
        "note uart-sim written={} transmitted={} dropped={} drained={}",
        written.get("uart-sim").copied().unwrap_or(0),
        sim_view.transmitted_bytes,
        sim_view.dropped_bytes,
        sim_drained.bytes.load(Ordering::Relaxed)
    );
    println!(
        "note uart-pty written={} drained={}",
        written.get("uart-pty").copied().unwrap_or(0),
        bare_drained.bytes.load(Ordering::Relaxed)
    );
    for (case, [api, raw, writes]) in reads {
        println!("note {case} api_reads={api} raw_reads={raw} writes={writes}");
    }
    Ok(())
}

/// Runs `api` and `raw`, in that order if `api_first`, else the other way round.
fn both(
    api_first: bool,
    api: impl FnOnce() -> Result<Measured>,
    raw: impl FnOnce() -> Result<Measured>,
) -> Result<(Measured, Measured)> {
    if api_first {
        let api = api()?;
        Ok((api, raw()?))
    } else {
        let raw = raw()?;
        Ok((api()?, raw))
    }
}

/// What one timed loop did.
struct Measured {
    calls: u64,
    bytes: u64,
    /// Wall time of the loop.
    elapsed: Duration,
    /// CPU time the calling thread spent on the loop (user and system): unlike the wall time,
    /// not inflated by waiting for a CPU another process holds.
    cpu: Duration,
}

/// The calling thread's CPU time so far.
fn thread_cpu() -> Result<Duration> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)?;
    Ok(Duration::from(now))
}

/// The guest, precompiled by the worker's own compiler, in a file as the supervisor hands it.
struct Artefact {
    file: tempfile::NamedTempFile,
    sha256: String,
    len: u64,
}

impl Artefact {
    fn compile(wasm: &[u8]) -> Result<Artefact> {
        let bytes = warden_worker::compile(wasm, None).context("cannot compile the guest")?;
        let mut file = tempfile::NamedTempFile::new()?;
        std::io::Write::write_all(&mut file, &bytes)?;
        Ok(Artefact {
            file,
            sha256: hex::encode(Sha256::digest(&bytes)),
            len: u64::try_from(bytes.len())?,
        })
    }
}

/// The chip peripheral behind each name the guest opens, resolved as the supervisor's broker
/// resolves it (through the board's hardware definitions and app abstractions).
struct Names(BTreeMap<String, String>);

impl Names {
    fn resolve(hwdefs: &HwdefSet) -> Result<Names> {
        let mut names = BTreeMap::new();
        for (name, kind) in [
            (LED, PeripheralType::Gpio),
            (SIM_UART, PeripheralType::Uart),
        ] {
            let resolution = hwdefs
                .resolve_name(kind, name)
                .with_context(|| format!("`{name}` does not resolve on this board"))?;
            names.insert(name.to_owned(), resolution.chip);
        }
        Ok(Names(names))
    }

    fn chip(&self, name: &str) -> Result<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("`{name}` is not one of the bench's names"))
    }
}

/// A pty pair made here: the slave is what the app (and the raw loop) writes to.
struct BarePty {
    master: OwnedFd,
    slave: Arc<OwnedFd>,
}

impl BarePty {
    fn new() -> Result<BarePty> {
        let pty = nix::pty::openpty(None, None).context("cannot open a pty")?;
        // Raw, as the board sets its UARTs: no echo, no output processing.
        let mut termios = nix::sys::termios::tcgetattr(pty.slave.as_fd())?;
        nix::sys::termios::cfmakeraw(&mut termios);
        nix::sys::termios::tcsetattr(
            pty.slave.as_fd(),
            nix::sys::termios::SetArg::TCSANOW,
            &termios,
        )?;
        Ok(BarePty {
            master: pty.master,
            slave: Arc::new(pty.slave),
        })
    }
}

struct Bench {
    app: Artefact,
    sim: SimBoard,
    names: Names,
    bare: Arc<OwnedFd>,
}

impl Bench {
    /// Runs the guest's loop (`args`) and the same without a call (`empty`), and returns the
    /// loop as the guest timed it, with the CPU time of the calling thread over the loop: the
    /// run's CPU time less the empty run's (the rest of a run — digest check, load,
    /// instantiation, the open, the print — is the same in both).
    fn api(&self, args: &[&str], empty: &[&str]) -> Result<Measured> {
        let mut measured = self.run(args)?;
        let rest = self.run(empty)?;
        measured.cpu = measured.cpu.saturating_sub(rest.cpu);
        Ok(measured)
    }

    /// Runs the guest with `args` through the worker's run path and returns what its loop
    /// measured, with the CPU time of this thread over the whole run (`Prepared::new` aside).
    fn run(&self, args: &[&str]) -> Result<Measured> {
        let (worker_end, supervisor_end) = Channel::pair()?;
        let broker = {
            let sim = self.sim.clone();
            let names = self.names.0.clone();
            let bare = Arc::clone(&self.bare);
            std::thread::Builder::new()
                .name("broker".into())
                .spawn(move || serve_broker(&supervisor_end, &sim, &names, &bare))?
        };
        let request = RunRequest {
            kind: CodeKind::Component,
            code_sha256: self.app.sha256.clone(),
            code_bytes: self.app.len,
            args: std::iter::once("device-bench")
                .chain(args.iter().copied())
                .map(str::to_owned)
                .collect(),
            env: vec![],
            memory_limit_bytes: 64 << 20,
            // Reset whenever a host call returns: the loops return to the host all the time.
            watchdog_ms: 10_000,
            storage_quota_bytes: None,
            broker: true,
            tls_roots: vec![],
        };
        let mut stdout = tempfile::tempfile()?;
        let mut stderr = tempfile::tempfile()?;
        let prepared = Prepared::new(CodeKind::Component, false)?;
        let cpu_before = thread_cpu()?;
        let (outcome, _) = prepared.run_measured(
            &request,
            self.app.file.reopen()?,
            stdout.try_clone()?,
            stderr.try_clone()?,
            None,
            Some(worker_end.into_fd()),
        )?;
        let cpu = thread_cpu()?.saturating_sub(cpu_before);
        // The run dropped the worker's end of the broker socket: the thread has returned.
        broker
            .join()
            .map_err(|_| anyhow::anyhow!("the broker thread panicked"))?;
        let out = read_back(&mut stdout)?;
        if outcome != (Outcome::Exited { code: 0 }) {
            bail!(
                "device-bench {}: {outcome:?}: {}",
                args.join(" "),
                read_back(&mut stderr)?
            );
        }
        let fields: Vec<u64> = out
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("unexpected guest output {out:?}"))?;
        let [calls, bytes, nanos] = fields[..] else {
            bail!("unexpected guest output {out:?}");
        };
        Ok(Measured {
            calls,
            bytes,
            elapsed: Duration::from_nanos(nanos),
            cpu,
        })
    }

    /// The same loop as the guest's GPIO loop, from native code on the same kind of socket:
    /// `sendmsg` of `GpioSet`, `recvmsg` of the reply, through the same `Channel` (JSON) the
    /// host API uses.
    fn raw_gpio(&self, chip: &str, calls: u64) -> Result<Measured> {
        let request = ResourceRequest::Gpio {
            name: LED.to_owned(),
            mode: GpioMode::Output {
                initial_high: false,
            },
        };
        let (_, fds) = open_retrying(&self.sim, chip, &request)
            .map_err(|e| anyhow::anyhow!("cannot open {chip}: {e}"))?;
        let fd = single(fds)?;
        let line = Channel::from_fd(fd);
        let cpu_before = thread_cpu()?;
        let started = Instant::now();
        for i in 0..calls {
            line.send(&SimRequest::GpioSet { high: i & 1 == 0 }, &[])?;
            let (reply, _) = line.recv::<SimReply>()?;
            if reply != SimReply::Done {
                bail!("the board answered {reply:?} to gpio_set");
            }
        }
        let elapsed = started.elapsed();
        let cpu = thread_cpu()?.saturating_sub(cpu_before);
        Ok(Measured {
            calls,
            bytes: 0,
            elapsed,
            cpu,
        })
    }

    /// `bytes / chunk` native `write`s of one chunk to a fresh descriptor of `uart`, each
    /// written whole as the host API does (a short write is continued).
    fn raw_uart(&self, uart: &str, bytes: u64, chunk: u64) -> Result<Measured> {
        let fd = if let Some(fd) = off_board(uart, &self.bare) {
            fd?
        } else {
            let request = ResourceRequest::Uart {
                name: uart.to_owned(),
            };
            let (_, fds) = self
                .sim
                .open(APP, self.names.chip(uart)?, &request)
                .map_err(|e| anyhow::anyhow!("cannot open {uart}: {e}"))?;
            single(fds)?
        };
        let buf = vec![0x55u8; usize::try_from(chunk)?];
        let calls = bytes / chunk;
        let cpu_before = thread_cpu()?;
        let started = Instant::now();
        for _ in 0..calls {
            let mut rest = &buf[..];
            while !rest.is_empty() {
                match rustix::io::write(&fd, rest) {
                    Ok(n) => rest = &rest[n..],
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => bail!("write to {uart}: {e}"),
                }
            }
        }
        let elapsed = started.elapsed();
        let cpu = thread_cpu()?.saturating_sub(cpu_before);
        Ok(Measured {
            calls,
            bytes: calls * chunk,
            elapsed,
            cpu,
        })
    }
}

/// The supervisor's side of the broker socket, reduced to what the bench needs: the name
/// resolved through the board's definitions, the board's open, the grant with its descriptors.
fn serve_broker(
    channel: &Channel,
    sim: &SimBoard,
    names: &BTreeMap<String, String>,
    bare: &OwnedFd,
) {
    while let Ok((request, _)) = channel.recv::<BrokerRequest>() {
        let name = request.open.peripheral().unwrap_or_default();
        let opened = if let Some(fd) = off_board(name, bare) {
            fd.map(|fd| {
                let grant = Grant {
                    peripheral: name.to_owned(),
                    access: Access::Tty { baud: 115_200 },
                };
                (grant, vec![fd])
            })
            .map_err(|e| Denial::Io(e.to_string()))
        } else {
            match names.get(name) {
                Some(chip) => open_retrying(sim, chip, &request.open).map(|(access, fds)| {
                    let grant = Grant {
                        peripheral: chip.clone(),
                        access,
                    };
                    (grant, fds)
                }),
                None => Err(Denial::NotGranted(format!("the bench grants no `{name}`"))),
            }
        };
        let (result, fds) = match opened {
            Ok((grant, fds)) => (Ok(grant), fds),
            Err(denial) => (Err(denial), vec![]),
        };
        let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
        let reply = BrokerReply {
            seq: request.seq,
            result,
        };
        if channel.send(&reply, &borrowed).is_err() {
            return;
        }
    }
}

/// A fresh descriptor of one of the bench's own UARTs (`None` for a name on the board): the
/// bare pty's slave, or `/dev/null`.
fn off_board(name: &str, bare: &OwnedFd) -> Option<std::io::Result<OwnedFd>> {
    match name {
        BARE_PTY => Some(bare.try_clone()),
        NULL_DEVICE => Some(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .map(OwnedFd::from),
        ),
        _ => None,
    }
}

/// Opens `chip` on the board. The board lets one worker hold a GPIO line at a time and
/// releases it when its serving thread sees the previous holder's socket close, a moment after
/// the previous loop ended: `busy` is retried for up to 5 s.
fn open_retrying(
    sim: &SimBoard,
    chip: &str,
    request: &ResourceRequest,
) -> Result<(Access, Vec<OwnedFd>), Denial> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match sim.open(APP, chip, request) {
            Err(Denial::Busy(_)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            result => return result,
        }
    }
}

fn single(fds: Vec<OwnedFd>) -> Result<OwnedFd> {
    let count = fds.len();
    <[OwnedFd; 1]>::try_from(fds)
        .map(|[fd]| fd)
        .map_err(|_| anyhow::anyhow!("{count} descriptors, one expected"))
}

/// What a drain thread has read so far.
#[derive(Debug, Default)]
struct Drained {
    bytes: AtomicU64,
    /// Successful reads: each one is the reader woken up (or finding data waiting).
    reads: AtomicU64,
}

/// Reads everything that arrives on `fd`, forever, on a thread.
fn drain(name: &str, fd: OwnedFd) -> Result<Arc<Drained>> {
    let count = Arc::new(Drained::default());
    let counted = Arc::clone(&count);
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match rustix::io::read(&fd, &mut buf) {
                    Ok(n) => {
                        counted.bytes.fetch_add(n as u64, Ordering::Relaxed);
                        counted.reads.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
                    // A pty master reads EIO while no slave is open: wait for one.
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })?;
    Ok(count)
}

/// Waits until the drain has stopped growing, so the next loop starts with empty buffers.
fn settle(drained: &Drained) {
    let mut last = drained.bytes.load(Ordering::Relaxed);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let now = drained.bytes.load(Ordering::Relaxed);
        if now == last {
            return;
        }
        last = now;
    }
}

fn read_back(file: &mut File) -> Result<String> {
    file.rewind()?;
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(text)
}
