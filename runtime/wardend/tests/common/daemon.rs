//! The real `wardend` binary on the simulated board, with the real worker, for end-to-end
//! tests (they need root, like the supervisor itself).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Fixture, repo};

/// Fails the test, naming `why`, unless it runs as root.
pub fn require_root(why: &str) {
    assert!(rustix::process::geteuid().is_root(), "{why}");
}

/// The worker binary beside the test's own target directory.
/// The worker devices run apps in (built without the compiler, statically linked), when
/// `WARDEN_RUN_ONLY_WORKER` names it (`cargo xtask test` runs these tests once more that way);
/// otherwise the test build's own worker runs apps as well as compiling them.
pub fn run_only_worker() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("WARDEN_RUN_ONLY_WORKER")?);
    assert!(
        path.is_file(),
        "WARDEN_RUN_ONLY_WORKER={} is missing",
        path.display()
    );
    Some(path)
}

pub fn worker_binary() -> PathBuf {
    // target/<profile>/deps/<test>-… → target/<profile>/warden-worker
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("warden-worker");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p warden-worker` (cargo xtask test builds it)",
        path.display()
    );
    path
}

/// `wardend`, killed (SIGKILL) when dropped.
pub struct Daemon {
    child: Child,
    pub socket: PathBuf,
}

/// How to start `wardend`, beyond the fixture's state and trust.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The board file; the simulated board's when `None`.
    pub board: Option<PathBuf>,
    /// `--hosts`: the table that alone answers apps' name lookups; the system resolver when
    /// `None`.
    pub hosts: Option<PathBuf>,
    /// `--tls-roots`: certificates (PEM) apps' `https` requests trust besides the Mozilla
    /// roots.
    pub tls_roots: Option<PathBuf>,
    /// More arguments (`--remoteproc-root DIR`, `--qemu PROGRAM`, …).
    pub args: Vec<std::ffi::OsString>,
}

impl Daemon {
    /// Starts `wardend` on the fixture's state and trust, and waits for its socket.
    pub fn start(f: &Fixture) -> Daemon {
        Daemon::start_with(f, &Options::default())
    }

    /// [`Daemon::start`] on another board file.
    pub fn start_on(f: &Fixture, board: &Path) -> Daemon {
        Daemon::start_with(
            f,
            &Options {
                board: Some(board.to_path_buf()),
                ..Options::default()
            },
        )
    }

    /// [`Daemon::start`] with `--hosts`: apps' lookups are answered from the table at `hosts`
    /// alone (`ADDRESS NAME [NAME…]` per line, like /etc/hosts).
    pub fn start_with_hosts(f: &Fixture, hosts: &Path) -> Daemon {
        Daemon::start_with(
            f,
            &Options {
                hosts: Some(hosts.to_path_buf()),
                ..Options::default()
            },
        )
    }

    /// [`Daemon::start`] as `options` say.
    pub fn start_with(f: &Fixture, options: &Options) -> Daemon {
        let board = options
            .board
            .clone()
            .unwrap_or_else(|| repo().join("buildroot-overlay/board/warden-sim/board.json"));
        let socket = f.tmp.path().join("control.sock");
        let _ = std::fs::remove_file(&socket);
        let mut command = Command::new(env!("CARGO_BIN_EXE_wardend"));
        if let Some(hosts) = &options.hosts {
            command.arg("--hosts").arg(hosts);
        }
        if let Some(roots) = &options.tls_roots {
            command.arg("--tls-roots").arg(roots);
        }
        command.args(&options.args);
        let child = command
            .arg("--state")
            .arg(&f.state_path)
            .arg("--board")
            .arg(&board)
            .arg("--trust")
            .arg(f.tmp.path().join("trust.json"))
            .arg("--socket")
            .arg(&socket)
            .arg("--worker")
            .arg(run_only_worker().unwrap_or_else(worker_binary))
            .arg("--compiler")
            .arg(worker_binary())
            .arg("--cgroup-parent")
            .arg(format!(
                "warden-test-{}-{}",
                std::process::id(),
                f.state_path
                    .parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "wardend did not open its socket");
            std::thread::sleep(Duration::from_millis(10));
        }
        Daemon { child, socket }
    }

    /// One request; the status and the JSON answer.
    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
        let mut stream = UnixStream::connect(&self.socket).unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .unwrap();
        stream.write_all(body).unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out.split_once("\r\n\r\n").unwrap().1;
        (status, serde_json::from_str(body).unwrap())
    }

    /// The text of every line in the app's log.
    pub fn logs(&self, id: &str) -> Vec<String> {
        let (_, body) = self.call("GET", &format!("/apps/{id}/logs"), b"");
        body["lines"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .map(|l| l["text"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn wait_for(&self, what: &str, mut cond: impl FnMut(&Daemon) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !cond(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: nothing of the supervisor's own shutdown runs.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the supervisor stops its apps and unmounts their storage.
    pub fn terminate(mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "wardend did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
