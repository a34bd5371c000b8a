//! Runs a precompiled app through the worker's real execution path, WITHOUT the sandbox, for
//! running another architecture's build under qemu-user on the build host.
//!
//! ```text
//! emulated_run --under-emulation APP.cwasm SHA256 module|component
//! ```
//!
//! `Prepared::new` then `Prepared::run_measured` — the digest check, the load, WASI, the memory
//! budget, the watchdog — exactly as a worker runs an app after confinement; the app's stdout
//! and stderr go to this process's; the outcome and the timings go to stderr; the exit status
//! is 0 only for `Exited { code: 0 }`.
//!
//! Why it exists: qemu-user (`qemu-arm`) cannot confine the program it emulates — namespaces,
//! landlock and seccomp are the host kernel's and refused or wrong for the guest — so the
//! armv7 worker cannot run its real `confine` there. `cargo xtask cross` uses this to prove
//! that the armv7 (Pulley) build runs artefacts the x86_64 host precompiled.
//!
//! Why it is safe: it is an example, never installed on a device; the supervisor spawns only
//! `warden-worker`, whose binary has no unconfined mode (it runs apps only after `confine`
//! succeeded). It refuses to run unless told `--under-emulation`.
#![forbid(unsafe_code)]

use std::fs::File;
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use warden_ipc::{CodeKind, Outcome, RunRequest};
use warden_worker::Prepared;

fn main() -> anyhow::Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [flag, path, sha256, kind] = args.as_slice() else {
        bail!("usage: emulated_run --under-emulation APP.cwasm SHA256 module|component");
    };
    if flag != "--under-emulation" {
        bail!(
            "emulated_run runs apps WITHOUT the sandbox; it is only for qemu-user on a build \
             host, and needs --under-emulation to say so"
        );
    }
    let kind = match kind.as_str() {
        "module" => CodeKind::Module,
        "component" => CodeKind::Component,
        other => bail!("kind {other:?}: module or component"),
    };
    let code = File::open(path).with_context(|| format!("cannot open {path}"))?;
    let request = RunRequest {
        kind,
        code_sha256: sha256.clone(),
        code_bytes: code.metadata()?.len(),
        args: vec!["app".to_owned()],
        env: vec![],
        memory_limit_bytes: 64 << 20,
        watchdog_ms: 10_000,
        storage_quota_bytes: None,
        broker: false,
        tls_roots: vec![],
    };
    let stdout = File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let stderr = File::from(std::io::stderr().as_fd().try_clone_to_owned()?);

    let started = Instant::now();
    let prepared = Prepared::new(request.kind, false)?;
    let prepare = started.elapsed();
    let (outcome, timings) = prepared.run_measured(&request, code, stdout, stderr, None, None)?;
    let total = started.elapsed();
    eprintln!("emulated_run: outcome {outcome:?}");
    eprintln!(
        "emulated_run: prepare {:.1} ms, verify {:.1} ms, load {:.1} ms, instantiate {:.1} ms, \
         execute {:.1} ms, total {:.1} ms",
        ms(prepare),
        ms(timings.verify),
        ms(timings.load),
        ms(timings.instantiate),
        ms(timings.execute),
        ms(total)
    );
    Ok(match outcome {
        Outcome::Exited { code: 0 } => ExitCode::SUCCESS,
        _ => ExitCode::from(1),
    })
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
