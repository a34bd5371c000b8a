//! The messages. Every type is strict (`deny_unknown_fields`): a supervisor and a worker of
//! different builds fail loudly instead of misreading each other.

use serde::{Deserialize, Serialize};

/// Bumped on any incompatible change; both sides send it in their first message.
pub const PROTOCOL_VERSION: u32 = 5;

/// Supervisor → worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ToWorker {
    /// Confine yourself. Attached: the app's storage directory, if `plan.storage`.
    Confine(ConfinePlan),
    /// Run the app. Attached, in order: the code (a sealed memfd or read-only file), stdout,
    /// stderr, and the broker socket if `request.broker`.
    Run(RunRequest),
    /// Compile WebAssembly into a precompiled artefact. Attached: input (wasm), output.
    Compile(CompileRequest),
}

/// Worker → supervisor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum FromWorker {
    Confined(ConfinementReport),
    Outcome(Outcome),
    Compiled {
        size: u64,
        sha256: String,
    },
    /// The worker cannot go on; it exits right after saying so.
    Failed {
        stage: String,
        message: String,
    },
}

/// Which seccomp allow-list the worker installs last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeccompProfile {
    /// Running an app without storage.
    Worker,
    /// Running an app with `MutableStorage`: adds the file-system calls on its directory.
    WorkerStorage,
    /// Running an app granted peripherals: adds the calls its device descriptors need.
    WorkerDevices,
    /// Both of the above.
    WorkerStorageDevices,
    /// Running an app granted network access (and perhaps peripherals): the device calls plus
    /// those a socket the broker passed needs (never `socket`, `connect` or `bind`), and the
    /// tokio I/O driver's `epoll`.
    WorkerNetwork,
    /// `WorkerNetwork` with `MutableStorage`.
    WorkerStorageNetwork,
    /// Compiling WebAssembly: no rights at all beyond its two descriptors.
    Compiler,
}

impl SeccompProfile {
    /// Whether the app this profile confines may hold sockets (the worker then builds the
    /// tokio I/O driver before seccomp, and `wasi:sockets` asks the broker).
    pub fn network(self) -> bool {
        matches!(
            self,
            SeccompProfile::WorkerNetwork | SeccompProfile::WorkerStorageNetwork
        )
    }
}

/// Resource limits the worker sets on itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rlimits {
    /// Most open descriptors.
    pub nofile: u64,
    /// Largest file the worker may write, in bytes (`RLIMIT_FSIZE`); `None`: unlimited.
    pub fsize_bytes: Option<u64>,
}

/// How the worker confines itself: everything but the fixed order, which is code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfinePlan {
    pub protocol: u32,
    /// The app's component id, for messages.
    pub app: String,
    /// The app's own uid and gid; never 0.
    pub uid: u32,
    pub gid: u32,
    pub rlimits: Rlimits,
    /// A storage directory descriptor is attached, and landlock grants it (and only it).
    pub storage: bool,
    pub seccomp: SeccompProfile,
    /// The kind of code the worker will run (`None` for a compiler): only that kind's WASI
    /// linker is built before seccomp, and a `Run` of another kind is refused.
    pub runs: Option<CodeKind>,
}

/// One confinement step and what it achieved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepReport {
    /// The step's name, as numbered in `docs/sandbox.md`.
    pub step: String,
    /// What applied, e.g. "fully enforced (ABI 7)" or "RLIMIT_NOFILE=64".
    pub detail: String,
    /// How long the step took, in microseconds.
    pub micros: u64,
}

/// What the worker achieved, step by step, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfinementReport {
    pub protocol: u32,
    pub steps: Vec<StepReport>,
}

/// The kind of code in a `Run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    /// A precompiled WebAssembly component (WASI 0.2 `wasi:cli/run`).
    Component,
    /// A precompiled WASI preview-1 command module (`_start`).
    Module,
}

/// Run one app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub kind: CodeKind,
    /// Lower-case hex SHA-256 the code's bytes must have; anything else is refused, not loaded.
    pub code_sha256: String,
    /// The code's length. The supervisor knows it (it sealed the descriptor against growing and
    /// shrinking), so the confined worker maps exactly this much without asking the kernel.
    pub code_bytes: u64,
    /// `argv[0]` first (the app's name), then the manifest's `CmdArgs`.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Most bytes of linear memory (and table elements' worth) the app may hold.
    pub memory_limit_bytes: u64,
    /// Longest the app may run WebAssembly without returning to the host.
    pub watchdog_ms: u64,
    /// `MutableStorage` quota; `None` when the app has no storage.
    pub storage_quota_bytes: Option<u64>,
    /// A broker socket is attached (fourth): the app is granted peripherals and asks for them
    /// there ([`crate::broker`]). Without it every device `open` is refused `not-granted`.
    pub broker: bool,
    /// Certificates (DER) the device trusts for `https` besides the Mozilla roots (`wardend
    /// --tls-roots`): given to an app that may use the network, empty for any other. Standard
    /// base64 on the wire; at most [`MAX_TLS_ROOTS`] certificates of at most
    /// [`MAX_TLS_ROOTS_BYTES`] together, so that a request still fits one message.
    #[serde(with = "der_list")]
    pub tls_roots: Vec<Vec<u8>>,
}

