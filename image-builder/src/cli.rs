//! Command-line syntax (clap derive) and dispatch to the command modules.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use warden_policy::keys::KeyRole;

#[derive(Debug, Parser)]
#[command(
    name = "warden",
    version,
    about = "Keys, trust stores, unlock tokens and signed packages for Warden devices"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create and inspect P-256 signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create, extend and show trust files.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Device operations: development unlock tokens, and a running device's control API.
    Device {
        #[command(flatten)]
        conn: crate::device_cmd::Connection,
        #[command(subcommand)]
        cmd: DeviceCommand,
    },
    /// The simulated board of a running device: see and drive its peripherals (the same as
    /// `warden device sim …`).
    Sim {
        #[command(flatten)]
        conn: crate::device_cmd::Connection,
        #[command(subcommand)]
        cmd: crate::device_cmd::SimApiCommand,
    },
    /// Pack, inspect and verify app packages.
    #[command(subcommand)]
    App(AppCommand),
    /// Pack, inspect and verify real-time core firmware packages.
    #[command(subcommand)]
    Rtcore(RtcoreCommand),
    /// Check hardware definitions and board files, and resolve a manifest against them.
    #[command(subcommand)]
    Hwdef(crate::hwdef_cmd::HwdefCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a key pair: NAME.key.pem (PKCS#8, mode 0600) and NAME.pub.pem (SPKI).
    New(KeysNewArgs),
    /// Show a key's id and kind (private or public).
    Show(KeysShowArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeysNewArgs {
    /// What the key will sign: root, app, rtcore, os, update-metadata or development.
    #[arg(long)]
    pub(crate) role: KeyRole,
    /// Directory for the key files (default: the current directory).
    #[arg(
        short = 'o',
        long = "out-dir",
        value_name = "DIR",
        conflicts_with = "out"
    )]
    pub(crate) out_dir: Option<PathBuf>,
    /// File name stem inside the output directory (default: the role).
    #[arg(long, conflicts_with = "out")]
    pub(crate) name: Option<String>,
    /// Path prefix of the key files: writes PREFIX.key.pem and PREFIX.pub.pem.
    #[arg(long, value_name = "PREFIX")]
    pub(crate) out: Option<PathBuf>,
    /// Replace existing key files.
    #[arg(long)]
    pub(crate) force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct KeysShowArgs {
    /// A private (PKCS#8) or public (SPKI) PEM key file.
    pub(crate) key: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
enum TrustCommand {
    /// Create a trust file anchored on a root key, with an empty key list (version 1).
    Init(TrustInitArgs),
    /// Add a key to a trust file, raising its version and re-signing it with the root key.
    Add(TrustAddArgs),
    /// Verify a trust file and list its keys.
    Show(TrustShowArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TrustInitArgs {
    /// The root private key (PKCS#8 PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) root_key: PathBuf,
    /// Where to write the trust file.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub(crate) out: PathBuf,
    /// A note stored with the root key.
    #[arg(long, default_value = "")]
    pub(crate) comment: String,
    /// Replace an existing file.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TrustAddArgs {
    /// The trust file to extend (rewritten in place, atomically).
    #[arg(long, value_name = "FILE")]
    pub(crate) trust: PathBuf,
    /// The root private key that anchors the trust file.
    #[arg(long, value_name = "FILE")]
    pub(crate) root_key: PathBuf,
    /// The public key to add (SPKI PEM).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// Its role: app, rtcore, os, update-metadata or development.
    #[arg(long)]
    pub(crate) role: KeyRole,
    /// A note stored with the key (who holds it, what for).
    #[arg(long, default_value = "")]
    pub(crate) comment: String,
}

#[derive(Debug, Args)]
pub(crate) struct TrustShowArgs {
    /// The trust file.
    #[arg(long, value_name = "FILE")]
    pub(crate) trust: PathBuf,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// Issue a development unlock token: one device, an expiry, and the development keys it
    /// honours there, signed by the root key.
    Unlock(UnlockArgs),
    #[command(flatten)]
    Api(crate::device_cmd::DeviceApiCommand),
}

#[derive(Debug, Args)]
pub(crate) struct UnlockArgs {
    /// The root private key.
    #[arg(long, value_name = "FILE")]
    pub(crate) root_key: PathBuf,
    /// The device's id, exactly as the device reports it.
    #[arg(long, value_name = "ID")]
    pub(crate) device_id: String,
    /// How long the token is valid: a number with s, m, h or d (default 7d).
    #[arg(long, value_name = "DURATION", conflicts_with = "expires")]
    pub(crate) valid_for: Option<String>,
    /// Expiry as unix seconds.
    #[arg(long, value_name = "UNIX")]
    pub(crate) expires: Option<u64>,
    /// A development public key (PEM file) or key id to honour; repeatable.
    #[arg(long = "dev-key", value_name = "FILE|ID")]
    pub(crate) dev_keys: Vec<String>,
    /// Honour every development key listed in this trust file (which must be anchored on the
    /// root key).
    #[arg(long, value_name = "FILE")]
    pub(crate) trust: Option<PathBuf>,
    /// Where to write the token.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub(crate) out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Subcommand)]
enum AppCommand {
    /// Create a new app project: sources in the chosen language and its app_manifest.json.
    New(AppNewArgs),
    /// Build an app project (Rust, C, Python, JavaScript or AssemblyScript) into WebAssembly.
    Build(AppBuildArgs),
    /// Run an app project on the simulated board, in the full sandbox, with its log on the
    /// terminal (needs root).
    Run(AppRunArgs),
    /// Build and sign an app package from a manifest and a WebAssembly component or module.
    Pack(AppPackArgs),
    /// Show a package's header. Without --trust the signature is NOT verified.
    Inspect(InspectArgs),
    /// Verify a package against a trust file: signer, signature, header, every payload.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AppNewArgs {
    /// The app's name: also its directory, package and output name (lower-case letters,
    /// digits and dashes, starting with a letter).
    pub(crate) name: String,
    /// The language to write it in.
    #[arg(long, value_enum)]
    pub(crate) lang: crate::build::Language,
    /// The directory to create it in (default: the current directory).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub(crate) dir: PathBuf,
    /// The SDK directory (default: $WARDEN_SDK, else the checkout's target/sdk beside this
    /// binary).
    #[arg(long, value_name = "DIR")]
    pub(crate) sdk: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct AppBuildArgs {
    /// The app project: a directory with app_manifest.json and the app's sources.
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,
    /// Where to write the WebAssembly (default: DIR/build/<file name of EntryPoint>).
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// The SDK directory (default: $WARDEN_SDK, else the checkout's target/sdk beside this
    /// binary).
    #[arg(long, value_name = "DIR")]
    pub(crate) sdk: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct AppRunArgs {
    /// Run on the simulated board: build the app, start wardend on the simulated board in a
    /// scratch directory, install it there and follow its log (required: on a device, use
    /// `warden device sideload`).
    #[arg(long)]
    pub(crate) sim: bool,
    /// The app project: a directory with app_manifest.json and the app's sources.
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,
    /// Stop after this many seconds (default: when the app exits, or Ctrl-C).
    #[arg(long = "for", value_name = "SECONDS")]
    pub(crate) seconds: Option<u64>,
    /// The board file (default: the checkout's simulated board).
    #[arg(long, value_name = "FILE")]
    pub(crate) board: Option<PathBuf>,
    /// A hosts table for the supervisor's name lookups (`ADDRESS NAME...` per line, like
    /// /etc/hosts), e.g. to point an `AllowedConnections` name at a server on this machine.
    #[arg(long, value_name = "FILE")]
    pub(crate) hosts: Option<PathBuf>,
    /// The SDK directory (default: $WARDEN_SDK, else the checkout's target/sdk beside this
    /// binary).
    #[arg(long, value_name = "DIR")]
    pub(crate) sdk: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum RtcoreCommand {
    /// Build and sign a real-time core package from a manifest and an ARM ELF executable.
    Pack(RtcorePackArgs),
    /// Show a package's header. Without --trust the signature is NOT verified.
    Inspect(InspectArgs),
    /// Verify a package against a trust file: signer, signature, header, every payload.
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CommonPackArgs {
    /// The app's app_manifest.json (stored verbatim in the package).
    #[arg(long, value_name = "FILE")]
    pub(crate) manifest: PathBuf,
    /// The signing private key (role app or rtcore, or development for unlocked devices).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// The package version: a positive integer, higher than any earlier release.
    #[arg(long)]
    pub(crate) version: u64,
    /// A resource payload NAME=PATH (NAME relative, e.g. data/config.json); repeatable.
    #[arg(long = "resource", value_name = "NAME=PATH")]
    pub(crate) resources: Vec<String>,
    /// Where to write the package.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub(crate) out: PathBuf,
    /// Replace an existing file.
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AppPackArgs {
    /// The entry payload: a WebAssembly component or core module.
    #[arg(long, value_name = "FILE")]
    pub(crate) wasm: PathBuf,
    /// Precompiled code TARGET=PATH[,engine=FINGERPRINT][,name=NAME]; repeatable.
    #[arg(long = "precompiled", value_name = "TARGET=PATH[,engine=...]")]
    pub(crate) precompiled: Vec<String>,
    #[command(flatten)]
    pub(crate) common: CommonPackArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RtcorePackArgs {
    /// The entry payload: a 32-bit little-endian ARM ELF executable.
    #[arg(long, value_name = "FILE")]
    pub(crate) elf: PathBuf,
    #[command(flatten)]
    pub(crate) common: CommonPackArgs,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The package file.
    pub(crate) package: PathBuf,
    /// Verify against this trust file instead of only reading the header.
    #[arg(long, value_name = "FILE")]
    pub(crate) trust: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The package file.
    pub(crate) package: PathBuf,
    /// The trust file to verify against.
    #[arg(long, value_name = "FILE")]
    pub(crate) trust: PathBuf,
    /// The device id, to honour a development unlock token.
    #[arg(long, value_name = "ID", requires = "unlock")]
    pub(crate) device_id: Option<String>,
    /// A development unlock token for that device.
    #[arg(long, value_name = "FILE", requires = "device_id")]
    pub(crate) unlock: Option<PathBuf>,
    /// Print the result as JSON (on failure too: {"ok": false, "error": ...}).
    #[arg(long)]
    pub(crate) json: bool,
}

pub(crate) fn dispatch(cli: Cli) -> anyhow::Result<()> {
    use crate::package_cmd::Kind;
    use crate::{keys_cmd, package_cmd, trust_cmd};
    match cli.command {
        Command::Keys(KeysCommand::New(a)) => keys_cmd::new(&a),
        Command::Keys(KeysCommand::Show(a)) => keys_cmd::show(&a),
        Command::Trust(TrustCommand::Init(a)) => trust_cmd::init(&a),
        Command::Trust(TrustCommand::Add(a)) => trust_cmd::add(&a),
        Command::Trust(TrustCommand::Show(a)) => trust_cmd::show(&a),
        Command::Device {
            conn,
            cmd: DeviceCommand::Unlock(a),
        } => {
            if conn.json || conn.socket.as_os_str() != crate::device_cmd::DEFAULT_SOCKET {
                anyhow::bail!(
                    "--socket and --json do not apply to `device unlock`, which works offline"
                );
            }
            trust_cmd::unlock(&a)
        }
        Command::Device {
            conn,
            cmd: DeviceCommand::Api(cmd),
        } => crate::device_cmd::run(&cmd, &conn),
        Command::Sim { conn, cmd } => {
            crate::device_cmd::run(&crate::device_cmd::DeviceApiCommand::Sim(cmd), &conn)
        }
        Command::App(AppCommand::New(a)) => crate::new_cmd::new(&a),
        Command::App(AppCommand::Build(a)) => {
            crate::build::build(&a.dir, a.out.as_deref(), a.sdk.as_deref()).map(|_| ())
        }
        Command::App(AppCommand::Run(a)) => crate::run_cmd::run(&a),
        Command::App(AppCommand::Pack(a)) => package_cmd::pack_app(&a),
        Command::App(AppCommand::Inspect(a)) => package_cmd::inspect(&a, Kind::App),
        Command::App(AppCommand::Verify(a)) => package_cmd::verify(&a, Kind::App),
        Command::Rtcore(RtcoreCommand::Pack(a)) => package_cmd::pack_rtcore(&a),
        Command::Rtcore(RtcoreCommand::Inspect(a)) => package_cmd::inspect(&a, Kind::Rtcore),
        Command::Rtcore(RtcoreCommand::Verify(a)) => package_cmd::verify(&a, Kind::Rtcore),
        Command::Hwdef(cmd) => crate::hwdef_cmd::run(&cmd),
    }
}
