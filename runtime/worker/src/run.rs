//! Running one app: everything that needs syscalls the confined steady state will not have is
//! done in [`Prepared::new`] (before seccomp, with no app byte read); [`Prepared::run`] then
//! checks, loads, instantiates and runs the app.

use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use warden_host_api::http::{HttpHooks, TlsClient, TlsSetupError};
use warden_host_api::net::{self, Net, NetCtxView, NetView};
use warden_host_api::{BrokerClient, Devices, NoBroker, Opener, SharedOpener};
use warden_ipc::{Channel, CodeKind, Outcome, RunRequest};
use wasmtime::component::{Component, HasData, ResourceTable};
use wasmtime::{CallHook, Engine, Linker, Module, Store};
use wasmtime_wasi::cli::{OutputFile, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::OutputStream;
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::limits::MemoryBudget;
use crate::outcome::{self, Context};
use crate::watchdog::{self, Ticking};
use crate::{artefact, engine, sys};

/// Where the app's storage directory appears inside WASI.
pub const STORAGE_GUEST_PATH: &str = "/storage";

/// Why the worker could not get ready to run an app.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    #[error("cannot create the wasmtime engine: {0}")]
    Engine(String),
    #[error("cannot install the SIGALRM handler for the watchdog: {0}")]
    Signal(std::io::Error),
    #[error("cannot add WASI to the {kind} linker: {message}")]
    Link { kind: &'static str, message: String },
    #[error("cannot add the warden:device interfaces to the component linker: {0}")]
    Devices(String),
    #[error("cannot add the brokered wasi:sockets interfaces to the component linker: {0}")]
    Sockets(String),
    #[error("cannot build the current-thread tokio runtime: {0}")]
    Runtime(std::io::Error),
}

/// A failure of the worker itself while running an app (not an outcome of the app).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error("cannot arm the watchdog timer: {0}")]
    Timer(std::io::Error),
    #[error("cannot enter the storage directory: {0}")]
    Storage(std::io::Error),
    #[error("cannot preopen the storage directory as {STORAGE_GUEST_PATH}: {0}")]
    Preopen(String),
    #[error("this worker was prepared to run a {prepared:?}, but the code is a {code:?}")]
    KindMismatch { prepared: CodeKind, code: CodeKind },
    #[error(
        "the run request says broker = {requested}, but a broker socket was {}",
        if *.given { "given" } else { "not given" }
    )]
    BrokerMismatch { requested: bool, given: bool },
    #[error("cannot set up TLS for the app's https requests: {0}")]
    Tls(TlsSetupError),
}

/// How long each step of [`Prepared::run_measured`] took.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timings {
    /// Hashing the code and checking its header.
    pub verify: Duration,
    /// `deserialize_open_file`.
    pub load: Duration,
    /// Store, WASI context and instantiation.
    pub instantiate: Duration,
    /// `_start` / `wasi:cli/run` until it returned, exited or trapped.
    pub execute: Duration,
}

/// The store data for a core module.
struct ModuleHost {
    wasi: WasiP1Ctx,
    budget: MemoryBudget,
}

/// The store data for a component.
struct ComponentHost {
    wasi: WasiCtx,
    table: ResourceTable,
    budget: MemoryBudget,
    /// `warden:device`: the peripherals the app opened through the broker.
    devices: Devices,
    /// `wasi:sockets`: lookups, connections and server sockets through the same broker.
    net: Net,
    /// `wasi:http` outgoing requests, over connections from the same broker.
    http: WasiHttpCtx,
    http_hooks: HttpHooks,
}

/// `warden:device/log`'s way to the app's stderr: the same stream WASI's stderr writes to
/// (a clone of the one `OutputFile`), so no descriptor is duplicated after seccomp.
struct StderrLog(Box<dyn OutputStream>);

impl std::io::Write for StderrLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .write(buf.to_vec().into())
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0
            .flush()
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

impl WasiView for ComponentHost {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ComponentHost {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            hooks: &mut self.http_hooks,
            table: &mut self.table,
            ctx: &mut self.http,
        }
    }
}

impl NetView for ComponentHost {
    fn net(&mut self) -> NetCtxView<'_> {
        NetCtxView {
            table: &mut self.table,
            net: &mut self.net,
        }
    }
}

