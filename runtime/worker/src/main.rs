//! `warden-worker`: one app's worker process. Spawned by `wardend` through
//! `warden_sandbox::spawn` with its channel as descriptor 3; see `docs/worker.md`.
//!
//! Conversation: `Confine(plan)` [+ storage] → confine (the engine and linkers are built in the
//! before-seccomp hook) → `Confined(report)` → `Run(request)` [code, stdout, stderr, and the
//! broker socket when `request.broker`] → `Outcome`, or `Compile(request)` [input, output] →
//! `Compiled`; then exit 0. Any failure is reported as `Failed { stage, message }`, then the
//! process exits with status 1.
#![forbid(unsafe_code)]

use std::fs::File;
use std::os::fd::OwnedFd;
use std::process::ExitCode;

use anyhow::anyhow;
use warden_ipc::{
    Channel, ConfinePlan, ConfinementReport, FromWorker, PROTOCOL_VERSION, SeccompProfile, ToWorker,
};
use warden_worker::Prepared;

/// A failure and the stage it happened in, for `FromWorker::Failed`.
struct Failure {
    stage: &'static str,
    error: anyhow::Error,
}

trait Stage<T> {
    fn stage(self, stage: &'static str) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> Stage<T> for Result<T, E> {
    fn stage(self, stage: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure {
            stage,
            error: e.into(),
        })
    }
}

