//! `cargo xtask bench devices`: the host API's cost beside the raw syscalls it wraps, in one
//! run, side by side on the same kind of descriptor (issue 4's acceptance) —
//!
//! - a GPIO write: `output-pin.set` from a component on `SAMPLE_LED` (`SIM_GPIO0` of the
//!   simulated board) against native `sendmsg` + `recvmsg` of the same `GpioSet` request on
//!   the same kind of socket;
//! - UART throughput: `port.write` from a component against native `write()` of the same
//!   chunks, on the simulated console UART (`SIM_ISU0_UART`) and on a bare pty pair.
//!
//! The measuring is `runtime/worker/examples/device_bench.rs` with its guest
//! `sample-apps/device-bench`; this module builds them, runs them, and writes the
//! `## Host API` section of `docs/benchmarks.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::{cargo, step};

const START: &str = "<!-- bench:devices -->";
const END: &str = "<!-- /bench:devices -->";

/// Rounds after the warm-up; each runs every case once through the API and once raw.
/// Many short rounds rather than a few long ones: the build machine is shared, and other work
/// comes and goes; alternating short loops exposes both sides to the same disturbances.
const ROUNDS: usize = 41;
/// `output-pin.set` calls per GPIO loop.
const GPIO_CALLS: u64 = 4000;
/// MiB per UART loop of 4096-byte writes (the 64-byte loops write an eighth of it).
const UART_MIB: u64 = 8;

/// Issue 4's targets.
const TARGET_CALL_RATIO: f64 = 1.1;
const TARGET_THROUGHPUT_SHARE: f64 = 0.9;

/// One case's loops, in round order.
#[derive(Debug, Default)]
struct Case {
    api: Vec<Loop>,
    raw: Vec<Loop>,
}

#[derive(Debug, Clone, Copy)]
struct Loop {
    calls: u64,
    bytes: u64,
    /// Wall time of the loop.
    nanos: u64,
    /// CPU time the calling thread spent on it.
    cpu_nanos: u64,
}

impl Loop {
    fn ns_per_call(&self) -> f64 {
        self.nanos as f64 / self.calls.max(1) as f64
    }

    fn cpu_ns_per_call(&self) -> f64 {
        self.cpu_nanos as f64 / self.calls.max(1) as f64
    }

    fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / f64::from(1u32 << 20) / (self.nanos.max(1) as f64 / 1e9)
    }
}

/// Median and 10th–90th percentile range of one quantity over the rounds.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    p10: f64,
    p90: f64,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Result<Spread> {
        if values.is_empty() {
            bail!("no samples");
        }
        values.sort_by(f64::total_cmp);
        let at = |q: usize| values[(values.len() - 1) * q / 100];
        Ok(Spread {
            median: at(50),
            p10: at(10),
            p90: at(90),
        })
    }
}

/// One quantity on both sides, and the ratio API ÷ raw taken round by round.
#[derive(Debug, Clone, Copy)]
struct Compared {
    api: Spread,
    raw: Spread,
    ratio: Spread,
}

impl Compared {
    fn of(case: &Case, value: fn(&Loop) -> f64) -> Result<Compared> {
        let ratios = case
            .api
            .iter()
            .zip(&case.raw)
            .map(|(a, r)| value(a) / value(r))
            .collect();
        Ok(Compared {
            api: Spread::of(case.api.iter().map(value).collect())?,
            raw: Spread::of(case.raw.iter().map(value).collect())?,
            ratio: Spread::of(ratios)?,
        })
    }
}

/// What the run measured, summarised.
#[derive(Debug)]
struct Measured {
    cases: BTreeMap<String, Case>,
    notes: BTreeMap<String, BTreeMap<String, u64>>,
    guest_bytes: u64,
    /// `/proc/loadavg`'s 1-minute figure before and after the run: the machine is shared.
    load: (String, String),
}

impl Measured {
    fn case(&self, name: &str) -> Result<&Case> {
        self.cases
            .get(name)
            .with_context(|| format!("device_bench measured no `{name}`"))
    }

