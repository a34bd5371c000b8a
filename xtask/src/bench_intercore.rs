//! `cargo xtask bench intercore`: what the supervisor's inter-core bridge costs an app talking
//! to the firmware on the emulated Cortex-M4 (issue 6's benchmark row). In one run, on one
//! emulator, round by round:
//!
//! - (a) **supervisor path**: the app's end of a channel → the supervisor's `Bridge`
//!   (`runtime/wardend/src/intercore.rs`) → the emulator's UART socket → `rt-echo-c`, and back;
//! - (b) **direct**: the same firmware in the same emulator, a host process speaking frames on
//!   the UART socket itself — the peer: the emulator's cost is in both, the difference is the
//!   bridge;
//! - (c) **pty**: two host processes exchanging the same frames over a raw pty pair, one
//!   echoing — the scale of a host-only exchange.
//!
//! The measuring is `runtime/wardend/examples/intercore_bench.rs`; this module builds it and
//! the firmware, runs it, and writes the `## Inter-core` section of `docs/benchmarks.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::bench::Spread;
use anyhow::{Context, Result, bail};

use crate::{cargo, step};

const START: &str = "<!-- bench:intercore -->";
const END: &str = "<!-- /bench:intercore -->";

/// Rounds after the warm-up; each runs every path once. Many short rounds rather than a few
/// long ones: the machine is shared, and where the threads of the emulator, the bridge and the
/// app land on its CPUs changes from moment to moment; short alternating rounds expose the
/// paths to the same conditions.
const ROUNDS: usize = 61;
/// Round trips per path and round, of a 16-byte and of a 496-byte message: a 496-byte round
/// trip on the emulated line takes about 20 ms, hence fewer of them.
const TRIPS: [usize; 2] = [60, 10];
/// Messages per burst, per size.
const BURST: [usize; 2] = [150, 30];
/// Messages in flight at most during a burst.
const WINDOW: usize = 8;
/// The message sizes the example measures.
const SIZES: [usize; 2] = [16, 496];

/// Issue 6's target: the supervisor path adds at most 20 % to the round trip without it.
const TARGET_RATIO: f64 = 1.2;

const BRIDGE: &str = "bridge";
const DIRECT: &str = "direct";
const PTY: &str = "pty";

/// What the example printed, by path and message size, in round order.
#[derive(Debug, Default)]
struct Measured {
    /// Median round trip of each round, ns.
    latency: BTreeMap<(String, usize), Vec<f64>>,
    /// Messages per second of each round's burst.
    rate: BTreeMap<(String, usize), Vec<f64>>,
    /// Per path, summed over the rounds: messages, CPU ns of the measuring thread, CPU ns of
    /// the bridge's thread.
    cpu: BTreeMap<String, [u64; 3]>,
    notes: BTreeMap<String, u64>,
    /// `/proc/loadavg`'s 1-minute figure before and after the run: the machine is shared.
    load: (String, String),
}

impl Measured {
    fn values<'a>(
        map: &'a BTreeMap<(String, usize), Vec<f64>>,
        path: &str,
        size: usize,
    ) -> Result<&'a Vec<f64>> {
        map.get(&(path.to_owned(), size))
            .with_context(|| format!("intercore_bench measured no {path} path at {size} bytes"))
    }

    fn spread(
        map: &BTreeMap<(String, usize), Vec<f64>>,
        path: &str,
        size: usize,
    ) -> Result<Spread> {
        Spread::of(Self::values(map, path, size)?.clone())
    }

    /// `path`'s figure ÷ `peer`'s, round by round.
    fn ratio(
        map: &BTreeMap<(String, usize), Vec<f64>>,
        path: &str,
        peer: &str,
        size: usize,
    ) -> Result<Spread> {
        let ours = Self::values(map, path, size)?;
        let theirs = Self::values(map, peer, size)?;
        Spread::of(ours.iter().zip(theirs).map(|(a, b)| a / b).collect())
    }

    fn note(&self, key: &str) -> u64 {
        self.notes.get(key).copied().unwrap_or(0)
    }
}

