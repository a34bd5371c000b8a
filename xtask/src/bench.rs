//! `cargo xtask bench`: package verification timed in process and as a process, beside
//! `sha256sum` and `openssl dgst -verify` on the same payload bytes, written to the
//! `## Package verification` section of `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Runs per external command; the median is reported.
const PROCESS_RUNS: usize = 31;

const START: &str = "<!-- bench:package-verify -->";
const END: &str = "<!-- /bench:package-verify -->";

/// Issue 2's targets.
const TARGET_SMALL_SIZE: u64 = 64 << 10;
const TARGET_SMALL: Duration = Duration::from_millis(1);
const TARGET_RATIO: f64 = 1.2;

struct Row {
    size: u64,
    in_process: Duration,
    iterations: u64,
    warden: Duration,
    sha256sum: Duration,
    openssl: Duration,
}

/// The package-verification benchmark.
pub(crate) fn run(repo_root: &Path) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let build = |args: &[&str]| -> Result<()> {
        let status = Command::new(&cargo)
            .current_dir(repo_root)
            .args(args)
            .status()
            .with_context(|| format!("could not run cargo {}", args.join(" ")))?;
        if !status.success() {
            bail!("cargo {} failed ({status})", args.join(" "));
        }
        Ok(())
    };
    build(&[
        "build",
        "--release",
        "-p",
        "warden-policy",
        "--example",
        "verify_bench",
    ])?;
    build(&["build", "--release", "-p", "warden-cli", "--bin", "warden"])?;

    let target = crate::target_dir(repo_root);
    let release = target.join("release");
    let work = target.join("bench").join("package-verify");
    if work.exists() {
        std::fs::remove_dir_all(&work)
            .with_context(|| format!("cannot clear {}", work.display()))?;
    }
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;

    println!("==> in-process verification (policy/examples/verify_bench.rs)");
    let example = release.join("examples").join("verify_bench");
    let out = Command::new(&example)
        .arg(&work)
        .output()
        .with_context(|| format!("could not run {}", example.display()))?;
    if !out.status.success() {
        bail!(
            "verify_bench failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let warden = release.join("warden");
    let mut rows = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<u64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("unexpected verify_bench output `{line}`"))?;
        let [size, median_ns, iterations] = fields[..] else {
            bail!("unexpected verify_bench output `{line}`");
        };
        let payload = work.join(format!("payload-{size}.bin"));
        let package = work.join(format!("pkg-{size}.wpkg"));
        let signature = work.join(format!("sig-{size}.der"));
        println!(
            "==> {} payload: processes, {PROCESS_RUNS} runs each",
            human_size(size)
        );
        run_ok(
            Command::new("openssl")
                .current_dir(&work)
                .args(["dgst", "-sha256", "-sign", "app.key.pem", "-out"])
                .arg(&signature)
                .arg(&payload),
        )?;
        let sha256sum = median_wall(Command::new("sha256sum").arg(&payload))?;
        let openssl = median_wall(
            Command::new("openssl")
                .current_dir(&work)
                .args(["dgst", "-sha256", "-verify", "app.pub.pem", "-signature"])
                .arg(&signature)
                .arg(&payload),
        )?;
        let warden = median_wall(
            Command::new(&warden)
                .current_dir(&work)
                .args(["app", "verify"])
                .arg(&package)
                .args(["--trust", "trust.json"]),
        )?;
        rows.push(Row {
            size,
            in_process: Duration::from_nanos(median_ns),
            iterations,
            warden,
            sha256sum,
            openssl,
        });
    }
    if rows.is_empty() {
        bail!("verify_bench printed no results");
    }

    let section = render(repo_root, &rows)?;
    println!("\n{section}");
    write_section(repo_root, START, END, &section)
}

/// Median and range (minimum to maximum) of one quantity over a benchmark's rounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spread {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Spread {
    pub(crate) fn of(mut values: Vec<f64>) -> Result<Spread> {
        if values.is_empty() {
            bail!("no samples");
        }
        values.sort_by(f64::total_cmp);
        Ok(Spread {
            median: values[values.len() / 2],
            min: values[0],
            max: values[values.len() - 1],
        })
    }
}

