//! `wardend`: loads the device configuration, opens the state directory, starts autostart
//! apps (real-time apps on their cores too), and serves the control API until SIGINT/SIGTERM,
//! then stops every app and core.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Parser;
use warden_sandbox::CgroupConfig;
use wardend::device::DeviceConfig;
use wardend::devices::BoardDevices;
use wardend::install::Compiler;
use wardend::intercore::Channels;
use wardend::network::{HostsTable, Network, Resolver};
use wardend::power::{LinuxPower, LinuxSys, PowerBackend, SimPower};
use wardend::rtcore::{CoreConfig, Cores};
use wardend::sim_api::Simulated;
use wardend::state::StateDir;
use wardend::supervisor::{RestartPolicy, Supervisor};
use wardend::system::System;
use wardend::tls_roots::TlsRoots;
use wardend::updates::Updates;
use wardend::worker::{WorkerCompiler, WorkerLauncher, engine_fingerprint};

/// The Warden supervisor.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Device state directory (installed apps, storage, reports).
    #[arg(long, default_value = "/var/lib/warden")]
    state: PathBuf,
    /// The board file; its hardware definitions are read from beside it.
    #[arg(long)]
    board: PathBuf,
    /// The trust file (root keys and the root-signed key list).
    #[arg(long)]
    trust: PathBuf,
    /// The control API socket (mode 0600).
    #[arg(long, default_value = "/run/warden/control.sock")]
    socket: PathBuf,
    /// The worker binary that runs apps (default: `warden-worker` beside this binary). A
    /// run-only build (no compiler) is smaller and starts faster; see `--compiler`.
    #[arg(long)]
    worker: Option<PathBuf>,
    /// The worker binary that compiles apps at install, in the same confinement (default: the
    /// `--worker` binary). It must make code for the worker's engine: both binaries' engine
    /// fingerprints must be equal, or wardend refuses to start.
    #[arg(long)]
    compiler: Option<PathBuf>,
    /// This device's id, for development unlock tokens.
    #[arg(long)]
    device_id: Option<String>,
    /// A development unlock token for this device.
    #[arg(long)]
    unlock: Option<PathBuf>,
    /// Failure reports kept.
    #[arg(long, default_value_t = 256)]
    reports: usize,
    /// Parent cgroup for the per-app groups.
    #[arg(long, default_value = "warden")]
    cgroup_parent: PathBuf,
    /// A hosts table (`ADDRESS NAME [NAME...]` per line, `#` comments, like /etc/hosts): the
    /// only names resolved for apps' lookups, instead of the system resolver. For tests and
    /// closed networks; a bad line refuses the start, naming the file and line.
    #[arg(long, value_name = "FILE")]
    hosts: Option<PathBuf>,
    /// Certificates (PEM) that apps' `https` requests trust besides the Mozilla roots: the
    /// device's own CA. At most 32 certificates, 32 KiB of DER together; a bad file refuses the
    /// start, naming the file, the line and what is wrong.
    #[arg(long, value_name = "FILE")]
    tls_roots: Option<PathBuf>,
    /// The remoteproc class directory: a board's `Remoteproc` cores are
    /// `<DIR>/<instance>/{firmware,state}`.
    #[arg(long, value_name = "DIR", default_value = "/sys/class/remoteproc")]
    remoteproc_root: PathBuf,
    /// Where the kernel's firmware loader finds firmware: a real-time app's ELF is copied here
    /// as `warden-<digest>.elf` before its remoteproc core starts.
    #[arg(long, value_name = "DIR", default_value = "/lib/firmware")]
    firmware_dir: PathBuf,
    /// The emulator of a board's `Emulated` cores: an absolute path, or a name looked up in
    /// `PATH` when a core starts.
    #[arg(long, value_name = "PROGRAM", default_value = "qemu-system-arm")]
    qemu: PathBuf,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // First: a mistake in the table stops the start before anything else is touched.
    let resolver = match &args.hosts {
        Some(path) => Resolver::Table(HostsTable::load(path)?),
        None => Resolver::System,
    };
    let tls_roots = match &args.tls_roots {
        Some(path) => TlsRoots::load(path)?,
        None => TlsRoots::default(),
    };
    let worker = match args.worker {
        Some(path) => path,
        None => std::env::current_exe()
            .context("cannot find this binary's directory")?
            .with_file_name("warden-worker"),
    };
    let worker = std::fs::canonicalize(&worker)
        .with_context(|| format!("worker binary {}", worker.display()))?;
    let compiler = match &args.compiler {
        Some(path) => std::fs::canonicalize(path)
            .with_context(|| format!("compiler binary {}", path.display()))?,
        None => worker.clone(),
    };
    let cgroups = CgroupConfig {
        parent: args.cgroup_parent,
        ..CgroupConfig::default()
    };
    let device = DeviceConfig::load(
        &args.board,
        &args.trust,
        args.device_id,
        args.unlock.as_deref(),
    )?;
    let state = StateDir::open(&args.state)?;
    let devices = BoardDevices::new(&device.board)
        .with_context(|| format!("the simulated peripherals of {}", args.board.display()))?;
    // A board with simulated peripherals has a simulated power rail; a real one, the kernel's.
    let sim_power = devices.sim.as_ref().map(|_| Arc::new(SimPower::new()));
    let power: Arc<dyn PowerBackend> = match &sim_power {
        Some(sim) => Arc::new(Arc::clone(sim)),
        None => Arc::new(Arc::new(LinuxPower::new(LinuxSys {
            sysfs: "/sys".into(),
        }))),
    };
    let sim = devices
        .sim
        .clone()
        .zip(sim_power)
        .map(|(board, power)| Simulated { board, power });
    let system = System {
        power: Arc::clone(&power),
        updates: Arc::new(Updates::open(&args.state)?),
        channels: Arc::new(Channels::default()),
    };
    let hwdefs = Arc::new(device.hwdefs.clone());
    let compiler = WorkerCompiler::new(compiler, cgroups.clone()).map_err(anyhow::Error::msg)?;
    if args.compiler.is_some() {
        let runs = engine_fingerprint(&worker).map_err(anyhow::Error::msg)?;
        if runs != compiler.fingerprint() {
            bail!(
                "the compiler {} makes code for engine {}, but the worker {} runs engine {runs}: \
                 every app it compiled would be refused at load",
                compiler.program.display(),
                compiler.fingerprint(),
                worker.display()
            );
        }
    }
    let launcher = WorkerLauncher {
        program: worker,
        cgroups,
        devices: Arc::new(devices),
        hwdefs,
        network: Arc::new(Network::new(resolver)),
        tls_roots: Arc::new(tls_roots),
        system: system.clone(),
    };
    let names = launcher.network.resolver.to_string();
    let trust = match &args.tls_roots {
        Some(path) => format!(
            "the Mozilla roots and {} of {}",
            launcher.tls_roots.len(),
            path.display()
        ),
        None => "the Mozilla roots".to_owned(),
    };
    if let Some(dir) = args.socket.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let listener = wardend::http::bind(&args.socket)
        .with_context(|| format!("binding {}", args.socket.display()))?;
    let cores = Cores::for_board(
        &device.board,
        &CoreConfig {
            remoteproc_root: args.remoteproc_root,
            firmware_dir: args.firmware_dir,
            qemu: args.qemu,
        },
    );
    let supervisor = Supervisor::open_with_cores(
        state,
        device,
        Box::new(compiler),
        Box::new(launcher),
        cores,
        RestartPolicy::default(),
        args.reports,
    )?;
    power.attach(Arc::new(supervisor.downgrade()));
    system.channels.attach(supervisor.downgrade());
    system
        .updates
        .attach(supervisor.downgrade())
        .context("starting the update coordinator")?;
    eprintln!(
        "wardend: serving {} (state {}, board {}, apps' names resolved by {names}, their \
         https trusting {trust})",
        args.socket.display(),
        args.state.display(),
        supervisor.device().board.name
    );
    let served = supervisor.clone();
    let updates = Arc::clone(&system.updates);
    std::thread::Builder::new()
        .name("control-api".into())
        .spawn(move || {
            wardend::http::serve(
                listener,
                Arc::new(move |req: &mut wardend::http::Request<'_>| {
                    wardend::api::route_with(&served, sim.as_ref(), Some(&updates), req)
                }),
            )
        })?;
    wait_for_termination();
    eprintln!("wardend: stopping every app");
    supervisor.stop_all();
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}

/// Blocks until SIGINT or SIGTERM.
fn wait_for_termination() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut signals) => {
            let _ = signals.forever().next();
        }
        Err(e) => {
            eprintln!("wardend: cannot watch signals ({e}); running until killed");
            loop {
                std::thread::park();
            }
        }
    }
}