/// Most extra TLS root certificates a [`RunRequest`] carries.
pub const MAX_TLS_ROOTS: usize = 32;

/// Most bytes of DER the extra TLS roots of a [`RunRequest`] take together: 43 KiB as base64,
/// leaving more than 20 KiB of the 64 KiB message ([`crate::MAX_MESSAGE`]) to the rest of the
/// request (the app's arguments).
pub const MAX_TLS_ROOTS_BYTES: usize = 32 * 1024;

/// A list of DER blobs as a list of base64 strings: a JSON array of numbers would take up to
/// four bytes for each byte.
mod der_list {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(super) fn serialize<S: Serializer>(list: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let encoded: Vec<String> = list.iter().map(|der| STANDARD.encode(der)).collect();
        encoded.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .enumerate()
            .map(|(i, text)| {
                STANDARD
                    .decode(text)
                    .map_err(|e| D::Error::custom(format!("TLS root {}: {e}", i + 1)))
            })
            .collect()
    }
}

/// Compile WebAssembly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompileRequest {
    /// `None`: the host; otherwise a wasmtime target such as `pulley32`.
    pub target: Option<String>,
}

/// One frame of a WebAssembly backtrace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frame {
    pub module: Option<String>,
    pub func_index: u32,
    pub func_name: Option<String>,
    pub offset: Option<u32>,
}

/// How an app's run ended, as the worker saw it. (Deaths the worker cannot report — SIGSYS
/// from seccomp, SIGKILL from the kernel's OOM killer — the supervisor classifies from the
/// exit status.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// The app returned or called `exit`.
    Exited { code: i32 },
    /// A WebAssembly trap (unreachable, out-of-bounds access, stack overflow, …).
    Trapped {
        trap: String,
        message: String,
        backtrace: Vec<Frame>,
    },
    /// The watchdog fired: the app ran WebAssembly longer than `watchdog_ms` without yielding.
    Watchdog { watchdog_ms: u64 },
    /// The app asked for memory beyond its limit and could not go on.
    MemoryLimit {
        limit_bytes: u64,
        requested_bytes: u64,
    },
    /// The code was refused before any of it ran: wrong digest, foreign or damaged artefact.
    LoadRefused { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tls_roots: Vec<Vec<u8>>) -> RunRequest {
        RunRequest {
            kind: CodeKind::Component,
            code_sha256: "ab".repeat(32),
            code_bytes: 1,
            args: vec!["app".into(), "--verbose".into()],
            env: vec![],
            memory_limit_bytes: 1 << 20,
            watchdog_ms: 1000,
            storage_quota_bytes: None,
            broker: true,
            tls_roots,
        }
    }

    #[test]
    fn tls_roots_travel_as_base64_and_come_back_byte_for_byte() {
        let sent = request(vec![vec![0x30, 0x82, 0xff, 0x00], vec![], vec![7; 1000]]);
        let text = serde_json::to_string(&ToWorker::Run(sent.clone())).unwrap();
        assert!(text.contains(r#""tls_roots":["MIL/AA==","","#), "{text}");
        let back: ToWorker = serde_json::from_str(&text).unwrap();
        assert_eq!(back, ToWorker::Run(sent));
    }

    #[test]
    fn a_root_that_is_not_base64_is_refused_naming_it() {
        let text = serde_json::to_string(&ToWorker::Run(request(vec![vec![1]])))
            .unwrap()
            .replace("AQ==", "*not base64*");
        let error = serde_json::from_str::<ToWorker>(&text)
            .unwrap_err()
            .to_string();
        assert!(error.contains("TLS root 1"), "{error}");
    }

    #[test]
    fn the_most_roots_allowed_leave_room_in_one_message() {
        let each = MAX_TLS_ROOTS_BYTES / MAX_TLS_ROOTS;
        let roots = vec![vec![0xa5; each]; MAX_TLS_ROOTS];
        let text = serde_json::to_vec(&ToWorker::Run(request(roots))).unwrap();
        assert!(
            text.len() + 20 * 1024 < crate::MAX_MESSAGE,
            "{} bytes",
            text.len()
        );
    }
}