/// Replaces the section between `start` and `end` in `docs/benchmarks.md` (or appends it).
pub(crate) fn write_section(root: &Path, start: &str, end: &str, section: &str) -> Result<()> {
    let doc = root.join("docs").join("benchmarks.md");
    let current = match std::fs::read_to_string(&doc) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_owned(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", doc.display())),
    };
    std::fs::write(&doc, replace_section(&current, start, end, section))
        .with_context(|| format!("cannot write {}", doc.display()))?;
    println!("wrote {}", doc.display());
    Ok(())
}

/// Replaces the text between the markers (inclusive), or appends the section.
fn replace_section(doc: &str, start_marker: &str, end_marker: &str, section: &str) -> String {
    if let (Some(start), Some(end)) = (doc.find(start_marker), doc.find(end_marker))
        && start < end
    {
        let after = end + end_marker.len();
        return format!("{}{section}{}", &doc[..start], &doc[after..]);
    }
    let mut out = doc.trim_end().to_owned();
    out.push_str("\n\n");
    out.push_str(section);
    out.push('\n');
    out
}

/// Runs a command once and requires success.
fn run_ok(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("could not run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// Median wall time of spawning `cmd` to completion, after one warm-up run; every run must
/// succeed.
fn median_wall(cmd: &mut Command) -> Result<Duration> {
    let mut times = wall_times(cmd, PROCESS_RUNS)?;
    times.sort_unstable();
    Ok(times[times.len() / 2])
}

/// Wall times of `runs` runs of `cmd`, spawn to exit, after one warm-up run; every run must
/// succeed.
pub(crate) fn wall_times(cmd: &mut Command, runs: usize) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(runs);
    for run in 0..=runs {
        let start = Instant::now();
        let out = cmd
            .output()
            .with_context(|| format!("could not run {cmd:?}"))?;
        let elapsed = start.elapsed();
        if !out.status.success() {
            bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        if run > 0 {
            times.push(elapsed);
        }
    }
    Ok(times)
}

fn human_size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn mib_per_s(bytes: u64, d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs <= 0.0 {
        return "n/a".into();
    }
    format!("{:.0} MiB/s", bytes as f64 / (1u64 << 20) as f64 / secs)
}

pub(crate) fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| format!("{cmd}: unknown version"))
}

pub(crate) fn cpu() -> (String, usize, bool) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = info.lines().filter(|l| l.starts_with("processor")).count();
    let sha = info
        .lines()
        .filter(|l| l.starts_with("flags") || l.starts_with("Features"))
        .any(|l| l.split_whitespace().any(|f| f == "sha_ni" || f == "sha2"));
    (model, cores, sha)
}