/// The inter-core benchmark.
pub(crate) fn run(root: &Path) -> Result<()> {
    let (firmware, _) = crate::firmware::build_firmware(root)?;
    step(
        "build the inter-core benchmark (release)",
        cargo(root).args([
            "build",
            "--release",
            "--locked",
            "-p",
            "wardend",
            "--example",
            "intercore_bench",
        ]),
    )?;
    let example = crate::target_dir(root).join("release/examples/intercore_bench");
    println!(
        "\n==> measure: {ROUNDS} rounds (after a warm-up) of {} + {} round trips and bursts of \
         {} + {} messages (16 and 496 bytes) on each path",
        TRIPS[0], TRIPS[1], BURST[0], BURST[1]
    );
    let load_before = crate::bench::load_average();
    let out = Command::new(&example)
        .arg(&firmware)
        .args(["--rounds", &ROUNDS.to_string()])
        .args(["--trips", &format!("{},{}", TRIPS[0], TRIPS[1])])
        .args(["--burst", &format!("{},{}", BURST[0], BURST[1])])
        .args(["--window", &WINDOW.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not run {}", example.display()))?;
    if !out.status.success() {
        bail!(
            "intercore_bench failed ({}); it starts QEMU in new namespaces, as the supervisor \
             does, which needs root",
            out.status
        );
    }
    let mut measured = parse(&String::from_utf8_lossy(&out.stdout))?;
    measured.load = (load_before, crate::bench::load_average());
    let section = render(&measured)?;
    println!("\n{section}");
    crate::bench::write_section(root, START, END, &section)
}

/// Reads the example's `latency`, `burst`, `cpu` and `note` lines.
fn parse(text: &str) -> Result<Measured> {
    let mut m = Measured::default();
    let unexpected = |line: &str| format!("unexpected intercore_bench output `{line}`");
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["latency", path, size, nanos] => {
                let nanos: f64 = nanos.parse().with_context(|| unexpected(line))?;
                m.latency
                    .entry(((*path).to_owned(), size.parse()?))
                    .or_default()
                    .push(nanos);
            }
            ["burst", path, size, messages, nanos] => {
                let messages: f64 = messages.parse().with_context(|| unexpected(line))?;
                let nanos: f64 = nanos.parse().with_context(|| unexpected(line))?;
                if nanos <= 0.0 {
                    bail!("{}", unexpected(line));
                }
                m.rate
                    .entry(((*path).to_owned(), size.parse()?))
                    .or_default()
                    .push(messages * 1e9 / nanos);
            }
            ["cpu", path, messages, client, bridge] => {
                let sums = m.cpu.entry((*path).to_owned()).or_default();
                for (sum, value) in sums.iter_mut().zip([messages, client, bridge]) {
                    *sum += value.parse::<u64>().with_context(|| unexpected(line))?;
                }
            }
            ["note", pairs @ ..] => {
                for pair in pairs {
                    let (key, value) = pair.split_once('=').with_context(|| unexpected(line))?;
                    m.notes.insert(key.to_owned(), value.parse()?);
                }
            }
            _ => bail!("{}", unexpected(line)),
        }
    }
    Ok(m)
}

/// A time in ns, with its range, in a unit that suits it.
fn time(s: Spread) -> String {
    if s.median >= 1e6 {
        format!(
            "{:.2} ms ({:.2}–{:.2})",
            s.median / 1e6,
            s.min / 1e6,
            s.max / 1e6
        )
    } else if s.median >= 1e5 {
        format!(
            "{:.0} µs ({:.0}–{:.0})",
            s.median / 1e3,
            s.min / 1e3,
            s.max / 1e3
        )
    } else {
        format!(
            "{:.1} µs ({:.1}–{:.1})",
            s.median / 1e3,
            s.min / 1e3,
            s.max / 1e3
        )
    }
}