/// `wasi:io` works on the WASI resource table itself.
struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// WASI 0.2 as `wasmtime_wasi::p2::add_to_linker_async` links it, interface by interface, but
/// with `wasi:sockets` from `warden-host-api` (over sockets the broker passes) instead of
/// wasmtime-wasi's own, which calls `socket(2)`: in the sandbox that is death by SIGSYS; and
/// with file streams that do their I/O on the calling thread (`fs_streams`).
fn add_wasi(linker: &mut wasmtime::component::Linker<ComponentHost>) -> Result<(), PrepareError> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView as _};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView as _};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView as _};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, io, random};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView as _};

    let link = |e: wasmtime::Error| PrepareError::Link {
        kind: "component",
        message: outcome::message(&e),
    };
    let l = &mut *linker;
    fn table(host: &mut ComponentHost) -> &mut ResourceTable {
        &mut host.table
    }
    io::error::add_to_linker::<_, HasIo>(l, table).map_err(link)?;
    io::poll::add_to_linker::<_, HasIo>(l, table).map_err(link)?;
    io::streams::add_to_linker::<_, HasIo>(l, table).map_err(link)?;
    clocks::wall_clock::add_to_linker::<_, WasiClocks>(l, ComponentHost::clocks).map_err(link)?;
    clocks::monotonic_clock::add_to_linker::<_, WasiClocks>(l, ComponentHost::clocks)
        .map_err(link)?;
    filesystem::preopens::add_to_linker::<_, WasiFilesystem>(l, ComponentHost::filesystem)
        .map_err(link)?;
    filesystem::types::add_to_linker::<_, WasiFilesystem>(l, ComponentHost::filesystem)
        .map_err(link)?;
    // Its file streams on the worker's thread: wasmtime-wasi's start a thread (SIGSYS here).
    warden_host_api::fs_streams::add_to_linker(l).map_err(link)?;
    random::random::add_to_linker::<_, WasiRandom>(l, ComponentHost::random).map_err(link)?;
    random::insecure::add_to_linker::<_, WasiRandom>(l, ComponentHost::random).map_err(link)?;
    random::insecure_seed::add_to_linker::<_, WasiRandom>(l, ComponentHost::random)
        .map_err(link)?;
    cli::exit::add_to_linker::<_, WasiCli>(l, ComponentHost::cli).map_err(link)?;
    cli::environment::add_to_linker::<_, WasiCli>(l, ComponentHost::cli).map_err(link)?;
    cli::stdin::add_to_linker::<_, WasiCli>(l, ComponentHost::cli).map_err(link)?;
    cli::stdout::add_to_linker::<_, WasiCli>(l, ComponentHost::cli).map_err(link)?;
    cli::stderr::add_to_linker::<_, WasiCli>(l, ComponentHost::cli).map_err(link)?;
    cli::terminal_input::add_to_linker::<_, WasiCli>(l, ComponentHost::cli).map_err(link)?;
    cli::terminal_output::add_to_linker::<_, WasiCli>(l, ComponentHost::cli).map_err(link)?;
    cli::terminal_stdin::add_to_linker::<_, WasiCli>(l, ComponentHost::cli).map_err(link)?;
    cli::terminal_stdout::add_to_linker::<_, WasiCli>(l, ComponentHost::cli).map_err(link)?;
    cli::terminal_stderr::add_to_linker::<_, WasiCli>(l, ComponentHost::cli).map_err(link)?;
    net::add_to_linker(l).map_err(|e| PrepareError::Sockets(outcome::message(&e)))?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(l).map_err(link)?;
    Ok(())
}

/// The WASI linker for the one kind of code a worker runs.
enum Linkers {
    Module(Linker<ModuleHost>),
    Component(wasmtime::component::Linker<ComponentHost>),
}

/// A worker ready to run one app: engine, linker, runtime and watchdog signal handler built.
pub struct Prepared {
    engine: Engine,
    linker: Linkers,
    /// Never dropped: its shutdown wakes a condition variable (`futex`), a syscall the worker's
    /// steady state would otherwise not need, and the worker exits right after its one run.
    runtime: ManuallyDrop<tokio::runtime::Runtime>,
    /// The app may use the network: the runtime has the I/O driver, and `wasi:sockets` asks
    /// the broker. Otherwise every socket operation is `access-denied`.
    network: bool,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared").finish_non_exhaustive()
    }
}