fn render(repo_root: &Path, rows: &[Row]) -> Result<String> {
    let (model, cores, sha) = cpu();
    let date = first_line("date", &["-u", "+%Y-%m-%d"]);
    let rustc = Command::new("rustc")
        .current_dir(repo_root)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "rustc: unknown version".into());
    let openssl = first_line("openssl", &["version"]);
    let coreutils = first_line("sha256sum", &["--version"]);

    let mut s = String::new();
    writeln!(s, "{START}")?;
    writeln!(s, "## Package verification\n")?;
    writeln!(
        s,
        "Measured by `cargo xtask bench` on {date}: {model} ({cores} logical CPUs, SHA \
         instructions: {}), {rustc}, {openssl}, {coreutils}. Each package holds one entry payload \
         of the size shown; the external tools read the same payload bytes.\n",
        if sha { "yes" } else { "no" }
    )?;
    writeln!(
        s,
        "| payload | warden verify, in process | in-process throughput | `warden app verify` (process) | `sha256sum` (process) | `openssl dgst -verify` (process) | warden ÷ sha256sum (process) |"
    )?;
    writeln!(s, "|---:|---:|---:|---:|---:|---:|---:|")?;
    for r in rows {
        writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.2}× |",
            human_size(r.size),
            ms(r.in_process),
            mib_per_s(r.size, r.in_process),
            ms(r.warden),
            ms(r.sha256sum),
            ms(r.openssl),
            r.warden.as_secs_f64() / r.sha256sum.as_secs_f64().max(f64::MIN_POSITIVE),
        )?;
    }
    writeln!(s)?;
    writeln!(
        s,
        "- *In process*: median over {} calls (per size: {}) of `warden_policy::package::verify` on \
         a package already in memory, payloads discarded: key lookup, ECDSA P-256 verification, \
         header and manifest parsing, and SHA-256 over every payload byte in 64 KiB chunks. \
         Reading the file and loading the trust store are not included \
         (`policy/examples/verify_bench.rs`).",
        rows.iter().map(|r| r.iterations).sum::<u64>(),
        rows.iter()
            .map(|r| format!("{} × {}", r.iterations, human_size(r.size)))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        s,
        "- *Process* columns: median wall time of {PROCESS_RUNS} runs (after one warm-up) of \
         spawning the command until it exits, file in the page cache; this includes process \
         start-up, so it is the fair comparison between the three tools:"
    )?;
    writeln!(
        s,
        "  - `warden app verify pkg-SIZE.wpkg --trust trust.json` (release build)"
    )?;
    writeln!(s, "  - `sha256sum payload-SIZE.bin`")?;
    writeln!(
        s,
        "  - `openssl dgst -sha256 -verify app.pub.pem -signature sig-SIZE.der payload-SIZE.bin`, \
         the signature made with `openssl dgst -sha256 -sign app.key.pem` from the same PKCS#8 key \
         the package is signed with."
    )?;
    if let Some(r) = rows.iter().max_by_key(|r| r.size) {
        let (faster, time) = if r.openssl < r.sha256sum {
            ("`openssl dgst -verify`", r.openssl)
        } else {
            ("`sha256sum`", r.sha256sum)
        };
        writeln!(
            s,
            "- At {}, including start-up, `sha256sum` processes {} and `openssl dgst -verify` {}; \
             the faster, {faster}, is the tighter baseline, and `warden app verify` takes {:.2}× \
             its time.",
            human_size(r.size),
            mib_per_s(r.size, r.sha256sum),
            mib_per_s(r.size, r.openssl),
            r.warden.as_secs_f64() / time.as_secs_f64().max(f64::MIN_POSITIVE),
        )?;
    }
    let small = rows.iter().find(|r| r.size == TARGET_SMALL_SIZE);
    let large = rows.iter().max_by_key(|r| r.size);
    if let Some(r) = small {
        writeln!(
            s,
            "- Target: at most 1 ms for a 64 KiB package, in process: {} ({}).",
            ms(r.in_process),
            if r.in_process <= TARGET_SMALL {
                "met"
            } else {
                "**not met**"
            }
        )?;
    }
    if let Some(r) = large {
        let ratio = r.warden.as_secs_f64() / r.sha256sum.as_secs_f64().max(f64::MIN_POSITIVE);
        writeln!(
            s,
            "- Target: hashing throughput within {TARGET_RATIO}× of `sha256sum` for large payloads: \
             {ratio:.2}× at {} ({}).",
            human_size(r.size),
            if ratio <= TARGET_RATIO {
                "met"
            } else {
                "**not met**"
            }
        )?;
    }
    write!(s, "{END}")?;
    Ok(s)
}

/// The 1-minute load average (the first field of `/proc/loadavg`), to say how quiet the machine
/// was around a measurement.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// How a target reads in the docs.
pub(crate) fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_marked_section_is_replaced() {
        let doc = format!("# Benchmarks\n\nintro\n\n{START}\nold\n{END}\n\n## Other\nkept\n");
        let new = replace_section(&doc, START, END, &format!("{START}\nnew\n{END}"));
        assert_eq!(
            new,
            format!("# Benchmarks\n\nintro\n\n{START}\nnew\n{END}\n\n## Other\nkept\n")
        );
        let appended = replace_section("# Benchmarks\n", START, END, &format!("{START}\nx\n{END}"));
        assert_eq!(appended, format!("# Benchmarks\n\n{START}\nx\n{END}\n"));
    }
}