    fn note(&self, uart: &str, key: &str) -> u64 {
        self.notes
            .get(uart)
            .and_then(|n| n.get(key))
            .copied()
            .unwrap_or(0)
    }
}

/// The host-API benchmark.
pub(crate) fn run(root: &Path) -> Result<()> {
    crate::setup::ensure_rust_targets(root)?;
    step(
        "build the device-bench guest (Rust -> wasm32-wasip2 component)",
        cargo(root).args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
            "sample-apps/device-bench/Cargo.toml",
            "--target-dir",
            "target/guests",
        ]),
    )?;
    step(
        "build the device benchmark (release)",
        cargo(root).args([
            "build",
            "--release",
            "--locked",
            "-p",
            "warden-worker",
            "--example",
            "device_bench",
        ]),
    )?;
    let guest = root.join("target/guests/wasm32-wasip2/release/device-bench.wasm");
    let board = root.join("buildroot-overlay/board/warden-sim/board.json");
    let example = crate::target_dir(root).join("release/examples/device_bench");
    println!(
        "\n==> measure: {ROUNDS} rounds (after a warm-up) of {GPIO_CALLS} GPIO sets and \
         {UART_MIB} MiB of UART writes per loop, API and raw alternating"
    );
    let load_before = crate::bench::load_average();
    let out = Command::new(&example)
        .arg(&guest)
        .arg(&board)
        .args(["--rounds", &ROUNDS.to_string()])
        .args(["--gpio-calls", &GPIO_CALLS.to_string()])
        .args(["--uart-mib", &UART_MIB.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not run {}", example.display()))?;
    if !out.status.success() {
        bail!("device_bench failed ({})", out.status);
    }
    let mut measured = parse(&String::from_utf8_lossy(&out.stdout))?;
    measured.load = (load_before, crate::bench::load_average());
    measured.guest_bytes = std::fs::metadata(&guest)
        .with_context(|| format!("cannot stat {}", guest.display()))?
        .len();
    let section = render(&measured)?;
    println!("\n{section}");
    crate::bench::write_section(root, START, END, &section)
}

/// Reads `sample CASE api|raw CALLS BYTES WALL_NS CPU_NS` and `note UART key=value ...` lines.
fn parse(text: &str) -> Result<Measured> {
    let mut measured = Measured {
        cases: BTreeMap::new(),
        notes: BTreeMap::new(),
        guest_bytes: 0,
        load: (String::new(), String::new()),
    };
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["sample", case, side, calls, bytes, nanos, cpu_nanos] => {
                let sample = Loop {
                    calls: calls.parse()?,
                    bytes: bytes.parse()?,
                    nanos: nanos.parse()?,
                    cpu_nanos: cpu_nanos.parse()?,
                };
                let case = measured.cases.entry((*case).to_owned()).or_default();
                match *side {
                    "api" => case.api.push(sample),
                    "raw" => case.raw.push(sample),
                    _ => bail!("unexpected device_bench output `{line}`"),
                }
            }
            ["note", uart, pairs @ ..] => {
                let note = measured.notes.entry((*uart).to_owned()).or_default();
                for pair in pairs {
                    let (key, value) = pair
                        .split_once('=')
                        .with_context(|| format!("unexpected device_bench output `{line}`"))?;
                    note.insert(key.to_owned(), value.parse()?);
                }
            }
            _ => bail!("unexpected device_bench output `{line}`"),
        }
    }
    Ok(measured)
}

fn us(s: Spread) -> String {
    format!(
        "{:.2} µs ({:.2}–{:.2})",
        s.median / 1e3,
        s.p10 / 1e3,
        s.p90 / 1e3
    )
}

fn mibs(s: Spread) -> String {
    format!("{:.0} MiB/s ({:.0}–{:.0})", s.median, s.p10, s.p90)
}

fn times(s: Spread) -> String {
    format!("{:.2}× ({:.2}–{:.2})", s.median, s.p10, s.p90)
}

fn percent(s: Spread) -> String {
    format!(
        "{:.0} % ({:.0}–{:.0})",
        s.median * 100.0,
        s.p10 * 100.0,
        s.p90 * 100.0
    )
}