/// A rate with its range, scaled by `factor`: whole numbers, but a decimal below 100.
fn rate(s: Spread, factor: f64) -> String {
    let (median, min, max) = (s.median * factor, s.min * factor, s.max * factor);
    if median >= 100.0 {
        format!("{median:.0} ({min:.0}–{max:.0})")
    } else {
        format!("{median:.1} ({min:.1}–{max:.1})")
    }
}

fn times(s: Spread) -> String {
    format!("{:.2}× ({:.2}–{:.2})", s.median, s.min, s.max)
}

/// CPU µs per message of a path: the measuring thread's, and the bridge thread's.
fn cpu_per_message(m: &Measured, path: &str) -> (f64, f64) {
    let [messages, client, bridge] = m.cpu.get(path).copied().unwrap_or_default();
    let messages = messages.max(1) as f64;
    (
        client as f64 / messages / 1e3,
        bridge as f64 / messages / 1e3,
    )
}

fn render(m: &Measured) -> Result<String> {
    let (model, cores, _) = crate::bench::cpu();
    let date = crate::bench::first_line("date", &["-u", "+%Y-%m-%d"]);
    let kernel = crate::bench::first_line("uname", &["-r"]);
    let qemu = crate::bench::first_line("qemu-system-arm", &["--version"]);
    let [small, large] = SIZES;
    let mut s = String::new();
    writeln!(s, "{START}")?;
    writeln!(s, "## Inter-core: app ↔ M4 through the emulated core\n")?;
    writeln!(
        s,
        "Measured by `cargo xtask bench intercore` on {date}: {model} ({cores} logical CPUs, \
         shared with other work: 1-minute load average {} before the run, {} after, the \
         emulator's own spinning adding about 1, see below), kernel \
         {kernel}, {qemu}, release build (`runtime/wardend/examples/intercore_bench.rs`). The \
         firmware is `sample-apps/rt-echo-c` on `qemu-system-arm -M mps2-an386`, started by the \
         supervisor's own `EmulatedCore` (through `warden_sandbox::spawn`, UART0 on one end of \
         a socket pair: `-chardev socket,id=serial,fd=3`), one emulator for the whole run. \
         {ROUNDS} rounds after one warm-up round; each measures the three paths one after the \
         other, in an order reversed from round to round. A round trip is one message sent and \
         its echo received; each round takes the median of its {} ({small} bytes) or {} \
         ({large} bytes) round trips. Medians over the rounds, with the min–max of the \
         per-round figures in brackets; ratios are taken round by round (both sides of a round \
         saw the same machine), then their median.\n",
        m.load.0, m.load.1, TRIPS[0], TRIPS[1],
    )?;
    writeln!(
        s,
        "| Round trip, one message at a time | {small}-byte message | {large}-byte message |"
    )?;
    writeln!(s, "|---|---:|---:|")?;
    let paths = [
        (
            BRIDGE,
            "(a) supervisor path: app's channel end → `Bridge` → emulator's UART → firmware, \
             and back",
        ),
        (
            DIRECT,
            "(b) direct: the same firmware and emulator, the host process speaks frames on the \
             UART socket itself",
        ),
    ];
    for (path, label) in paths {
        writeln!(
            s,
            "| {label} | {} | {} |",
            time(Measured::spread(&m.latency, path, small)?),
            time(Measured::spread(&m.latency, path, large)?)
        )?;
    }
    let latency_ratio = [
        Measured::ratio(&m.latency, BRIDGE, DIRECT, small)?,
        Measured::ratio(&m.latency, BRIDGE, DIRECT, large)?,
    ];
    writeln!(
        s,
        "| (a) ÷ (b), round by round | {} | {} |",
        times(latency_ratio[0]),
        times(latency_ratio[1])
    )?;
    writeln!(
        s,
        "| (c) pty: two host processes, the same frames over a raw pty pair, one echoing | {} | \
         {} |",
        time(Measured::spread(&m.latency, PTY, small)?),
        time(Measured::spread(&m.latency, PTY, large)?)
    )?;
    writeln!(s)?;
    writeln!(
        s,
        "| Burst echo, at most {WINDOW} messages in flight ({} / {} messages per burst) | \
         {small} bytes: messages/s | {large} bytes: messages/s | {large} bytes: KiB/s of \
         payload each way |",
        BURST[0], BURST[1]
    )?;
    writeln!(s, "|---|---:|---:|---:|")?;
    for (path, label) in [
        (BRIDGE, "(a) supervisor path"),
        (DIRECT, "(b) direct"),
        (PTY, "(c) pty"),
    ] {
        let large_rate = Measured::spread(&m.rate, path, large)?;
        writeln!(
            s,
            "| {label} | {} | {} | {} |",
            rate(Measured::spread(&m.rate, path, small)?, 1.0),
            rate(large_rate, 1.0),
            rate(large_rate, large as f64 / 1024.0)
        )?;
    }
    let rate_ratio = [
        Measured::ratio(&m.rate, BRIDGE, DIRECT, small)?,
        Measured::ratio(&m.rate, BRIDGE, DIRECT, large)?,
    ];
    writeln!(
        s,
        "| (a) ÷ (b) throughput, round by round | {} | {} | |",
        times(rate_ratio[0]),
        times(rate_ratio[1])
    )?;
    writeln!(s)?;
    writeln!(
        s,
        "- *(a) supervisor path*: each round starts a `Bridge` (the supervisor's code, \
         `runtime/wardend/src/intercore.rs`) on the emulator's serial stream and opens a \
         channel on it; the measuring thread, on the app's end of the channel, does what the \
         worker's `intercore` host functions do (`host-api/src/intercore.rs`): `poll` for \
         room, one `write` per message; `poll` for a message, one `read`. The bridge turns the \
         packet into a frame on the line, decodes the firmware's answer and sends its payload \
         to the channel. The app's side is a thread of the benchmark's process here, not a \
         confined worker, and the guest's own call into the worker (component-model entry and \
         exit, the list copied) is not in it: the Host API section above measures what such a \
         call adds to the syscalls it wraps."
    )?;
    writeln!(
        s,
        "- *(b) direct*: the same process writes each frame on the same serial stream and reads \
         and decodes (`warden_ipc::intercore::Decoder`) until the answer is whole — what an app \
         would do if it owned the UART. *(c) pty*: the same frames and decoder, on the master \
         of a raw pty pair whose slave is the stdin and stdout of a second process (the same \
         example, `pty-echo`) that decodes each frame and writes the answer back as the \
         firmware does. Every answer is checked against what was sent."
    )?;
    let per_byte = {
        let d = |size| Measured::spread(&m.latency, DIRECT, size).map(|s| s.median);
        (d(large)? - d(small)?) / (2.0 * (large - small) as f64) / 1e3
    };
    writeln!(
        s,
        "- The emulator sets the scale: QEMU's CMSDK UART model takes one byte from the socket \
         per turn of its main loop and writes every byte the firmware sends in a `write()` of \
         its own, so each byte more on the line costs about {per_byte:.1} µs each way (from \
         (b): ({large} − {small}) bytes more in each direction). The firmware polls its UART \
         (no interrupts), so the emulated CPU runs flat out on one of the {cores} host CPUs \
         for the whole run (and adds about 1 to the load average) — in the pty rounds too, which therefore have one CPU left, like \
         the others."
    )?;
    let (a_client, a_bridge) = cpu_per_message(m, BRIDGE);
    let (b_client, _) = cpu_per_message(m, DIRECT);
    let (c_client, _) = cpu_per_message(m, PTY);
    writeln!(
        s,
        "- Host CPU per message, averaged over every message of the run (both sizes, round \
         trips and bursts; `/proc/thread-self/schedstat`): (a) {a_client:.1} µs on the app's \
         side and {a_bridge:.1} µs in the bridge's thread; (b) {b_client:.1} µs; (c) \
         {c_client:.1} µs, the echoing process not counted. The emulator writes a byte at a \
         time, so whoever reads the line — the bridge in (a), the measuring thread in (b) — \
         wakes for about every byte of an answer."
    )?;
    writeln!(
        s,
        "- Nothing lost: over the run the bridges sent {} messages to the firmware and \
         delivered {} to the channel, dropping {} (messages or bytes); the direct decoder read \
         {} frames and dropped {} bytes; the pty's {} frames and {} bytes.",
        m.note("bridge_to_firmware"),
        m.note("bridge_to_apps"),
        m.note("bridge_dropped"),
        m.note("direct_frames"),
        m.note("direct_dropped"),
        m.note("pty_frames"),
        m.note("pty_dropped"),
    )?;
    let added = |size| -> Result<String> {
        let a = Measured::spread(&m.latency, BRIDGE, size)?.median;
        let b = Measured::spread(&m.latency, DIRECT, size)?.median;
        let amount = |us: f64| {
            if us >= 1000.0 {
                format!("{:.2} ms", us / 1000.0)
            } else {
                format!("{us:.0} µs")
            }
        };
        let difference = (a - b) / 1e3;
        Ok(if difference >= 0.0 {
            format!("{} above", amount(difference))
        } else {
            format!("{} below", amount(-difference))
        })
    };
    let pty_small = Measured::spread(&m.latency, PTY, small)?.median / 1e3;
    let all_met = latency_ratio.iter().all(|r| r.median <= TARGET_RATIO);
    writeln!(
        s,
        "- Target: the supervisor path adds ≤ {:.0} % to the round trip of the same exchange \
         without it — the emulator's cost is the peer's too, so the peer is (b), not the bare \
         pty — read as (a) ÷ (b) ≤ {TARGET_RATIO:.2} per round: {small} bytes {:.2}× ({}), \
         {large} bytes {:.2}× ({}) — overall {}. In time, (a)'s median is {} (b)'s at {small} \
         bytes and {} at {large} bytes; a whole round trip over the pty (c) takes \
         {pty_small:.1} µs.",
        (TARGET_RATIO - 1.0) * 100.0,
        latency_ratio[0].median,
        crate::bench::met(latency_ratio[0].median <= TARGET_RATIO),
        latency_ratio[1].median,
        crate::bench::met(latency_ratio[1].median <= TARGET_RATIO),
        crate::bench::met(all_met),
        added(small)?,
        added(large)?,
    )?;
    writeln!(
        s,
        "  The per-round figures of every path vary widely (the ranges above): the wake-ups of a \
         line that delivers a byte at a time fall differently, from moment to moment, on {cores} \
         CPUs one of which the emulator holds.{}",
        if latency_ratio.iter().any(|r| r.median < 1.0) {
            format!(
                " The bridge does strictly more than (b) — the same reads of the line, then one \
                 more hop, through another thread — so a ratio below 1 is not a saving: it comes \
                 from where each path's threads run beside the emulator's, which the benchmark \
                 leaves to the scheduler{}.",
                if latency_ratio.iter().all(|r| r.min <= 1.0 && r.max >= 1.0) {
                    ", and 1 is within each ratio's round-to-round range"
                } else {
                    ""
                }
            )
        } else {
            String::new()
        }
    )?;
    write!(s, "{END}")?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_are_read_and_compared() {
        let m = parse(
            "latency bridge 16 1200\nlatency direct 16 1000\nlatency bridge 16 3000\n\
             latency direct 16 2000\nburst bridge 16 500 1000000000\n\
             cpu bridge 10 2000 3000\ncpu bridge 10 2000 3000\nnote bridge_dropped=0\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ratio =
            Measured::ratio(&m.latency, BRIDGE, DIRECT, 16).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((ratio.min, ratio.max), (1.2, 1.5));
        let rate = Measured::spread(&m.rate, BRIDGE, 16).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rate.median, 500.0);
        assert_eq!(cpu_per_message(&m, BRIDGE), (0.2, 0.3));
        assert!(parse("latency bridge 16\n").is_err());
        assert!(parse("burst bridge 16 5 0\n").is_err());
    }
}