fn main() -> ExitCode {
    // Build-host modes, chosen by argv. The supervisor spawns workers with no arguments (and
    // asks only for `fingerprint`), so none of these is a way into an unconfined run.
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        // `warden-worker fingerprint [TARGET]`: the engine fingerprint, so the supervisor can
        // match signed precompiled artefacts. Runs no app code and reads no app bytes.
        Some("fingerprint") => {
            return match engine_fingerprint(args.get(1).map(String::as_str)) {
                Ok(fingerprint) => {
                    #[allow(clippy::print_stdout)] // the fingerprint is this mode's output
                    {
                        println!("{fingerprint}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("warden-worker: fingerprint: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        // `warden-worker precompile TARGET IN.wasm OUT.cwasm`: the developer's precompiler
        // (e.g. for `pulley32`, the armv7 devices), with exactly the runtime's configuration.
        // It compiles the developer's own app on the build host; devices compile only in a
        // confined compiler worker (`Compile` over the channel).
        Some("precompile") => {
            return match precompile(&args[1..]) {
                Ok(line) => {
                    #[allow(clippy::print_stdout)] // digest and engine are this mode's output
                    {
                        println!("{line}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("warden-worker: precompile: {e:#}");
                    ExitCode::from(1)
                }
            };
        }
        _ => {}
    }
    let channel = match warden_sandbox::adopt_channel() {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!(
                "warden-worker: no channel on descriptor {}: {e}",
                warden_sandbox::CHANNEL_FD
            );
            return ExitCode::from(2);
        }
    };
    match serve(&channel) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let message = format!("{:#}", failure.error);
            let report = FromWorker::Failed {
                stage: failure.stage.to_owned(),
                message: message.clone(),
            };
            if channel.send(&report, &[]).is_err() {
                eprintln!("warden-worker: {}: {message}", failure.stage);
            }
            ExitCode::from(1)
        }
    }
}

fn serve(channel: &Channel) -> Result<(), Failure> {
    let (message, mut fds) = channel.recv::<ToWorker>().stage("receive-plan")?;
    let ToWorker::Confine(plan) = message else {
        return Err(anyhow!("the first message must be `confine`")).stage("receive-plan");
    };
    if plan.protocol != PROTOCOL_VERSION {
        return Err(anyhow!(
            "protocol {} requested, this worker speaks {PROTOCOL_VERSION}",
            plan.protocol
        ))
        .stage("receive-plan");
    }
    let expected = usize::from(plan.storage);
    if fds.len() != expected {
        return Err(anyhow!(
            "expected {expected} descriptor(s) with `confine`, got {}",
            fds.len()
        ))
        .stage("receive-plan");
    }
    let storage = fds.pop();

    let mut prepared = None;
    let report = confine(&plan, storage.as_ref(), || {
        match (plan.seccomp, plan.runs) {
            (SeccompProfile::Compiler, None) => prepare_compiler()?,
            (
                profile @ (SeccompProfile::Worker
                | SeccompProfile::WorkerStorage
                | SeccompProfile::WorkerDevices
                | SeccompProfile::WorkerStorageDevices
                | SeccompProfile::WorkerNetwork
                | SeccompProfile::WorkerStorageNetwork),
                Some(kind),
            ) => {
                // The network profiles allow what the tokio I/O driver and the brokered
                // sockets need; only then is the driver built (its epoll instance, now).
                prepared = Some(Prepared::new(kind, profile.network())?);
            }
            (profile, runs) => {
                return Err(anyhow!(
                    "a plan for the {profile:?} profile that runs {runs:?} is contradictory"
                ));
            }
        }
        Ok(())
    })
    .stage("confine")?;
    channel
        .send(&FromWorker::Confined(report), &[])
        .stage("report-confinement")?;

    let (message, fds) = channel.recv::<ToWorker>().stage("receive-work")?;
    match (message, prepared) {
        (ToWorker::Run(request), Some(prepared)) => {
            let (code, stdout, stderr, broker) =
                run_descriptors(fds, request.broker).stage("receive-work")?;
            let outcome = prepared
                .run(&request, code, stdout, stderr, storage, broker)
                .stage("run")?;
            channel
                .send(&FromWorker::Outcome(outcome), &[])
                .stage("report-outcome")
        }
        (ToWorker::Compile(request), None) => {
            let [input, output] = descriptors(fds, "compile").stage("receive-work")?;
            let reply = compile(input, output, request.target.as_deref()).stage("compile")?;
            channel.send(&reply, &[]).stage("report-compiled")
        }
        (ToWorker::Confine(_), _) => Err(anyhow!("`confine` received twice")).stage("receive-work"),
        (ToWorker::Run(_), None) => {
            Err(anyhow!("`run` sent to a worker confined as a compiler")).stage("receive-work")
        }
        (ToWorker::Compile(_), Some(_)) => {
            Err(anyhow!("`compile` sent to a worker confined to run an app")).stage("receive-work")
        }
    }
}

/// The descriptors of `Run`: code, stdout, stderr, and the broker socket exactly when the
/// request says one is attached (3 or 4; any other count is refused).
fn run_descriptors(
    mut fds: Vec<OwnedFd>,
    broker: bool,
) -> anyhow::Result<(File, File, File, Option<OwnedFd>)> {
    let expected = 3 + usize::from(broker);
    if fds.len() != expected {
        return Err(anyhow!(
            "`run` needs {expected} descriptors (broker: {broker}), got {}",
            fds.len()
        ));
    }
    let broker = if broker { fds.pop() } else { None };
    let [code, stdout, stderr] = descriptors(fds, "run")?;
    Ok((code, stdout, stderr, broker))
}

/// Exactly `N` descriptors, as files.
fn descriptors<const N: usize>(fds: Vec<OwnedFd>, what: &str) -> anyhow::Result<[File; N]> {
    let got = fds.len();
    let files: Vec<File> = fds.into_iter().map(File::from).collect();
    files
        .try_into()
        .map_err(|_| anyhow!("`{what}` needs {N} descriptors, got {got}"))
}

#[cfg(feature = "compile")]
fn prepare_compiler() -> anyhow::Result<()> {
    Ok(warden_worker::prepare_compiler()?)
}

#[cfg(not(feature = "compile"))]
fn prepare_compiler() -> anyhow::Result<()> {
    Ok(())
}

#[cfg(feature = "compile")]
fn compile(mut input: File, mut output: File, target: Option<&str>) -> anyhow::Result<FromWorker> {
    use anyhow::Context;
    use std::io::{Read, Write};

    use sha2::{Digest, Sha256};

    let mut wasm = Vec::new();
    input
        .read_to_end(&mut wasm)
        .context("cannot read the WebAssembly input")?;
    let artefact = warden_worker::compile(&wasm, target)?;
    output
        .write_all(&artefact)
        .context("cannot write the precompiled output")?;
    Ok(FromWorker::Compiled {
        size: u64::try_from(artefact.len())?,
        sha256: hex::encode(Sha256::digest(&artefact)),
    })
}

#[cfg(not(feature = "compile"))]
fn compile(_input: File, _output: File, _target: Option<&str>) -> anyhow::Result<FromWorker> {
    anyhow::bail!("this worker was built without the `compile` feature")
}

#[cfg(feature = "compile")]
fn engine_fingerprint(target: Option<&str>) -> anyhow::Result<String> {
    Ok(warden_worker::engine_fingerprint(target)?)
}

/// A run-only build (no compiler, e.g. the armv7 devices' Pulley worker) cannot compute the
/// fingerprint: wasmtime offers its compatibility hash only in builds with a compiler. It is
/// given at build time, from the compile build that makes this build's artefacts
/// (`WARDEN_ENGINE_FINGERPRINT=$(warden-worker fingerprint pulley32)`, as `cargo xtask cross`
/// does). A wrong value cannot load foreign code: wasmtime still checks every artefact's
/// compatibility header, and the run ends `LoadRefused`.
#[cfg(not(feature = "compile"))]
fn engine_fingerprint(target: Option<&str>) -> anyhow::Result<String> {
    let Some(fingerprint) = option_env!("WARDEN_ENGINE_FINGERPRINT") else {
        anyhow::bail!(
            "this run-only worker was built without WARDEN_ENGINE_FINGERPRINT (see docs/worker.md)"
        );
    };
    let own = fingerprint.split('/').nth(1).unwrap_or_default();
    match target {
        Some(target) if target != own => {
            anyhow::bail!("this run-only worker runs `{own}` artefacts only, not `{target}`")
        }
        _ => Ok(fingerprint.to_owned()),
    }
}

/// `precompile TARGET IN.wasm OUT.cwasm` → `<sha256 of OUT> <engine fingerprint>`.
#[cfg(feature = "compile")]
fn precompile(args: &[String]) -> anyhow::Result<String> {
    use anyhow::Context;
    use sha2::{Digest, Sha256};

    let [target, input, output] = args else {
        anyhow::bail!("usage: warden-worker precompile TARGET IN.wasm OUT.cwasm");
    };
    let target = (target != "host").then_some(target.as_str());
    let wasm = std::fs::read(input).with_context(|| format!("cannot read {input}"))?;
    let artefact = warden_worker::compile(&wasm, target)?;
    std::fs::write(output, &artefact).with_context(|| format!("cannot write {output}"))?;
    Ok(format!(
        "{} {}",
        hex::encode(Sha256::digest(&artefact)),
        warden_worker::engine_fingerprint(target)?
    ))
}

#[cfg(not(feature = "compile"))]
fn precompile(_args: &[String]) -> anyhow::Result<String> {
    anyhow::bail!("this worker was built without the `compile` feature")
}

/// The one place that calls the sandbox: `warden_sandbox::confine(plan, storage, hook)` runs
/// the documented confinement steps in order and calls `before_seccomp` right before the last
/// one (seccomp). A worker never runs an app unconfined: any failure here ends it.
fn confine(
    plan: &ConfinePlan,
    storage: Option<&OwnedFd>,
    before_seccomp: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<ConfinementReport> {
    use std::os::fd::AsFd as _;
    Ok(warden_sandbox::confine(
        plan,
        storage.map(|fd| fd.as_fd()),
        || before_seccomp().map_err(|e| format!("{e:#}")),
    )?)
}
