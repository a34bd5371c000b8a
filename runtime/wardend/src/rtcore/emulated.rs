//! An emulated real-time core: `qemu-system-arm -M <machine>` running the firmware.
//!
//! QEMU is started through the worker spawner (`warden_sandbox::spawn`): no shell, fixed
//! arguments ([`qemu_args`]), an empty environment, fds 0–2 on `/dev/null`, fresh mount, pid,
//! ipc, uts and net namespaces (the emulated core has no network), and `PR_SET_PDEATHSIG`
//! (SIGKILL) set by the spawner, so the emulator dies with the supervisor thread that started
//! it — the app's monitor thread, which lives as long as the run. `wardend` itself stays
//! `#![forbid(unsafe_code)]`.
//!
//! The spawner hands the child one descriptor, fd 3: here one end of a Unix stream socket
//! pair, which QEMU takes as the chardev of the machine's first UART (`-chardev
//! socket,id=serial,fd=3 -serial chardev:serial`). The supervisor keeps the other end
//! ([`CoreBackend::serial`]) for the inter-core bridge.
//!
//! QEMU ending by itself is how the firmware ends: status 0 (semihosting "application exit")
//! is an exit, any other status (a fault handler ending the emulator through semihosting with
//! a run-time error, or QEMU failing) or a signal is a crash.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rustix::event::{PollFd, PollFlags, poll};
use rustix::io::Errno;
use warden_sandbox::{SandboxChild, SpawnRequest, WorkerExit};

use super::{CoreBackend, CoreEnd, CoreError, Run, Runs};

/// The arguments QEMU runs `firmware` with on `machine`: no display, no monitor, semihosting
/// (so a firmware can end the emulator with a status), the first UART on descriptor 3, no
/// network device.
pub fn qemu_args(machine: &str, firmware: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-M",
        machine,
        "-nographic",
        "-monitor",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        "-nic",
        "none",
        "-chardev",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(format!("socket,id=serial,fd={}", warden_sandbox::CHANNEL_FD).into());
    args.extend(["-serial", "chardev:serial", "-kernel"].map(OsString::from));
    args.push(firmware.as_os_str().to_owned());
    args
}

#[derive(Debug)]
struct Active {
    run: Run,
    child: SandboxChild,
    /// A copy of the child's pidfd, polled without holding the lock.
    pidfd: OwnedFd,
    serial: UnixStream,
}

/// A QEMU machine as a real-time core.
#[derive(Debug)]
pub struct EmulatedCore {
    core: String,
    machine: String,
    qemu: PathBuf,
    runs: Mutex<Runs<Active>>,
    /// Loads and stops run one at a time.
    ops: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl EmulatedCore {
    /// `qemu`: an absolute path, or a name looked up in `PATH` at each start.
    pub fn new(core: &str, machine: &str, qemu: &Path) -> EmulatedCore {
        EmulatedCore {
            core: core.to_owned(),
            machine: machine.to_owned(),
            qemu: qemu.to_path_buf(),
            runs: Mutex::new(Runs::default()),
            ops: Mutex::new(()),
        }
    }

    fn emulator_error(&self, program: &Path, reason: String) -> CoreError {
        CoreError::Emulator {
            core: self.core.clone(),
            program: program.to_path_buf(),
            reason,
        }
    }

    /// The emulator's absolute path.
    fn program(&self) -> Result<PathBuf, CoreError> {
        if self.qemu.is_absolute() {
            return Ok(self.qemu.clone());
        }
        if self.qemu.components().count() == 1 {
            let path = std::env::var_os("PATH").unwrap_or_default();
            if let Some(found) = std::env::split_paths(&path)
                .map(|dir| dir.join(&self.qemu))
                .find(|candidate| candidate.is_absolute() && candidate.is_file())
            {
                return Ok(found);
            }
            return Err(self.emulator_error(&self.qemu, "not found in PATH".into()));
        }
        std::fs::canonicalize(&self.qemu)
            .map_err(|e| self.emulator_error(&self.qemu, e.to_string()))
    }

    /// Kills and reaps the running emulator (only `only`'s, when given), if any; its waiter
    /// answers [`CoreEnd::Stopped`].
    fn end_active(&self, only: Option<Run>) {
        let active = {
            let mut runs = lock(&self.runs);
            let active = runs
                .active
                .take_if(|a| only.is_none_or(|only| only == a.run));
            if let Some(a) = &active {
                runs.ended = Some((a.run, CoreEnd::Stopped));
            }
            active
        };
        if let Some(mut active) = active {
            let _ = active.child.kill();
            let _ = active.child.wait();
        }
    }

    fn classify(&self, exit: Result<WorkerExit, warden_sandbox::SpawnError>) -> CoreEnd {
        let core = &self.core;
        let crashed = |code, signal, detail| CoreEnd::Crashed {
            code,
            signal,
            detail,
        };
        match exit {
            Ok(WorkerExit::Exited(0)) => CoreEnd::Exited,
            Ok(WorkerExit::Exited(code)) => crashed(
                Some(code),
                None,
                format!(
                    "core `{core}`: the emulator exited with status {code} (the firmware ended \
                     it with a failure, e.g. from its fault handler, or the emulator failed)"
                ),
            ),
            Ok(WorkerExit::Killed) => crashed(
                None,
                Some(9),
                format!("core `{core}`: the emulator was killed (SIGKILL), not by a stop"),
            ),
            Ok(WorkerExit::Signaled(signal)) => crashed(
                None,
                Some(signal),
                format!("core `{core}`: the emulator was killed by signal {signal}"),
            ),
            Ok(other) => crashed(
                None,
                None,
                format!("core `{core}`: the emulator ended: {other:?}"),
            ),
            Err(e) => crashed(None, None, format!("core `{core}`: {e}")),
        }
    }
}

impl CoreBackend for EmulatedCore {
    fn core(&self) -> &str {
        &self.core
    }