impl Prepared {
    /// Builds everything that needs more than the steady state's syscalls, reading no app
    /// byte: the engine (wasmtime installs its trap handlers here), the SIGALRM handler, the
    /// WASI linker for `kind` (preview 1 for modules; for components 0.2 with the brokered
    /// `wasi:sockets` and the `warden:device` interfaces: preview-1 modules cannot import WIT;
    /// only that one linker), a current-thread tokio runtime with the timer driver — and the
    /// I/O driver (epoll) if `network`, i.e. the app may use the network
    /// (`SeccompProfile::network`) — and a throwaway WASI context (seeds the thread's random
    /// generator and hash keys). Call it in the sandbox's before-seccomp hook, on the main
    /// thread; it starts no thread.
    pub fn new(kind: CodeKind, network: bool) -> Result<Prepared, PrepareError> {
        let engine = engine::runtime_engine().map_err(|e| PrepareError::Engine(e.to_string()))?;
        sys::install_tick_handler().map_err(PrepareError::Signal)?;

        let linker = match kind {
            CodeKind::Module => {
                let mut modules = Linker::new(&engine);
                wasmtime_wasi::p1::add_to_linker_async(&mut modules, |host: &mut ModuleHost| {
                    &mut host.wasi
                })
                .map_err(|e| PrepareError::Link {
                    kind: "module",
                    message: outcome::message(&e),
                })?;
                Linkers::Module(modules)
            }
            CodeKind::Component => {
                let mut components = wasmtime::component::Linker::new(&engine);
                add_wasi(&mut components)?;
                warden_host_api::add_to_linker(&mut components, |host: &mut ComponentHost| {
                    &mut host.devices
                })
                .map_err(|e| PrepareError::Devices(outcome::message(&e)))?;
                Linkers::Component(components)
            }
        };

        // wasmtime-wasi otherwise builds a multi-threaded runtime on first use, and a worker
        // under seccomp dies on clone3. The timer driver serves WASI sleeps. The I/O driver
        // (its epoll instance and eventfd made here, before seccomp) only for an app that may
        // use the network: it waits for the brokered sockets, and the timer then parks in
        // `epoll_wait` instead of `clock_nanosleep`.
        let mut runtime = tokio::runtime::Builder::new_current_thread();
        runtime.enable_time();
        if network {
            runtime.enable_io();
        }
        let runtime = runtime.build().map_err(PrepareError::Runtime)?;

        drop(WasiCtxBuilder::new().build());
        Ok(Prepared {
            engine,
            linker,
            runtime: ManuallyDrop::new(runtime),
            network,
        })
    }

    /// The kind of code this worker was prepared to run.
    pub fn kind(&self) -> CodeKind {
        match self.linker {
            Linkers::Module(_) => CodeKind::Module,
            Linkers::Component(_) => CodeKind::Component,
        }
    }

    /// Checks `component` against this worker's component linker as a run does before it
    /// starts the app, without running it: compiled by this engine, every import satisfied
    /// (`instantiate_pre`), the `wasi:cli/run` export the worker calls present. For
    /// `tests/world.rs`, which holds the app world (`host-api/wit-app`) to what is linked here.
    #[cfg(feature = "compile")]
    #[doc(hidden)]
    pub fn check_links(&self, component: &[u8]) -> wasmtime::Result<()> {
        let Linkers::Component(components) = &self.linker else {
            wasmtime::bail!("this worker was prepared for a core module, not a component");
        };
        let component = Component::from_binary(&self.engine, component)?;
        wasmtime_wasi::p2::bindings::CommandPre::new(components.instantiate_pre(&component)?)?;
        Ok(())
    }

    /// Runs the app in `code` (see [`Prepared::run_measured`]).
    pub fn run(
        self,
        request: &RunRequest,
        code: File,
        stdout: File,
        stderr: File,
        storage: Option<OwnedFd>,
        broker: Option<OwnedFd>,
    ) -> Result<Outcome, RunError> {
        self.run_measured(request, code, stdout, stderr, storage, broker)
            .map(|(outcome, _)| outcome)
    }

