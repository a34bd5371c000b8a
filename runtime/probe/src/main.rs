//! `warden-escape-probe <attempt> <stage> [param]`: confine like a worker, make one attempt,
//! report it. See the library documentation.

use std::convert::Infallible;
use std::os::fd::{AsFd, AsRawFd, IntoRawFd, OwnedFd};
use std::process::ExitCode;

use warden_escape_probe::{Context, Outcome, ProbeReport, Stage, attempt};
use warden_ipc::{Channel, FromWorker, ToWorker};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(stage)) = (
        args.get(1).cloned(),
        args.get(2).and_then(|s| Stage::from_name(s)),
    ) else {
        return ExitCode::from(2);
    };
    let param = args.get(3).cloned().unwrap_or_else(|| "-".into());
    let Ok(channel) = warden_sandbox::adopt_channel() else {
        return ExitCode::from(3);
    };
    match run(&channel, &name, stage, param) {
        Ok(()) => ExitCode::SUCCESS,
        Err((stage, message)) => {
            let _ = channel.send(
                &FromWorker::Failed {
                    stage: stage.into(),
                    message,
                },
                &[],
            );
            ExitCode::from(1)
        }
    }
}

fn run(
    channel: &Channel,
    name: &str,
    stage: Stage,
    param: String,
) -> Result<(), (&'static str, String)> {
    // `leaked_fd` plays a runtime that opened a file before confinement and forgot it: the
    // descriptor is deliberately leaked (no owner), and step 2 of confine must close it.
    let leaked = if name == "leaked_fd" {
        let file = std::fs::File::open("/etc/passwd").map_err(|e| ("prepare", e.to_string()))?;
        Some(file.into_raw_fd())
    } else {
        None
    };
    let (message, fds): (ToWorker, Vec<OwnedFd>) = channel
        .recv()
        .map_err(|e| ("receive plan", e.to_string()))?;
    let ToWorker::Confine(plan) = message else {
        return Err(("receive plan", "expected Confine".into()));
    };
    let storage = fds.into_iter().next();
    let mut ctx = Context {
        storage: storage.as_ref().map(AsRawFd::as_raw_fd),
        param,
        leaked,
        passed: None,
    };
    let mut early: Option<Outcome> = None;
    let report = warden_sandbox::confine(&plan, storage.as_ref().map(AsFd::as_fd), || {
        if stage == Stage::PreSeccomp {
            early = Some(attempt(name, &ctx));
        }
        Ok::<(), Infallible>(())
    })
    .map_err(|e| ("confine", e.to_string()))?;
    channel
        .send(&FromWorker::Confined(report), &[])
        .map_err(|e| ("report", e.to_string()))?;
    let mut passed: Vec<OwnedFd> = Vec::new();
    if name == "worker_syscalls" {
        let (_, fds): (serde_json::Value, Vec<OwnedFd>) = channel
            .recv_with_fds(1)
            .map_err(|e| ("receive fd", e.to_string()))?;
        passed = fds;
        ctx.passed = passed.first().map(AsRawFd::as_raw_fd);
    }
    let outcome = match early {
        Some(outcome) => outcome,
        None => attempt(name, &ctx),
    };
    let report = ProbeReport {
        attempt: name.to_owned(),
        stage,
        outcome,
    };
    channel
        .send(&report, &[])
        .map_err(|e| ("report", e.to_string()))?;
    drop(passed);
    drop(storage);
    Ok(())
}