/// The UART cases, in table order.
const UART_CASES: [(&str, &str); 5] = [
    (
        "uart-sim-4096",
        "`SIM_ISU0_UART` (simulated board), 4096-byte writes",
    ),
    (
        "uart-sim-64",
        "`SIM_ISU0_UART` (simulated board), 64-byte writes",
    ),
    ("uart-pty-4096", "bare pty pair, 4096-byte writes"),
    ("uart-pty-64", "bare pty pair, 64-byte writes"),
    (
        "uart-null-64",
        "`/dev/null` granted as the UART (no device, no reader), 64-byte writes",
    ),
];

fn render(m: &Measured) -> Result<String> {
    let (model, cores, _) = crate::bench::cpu();
    let date = crate::bench::first_line("date", &["-u", "+%Y-%m-%d"]);
    let kernel = crate::bench::first_line("uname", &["-r"]);
    let gpio_case = m.case("gpio")?;
    let gpio = Compared::of(gpio_case, Loop::ns_per_call)?;
    let gpio_cpu = Compared::of(gpio_case, Loop::cpu_ns_per_call)?;
    let mut s = String::new();
    writeln!(s, "{START}")?;
    writeln!(s, "## Host API: device calls against the raw syscalls\n")?;
    writeln!(
        s,
        "Measured by `cargo xtask bench devices` on {date}: {model} ({cores} logical CPUs, \
         shared with other work: 1-minute load average {} before the run, {} after), kernel \
         {kernel}, release build, in one process, without the sandbox \
         (`runtime/worker/examples/device_bench.rs`). The app is `sample-apps/device-bench` (a \
         Rust wasm32-wasip2 component, {} KiB), precompiled by the worker's compiler and run \
         through the worker's own run path (`Prepared::run_measured`) on a `SimBoard` built \
         from `buildroot-overlay/board/warden-sim/board.json`. {ROUNDS} rounds after one \
         warm-up round; each runs every case through the API and raw, in alternating order \
         from round to round. Medians, with the 10th–90th percentile range over the rounds in \
         brackets; ratios are taken round by round (the two sides of a round saw the same \
         machine), then their median.\n",
        m.load.0,
        m.load.1,
        m.guest_bytes / 1024
    )?;
    writeln!(
        s,
        "| GPIO write, {GPIO_CALLS} calls per loop | through the host API | raw syscalls, native | API ÷ raw |"
    )?;
    writeln!(s, "|---|---:|---:|---:|")?;
    writeln!(
        s,
        "| `output-pin.set` on `SAMPLE_LED` (`SIM_GPIO0`): time per call | {} | {} | {} |",
        us(gpio.api),
        us(gpio.raw),
        times(gpio.ratio)
    )?;
    writeln!(
        s,
        "| the same: CPU time of the calling thread per call | {} | {} | {} |",
        us(gpio_cpu.api),
        us(gpio_cpu.raw),
        times(gpio_cpu.ratio)
    )?;
    writeln!(s)?;
    writeln!(
        s,
        "| UART `port.write`: {UART_MIB} MiB per loop ({} KiB for 64-byte writes to a pty) | through the host API | raw `write()`, native | API ÷ raw throughput | time per write: API ÷ raw | CPU per write: API / raw |",
        (UART_MIB << 10) / 8
    )?;
    writeln!(s, "|---|---:|---:|---:|---:|---:|")?;
    let mut per_write = BTreeMap::new();
    let mut sim_share = None;
    let mut null_cpu = None;
    for (name, label) in UART_CASES {
        let case = m.case(name)?;
        let throughput = Compared::of(case, Loop::mib_per_s)?;
        let time = Compared::of(case, Loop::ns_per_call)?;
        let cpu = Compared::of(case, Loop::cpu_ns_per_call)?;
        writeln!(
            s,
            "| {label} | {} | {} | {} | {} | {:.2} / {:.2} µs |",
            mibs(throughput.api),
            mibs(throughput.raw),
            percent(throughput.ratio),
            times(time.ratio),
            cpu.api.median / 1e3,
            cpu.raw.median / 1e3,
        )?;
        per_write.insert(name, (time, cpu));
        match name {
            "uart-sim-4096" => sim_share = Some(throughput.ratio),
            "uart-null-64" => null_cpu = Some(cpu),
            _ => {}
        }
    }
    writeln!(s)?;
    writeln!(
        s,
        "- *Through the host API*: the component opens the peripheral — the worker's own \
         `BrokerClient` asks, on a socket pair, a broker thread that resolves the name through \
         the board's hardware definitions as the supervisor does (`SAMPLE_LED` → `LED_RED` → \
         `SIM_GPIO0`) and hands over what `SimBoard::open` returns — then times its loop with \
         `wasi:clocks/monotonic-clock` (Rust's `Instant`) and prints the time: the open, \
         instantiation and the print are outside it. A call includes the component-model call \
         into the host and back (arguments lowered; `port.write` writes the bytes from linear \
         memory where the app keeps them, without a copy), the resource lookup, the watchdog's call hooks, and \
         the backend: for GPIO `SimLink::call` (request checked, JSON-encoded, `sendmsg`, \
         `ppoll` for the reply with the board's deadline, `recvmsg`, decoded); for the UART \
         `write()` on the tty, continued until the whole chunk is written."
    )?;
    writeln!(
        s,
        "- *Raw*: the same loop in native Rust on a fresh descriptor of the same resource, timed \
         with `Instant`: for GPIO `warden_ipc::Channel` `send(GpioSet)` + \
         `recv::<SimReply>()` on the simulated line's socket (the same JSON framing, so the \
         board's side is the same work and the difference is the API's own cost); for the UART \
         `write()` of the same chunk, continued after a short write."
    )?;
    writeln!(
        s,
        "- *CPU time*: `CLOCK_THREAD_CPUTIME_ID` of the calling thread, so it leaves out the \
         time spent waiting for the board's thread, the reader or a CPU that other work holds. \
         Raw: over the loop. API: over the whole run, less that of the same run with a loop of \
         no calls (digest check, load, instantiation, the open and the print cancel out)."
    )?;
    writeln!(
        s,
        "- A GPIO call is a round trip to the simulated board's serving thread, which wakes, \
         decodes the request (`warden_ipc::sim`, JSON over `SOCK_SEQPACKET`), drives the line \
         and answers: on both sides that wake-up and reply are most of a call's time, and on \
         these 2 shared virtual cores they vary with where the two threads run, hence the wide \
         ranges."
    )?;
    writeln!(
        s,
        "- The simulated UART is the board's app-side pty; the board's bridge thread copies what \
         is written to the exposed pty, which a thread here drains all the time, as a terminal \
         would; the bare pty's master is drained the same way (the bare pty and `/dev/null` \
         are the bench's own, which its broker grants as ttys under names the board does not \
         have). Timing stops when the last `write()` returns: up to a pty buffer (a few KiB) \
         may still be on its way. At 4096 bytes a write mostly waits for the reader to make \
         room, so how writer and reader interleave decides the time more than the call does, \
         which can favour either side. Over the run, {} MiB were written to the simulated UART; its bridge took {} MiB and dropped {} \
         bytes (it drops what the exposed side has no room for, as a UART with a slow listener \
         loses bytes) and {} MiB reached the terminal; the bare pty delivered {} of {} MiB.",
        m.note("uart-sim", "written") >> 20,
        m.note("uart-sim", "transmitted") >> 20,
        m.note("uart-sim", "dropped"),
        m.note("uart-sim", "drained") >> 20,
        m.note("uart-pty", "drained") >> 20,
        m.note("uart-pty", "written") >> 20,
    )?;
    writeln!(
        s,
        "- No sandbox: these are the worker's code paths in a plain process. A confined worker \
         runs the same code under its seccomp filter, which every syscall of a host call also \
         passes through, while the raw side here has none; the confined cost is not measured \
         here."
    )?;
    let small = |name: &str| {
        per_write
            .get(name)
            .map(|(time, cpu)| (time.ratio, cpu.ratio))
    };
    let mut calls = vec![("GPIO `output-pin.set`", gpio.ratio, gpio_cpu.ratio)];
    for (name, what) in [
        ("uart-sim-64", "64-byte `port.write` on the simulated UART"),
        ("uart-pty-64", "64-byte `port.write` on a bare pty"),
    ] {
        if let Some((time, cpu)) = small(name) {
            calls.push((what, time, cpu));
        }
    }
    let all_met = calls
        .iter()
        .all(|(_, time, _)| time.median <= TARGET_CALL_RATIO);
    writeln!(
        s,
        "- Target: a host call costs ≤ {TARGET_CALL_RATIO}× the raw syscall it wraps (time per \
         call): {} — overall {}.",
        calls
            .iter()
            .map(|(what, time, cpu)| format!(
                "{what} {:.2}× ({}; CPU {:.2}×)",
                time.median,
                crate::bench::met(time.median <= TARGET_CALL_RATIO),
                cpu.median
            ))
            .collect::<Vec<_>>()
            .join("; "),
        crate::bench::met(all_met)
    )?;
    if let Some(null) = null_cpu {
        // Reader wake-ups per 1000 writes, through the API and raw.
        let wakeups = |case: &str| {
            let writes = m.note(case, "writes").max(1) as f64;
            (
                m.note(case, "api_reads") as f64 * 1000.0 / writes,
                m.note(case, "raw_reads") as f64 * 1000.0 / writes,
            )
        };
        let (pty_api, pty_raw) = wakeups("uart-pty-64");
        let (sim_api, sim_raw) = wakeups("uart-sim-64");
        writeln!(
            s,
            "  What a host call adds to the syscall it wraps — the component-model entry and \
             exit (the list lifted in place, no copy since this session: 0.20 µs before), the \
             resource lookup, the watchdog's call hooks — shows alone on `/dev/null`: {:.2} µs of CPU per 64-byte `port.write` \
             against {:.2} µs for the bare `write()`, about {:.2} µs per call. Against a GPIO \
             round trip to the board (tens of µs) that is within the spread; against a 64-byte \
             pty `write()` of about a microsecond it is not, and the slower writer lets the \
             reader catch up between writes, so the pty wakes it more often, which costs the \
             writer kernel time: per 1000 64-byte writes the reader woke {pty_api:.0} times \
             through the API against {pty_raw:.0} raw on the bare pty, and the terminal behind \
             the simulated UART {sim_api:.0} against {sim_raw:.0}.",
            null.api.median / 1e3,
            null.raw.median / 1e3,
            (null.api.median - null.raw.median) / 1e3
        )?;
    }
    if let Some(share) = sim_share {
        writeln!(
            s,
            "- Target: UART throughput through the API ≥ {:.0} % of raw writes to the same pty \
             (4096-byte writes, `SIM_ISU0_UART`): {:.0} % ({}).",
            TARGET_THROUGHPUT_SHARE * 100.0,
            share.median * 100.0,
            crate::bench::met(share.median >= TARGET_THROUGHPUT_SHARE)
        )?;
    }
    writeln!(
        s,
        "- Target: a brokered TCP connection moves data as fast as a directly opened one: \
         measured by `cargo xtask bench network` (its own section below)."
    )?;
    write!(s, "{END}")?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_and_notes_are_read() {
        let m = parse(
            "sample gpio api 10 0 1000 800\nsample gpio raw 10 0 500 400\n\
             note uart-sim written=8 dropped=0\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let gpio = m.case("gpio").unwrap_or_else(|e| panic!("{e}"));
        let time = Compared::of(gpio, Loop::ns_per_call).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (time.api.median, time.raw.median, time.ratio.median),
            (100.0, 50.0, 2.0)
        );
        let cpu = Compared::of(gpio, Loop::cpu_ns_per_call).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cpu.ratio.median, 2.0);
        assert_eq!(m.note("uart-sim", "written"), 8);
        assert!(parse("sample gpio sideways 1 0 1 1\n").is_err());
        assert!(parse("sample gpio api 1 0 1\n").is_err());
    }
}