    /// Runs the app in `code` to its end and says how it ended.
    ///
    /// 1. The code's SHA-256 must equal `request.code_sha256` and its header must name
    ///    `request.kind`, or the outcome is `LoadRefused` and nothing of it is loaded.
    /// 2. It is loaded with `deserialize_open_file` (mapped from the descriptor).
    /// 3. WASI: `request.args` and `request.env`, stdout and stderr to the given files, no
    ///    stdin, clocks, random, and `storage` preopened as `/storage` read-write if given (the
    ///    process's working directory becomes that directory).
    /// 4. Memory and tables share `request.memory_limit_bytes`; the watchdog stops WebAssembly
    ///    that runs `request.watchdog_ms` without returning to the host.
    /// 5. Components run `wasi:cli/run`, modules `_start`.
    /// 6. A component's `warden:device` opens go to the broker socket `broker` (given exactly
    ///    when `request.broker` says so); without one, every open is refused `not-granted`. A
    ///    module cannot import devices: a broker socket given with one is closed unused. Its
    ///    `wasi:sockets` lookups, connections and server sockets go to the same broker if the
    ///    worker was prepared with `network`; otherwise each is refused `access-denied`.
    ///    So do its `wasi:http` requests; `https` trusts the Mozilla roots and
    ///    `request.tls_roots` (the device's).
    ///
    /// `Err` is a failure of the worker, not of the app.
    pub fn run_measured(
        self,
        request: &RunRequest,
        code: File,
        stdout: File,
        stderr: File,
        storage: Option<OwnedFd>,
        broker: Option<OwnedFd>,
    ) -> Result<(Outcome, Timings), RunError> {
        let prepared = self.kind();
        if request.kind != prepared {
            return Err(RunError::KindMismatch {
                prepared,
                code: request.kind,
            });
        }
        if request.broker != broker.is_some() {
            return Err(RunError::BrokerMismatch {
                requested: request.broker,
                given: broker.is_some(),
            });
        }
        let mut timings = Timings::default();
        let started = Instant::now();
        let verified = match artefact::verify(
            &code,
            request.code_bytes,
            &request.code_sha256,
            request.kind,
        ) {
            Ok(verified) => verified,
            Err(reason) => return Ok((Outcome::LoadRefused { reason }, timings)),
        };
        timings.verify = started.elapsed();

        let stderr = OutputFile::new(stderr);
        let mut wasi = WasiCtxBuilder::new();
        wasi.args(&request.args)
            .envs(&request.env)
            .stdout(OutputFile::new(stdout))
            .stderr(stderr.clone())
            // Filesystem calls run on this thread; otherwise tokio's blocking pool would start
            // threads, which the worker's seccomp profile forbids.
            .allow_blocking_current_thread(true);
        if let Some(dir) = storage {
            // wasmtime-wasi preopens by path only; with an empty root the one path that can
            // name the storage directory is ".", after entering it through its descriptor.
            rustix::process::fchdir(&dir).map_err(|e| RunError::Storage(e.into()))?;
            wasi.preopened_dir(".", STORAGE_GUEST_PATH, FsPerms::ReadWrite)
                .map_err(|e| RunError::Preopen(outcome::message(&e)))?;
        }

        let (tick, ticks) = watchdog::schedule(request.watchdog_ms);
        let budget = MemoryBudget::new(request.memory_limit_bytes);
        let watchdog_ms = request.watchdog_ms;
        let loading = Instant::now();
        match &self.linker {
            Linkers::Module(modules) => {
                // Closing it tells the supervisor's broker thread no request will come.
                drop(broker);
                let loaded = sys::load_module(&self.engine, &verified);
                drop((verified, code));
                let module = match loaded {
                    Ok(module) => module,
                    Err(e) => return Ok((refused_load(&e), timings)),
                };
                timings.load = loading.elapsed();
                let store = Store::new(
                    &self.engine,
                    ModuleHost {
                        wasi: wasi.build_p1(),
                        budget,
                    },
                );
                let _ticking = Ticking::start(tick).map_err(RunError::Timer)?;
                let outcome =
                    self.run_module(modules, store, &module, ticks, watchdog_ms, &mut timings);
                Ok((outcome, timings))
            }
            Linkers::Component(components) => {
                let loaded = sys::load_component(&self.engine, &verified);
                drop((verified, code));
                let component = match loaded {
                    Ok(component) => component,
                    Err(e) => return Ok((refused_load(&e), timings)),
                };
                timings.load = loading.elapsed();
                let opener: Box<dyn Opener> = match broker {
                    Some(fd) => Box::new(BrokerClient::new(Channel::from_fd(fd))),
                    None => Box::new(NoBroker),
                };
                // One broker socket, one conversation: devices and sockets share the opener.
                let opener = SharedOpener::new(opener);
                let devices = Devices::new(
                    Box::new(opener.clone()),
                    Box::new(StderrLog(stderr.p2_stream())),
                );
                let (net, http_hooks) = if self.network {
                    // One TLS client per run: the Mozilla roots and the device's (parsing
                    // only, no system call).
                    let tls = TlsClient::new(&request.tls_roots).map_err(RunError::Tls)?;
                    (
                        Net::brokered(opener.clone()),
                        HttpHooks::brokered(opener, tls),
                    )
                } else {
                    (Net::denied(), HttpHooks::denied())
                };
                let store = Store::new(
                    &self.engine,
                    ComponentHost {
                        wasi: wasi.build(),
                        table: ResourceTable::new(),
                        budget,
                        devices,
                        net,
                        http: WasiHttpCtx::new(),
                        http_hooks,
                    },
                );
                let _ticking = Ticking::start(tick).map_err(RunError::Timer)?;
                let outcome = self.run_component(
                    components,
                    store,
                    &component,
                    ticks,
                    watchdog_ms,
                    &mut timings,
                );
                Ok((outcome, timings))
            }
        }
    }