    /// Starts the emulator. The calling thread must live as long as the run: the emulator is
    /// killed when it ends (`PR_SET_PDEATHSIG`).
    fn load_and_start(&self, firmware: &Path, _content_name: &str) -> Result<Run, CoreError> {
        let _one = lock(&self.ops);
        self.end_active(None);
        let program = self.program()?;
        let (ours, theirs) = UnixStream::pair()
            .map_err(|e| self.emulator_error(&program, format!("serial socket pair: {e}")))?;
        let request =
            SpawnRequest::new(&program, theirs.as_fd()).args(qemu_args(&self.machine, firmware));
        let child = warden_sandbox::spawn(&request)
            .map_err(|e| self.emulator_error(&program, e.to_string()))?;
        drop(theirs);
        let pidfd = child
            .pidfd()
            .try_clone_to_owned()
            .map_err(|e| self.emulator_error(&program, format!("pidfd: {e}")))?;
        let mut runs = lock(&self.runs);
        runs.next += 1;
        let run = Run(runs.next);
        runs.active = Some(Active {
            run,
            child,
            pidfd,
            serial: ours,
        });
        Ok(run)
    }

    fn stop(&self) -> Result<(), CoreError> {
        let _one = lock(&self.ops);
        self.end_active(None);
        Ok(())
    }

    fn stop_run(&self, run: Run) -> Result<(), CoreError> {
        let _one = lock(&self.ops);
        self.end_active(Some(run));
        Ok(())
    }

    fn wait(&self, run: Run) -> CoreEnd {
        let pidfd = {
            let runs = lock(&self.runs);
            match &runs.active {
                Some(a) if a.run == run => a.pidfd.try_clone(),
                _ => return runs.end_of(run),
            }
        };
        if let Ok(pidfd) = &pidfd {
            // Readable once the emulator has ended.
            loop {
                let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
                match poll(&mut fds, None) {
                    Err(Errno::INTR) => continue,
                    _ => break,
                }
            }
        }
        let mut runs = lock(&self.runs);
        match runs.active.take_if(|a| a.run == run) {
            Some(mut active) => {
                let end = match pidfd {
                    Ok(_) => self.classify(active.child.wait()),
                    Err(e) => {
                        // Cannot watch it: end it rather than leave a core nobody waits for.
                        let _ = active.child.kill();
                        let _ = active.child.wait();
                        CoreEnd::Crashed {
                            code: None,
                            signal: None,
                            detail: format!("core `{}`: cannot watch the emulator: {e}", self.core),
                        }
                    }
                };
                runs.ended = Some((run, end.clone()));
                end
            }
            None => runs.end_of(run),
        }
    }

    fn pid(&self) -> Option<u32> {
        lock(&self.runs).active.as_ref().map(|a| a.child.pid())
    }

    fn serial(&self) -> Option<UnixStream> {
        lock(&self.runs)
            .active
            .as_ref()
            .and_then(|a| a.serial.try_clone().ok())
    }

    /// The emulator reads the firmware from the device state; nothing is copied elsewhere.
    fn remove_firmware(&self, _content_name: &str) -> Result<(), CoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qemu_gets_fixed_arguments_and_the_serial_on_fd_3() {
        let args: Vec<String> =
            qemu_args("mps2-an386", Path::new("/state/store/ab/payloads/fw.elf"))
                .into_iter()
                .map(|a| a.into_string().unwrap_or_default())
                .collect();
        assert_eq!(
            args.join(" "),
            "-M mps2-an386 -nographic -monitor none -semihosting-config enable=on,target=native \
             -nic none -chardev socket,id=serial,fd=3 -serial chardev:serial \
             -kernel /state/store/ab/payloads/fw.elf"
        );
    }

    #[test]
    fn a_missing_emulator_is_named() {
        let core = EmulatedCore::new("rt0", "mps2-an386", Path::new("no-such-qemu-here"));
        let e = core
            .load_and_start(Path::new("/nonexistent.elf"), "warden-0.elf")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "core `rt0`: cannot start the emulator no-such-qemu-here: not found in PATH"
        );
        assert_eq!(core.pid(), None);
    }
}