    fn run_module(
        &self,
        modules: &Linker<ModuleHost>,
        mut store: Store<ModuleHost>,
        module: &Module,
        ticks: u64,
        watchdog_ms: u64,
        timings: &mut Timings,
    ) -> Outcome {
        store.limiter(|host| &mut host.budget);
        watch(&mut store, ticks);
        let instantiating = Instant::now();
        let result = self.runtime.block_on(async {
            let instance = match modules.instantiate_async(&mut store, module).await {
                Ok(instance) => instance,
                Err(e) => return Err(Phase::Instantiate(e)),
            };
            let start = match instance.get_typed_func::<(), ()>(&mut store, "_start") {
                Ok(start) => start,
                Err(e) => return Err(Phase::NotACommand(outcome::message(&e))),
            };
            timings.instantiate = instantiating.elapsed();
            let executing = Instant::now();
            let result = start.call_async(&mut store, ()).await;
            timings.execute = executing.elapsed();
            result.map_err(Phase::Run)
        });
        let cx = Context {
            budget: &store.data().budget,
            watchdog_ms,
        };
        conclude(result.map(|()| 0), &cx)
    }

    fn run_component(
        &self,
        components: &wasmtime::component::Linker<ComponentHost>,
        mut store: Store<ComponentHost>,
        component: &Component,
        ticks: u64,
        watchdog_ms: u64,
        timings: &mut Timings,
    ) -> Outcome {
        store.limiter(|host| &mut host.budget);
        watch(&mut store, ticks);
        let instantiating = Instant::now();
        let result = self.runtime.block_on(async {
            let command = match Command::instantiate_async(&mut store, component, components).await
            {
                Ok(command) => command,
                Err(e) => return Err(Phase::Instantiate(e)),
            };
            timings.instantiate = instantiating.elapsed();
            let executing = Instant::now();
            let result = command.wasi_cli_run().call_run(&mut store).await;
            timings.execute = executing.elapsed();
            match result {
                Ok(Ok(())) => Ok(0),
                Ok(Err(())) => Ok(1),
                Err(e) => Err(Phase::Run(e)),
            }
        });
        let cx = Context {
            budget: &store.data().budget,
            watchdog_ms,
        };
        conclude(result, &cx)
    }
}

/// Where a run stopped short of a normal return.
enum Phase {
    Instantiate(wasmtime::Error),
    NotACommand(String),
    Run(wasmtime::Error),
}

fn conclude(result: Result<i32, Phase>, cx: &Context<'_>) -> Outcome {
    match result {
        Ok(code) => outcome::exited(code, cx),
        Err(Phase::Instantiate(e)) => outcome::after_instantiation_error(&e, cx),
        Err(Phase::NotACommand(message)) => Outcome::LoadRefused {
            reason: format!("the module is not a WASI command (no `_start`): {message}"),
        },
        Err(Phase::Run(e)) => outcome::after_error(&e, cx),
    }
}

fn refused_load(error: &wasmtime::Error) -> Outcome {
    Outcome::LoadRefused {
        reason: format!(
            "wasmtime refused the precompiled code: {}",
            outcome::message(error)
        ),
    }
}

/// Arms the watchdog on `store`: the deadline is `ticks` ahead now, and again every time a
/// host call returns to WebAssembly. Reaching it traps with `Trap::Interrupt`.
fn watch<T: 'static>(store: &mut Store<T>, ticks: u64) {
    store.epoch_deadline_trap();
    store.set_epoch_deadline(ticks);
    store.call_hook(move |mut store, hook| {
        if matches!(hook, CallHook::ReturningFromHost) {
            store.set_epoch_deadline(ticks);
        }
        Ok(())
    });
}
