//! What the supervisor and a worker say to each other, and how.
//!
//! **Transport**: one `AF_UNIX`/`SOCK_SEQPACKET` socket pair per worker. Sequenced packets keep
//! message boundaries, so every [`Channel::send`] is exactly one [`Channel::recv`]: no framing
//! code, no partial reads. A message is one JSON document of at most [`MAX_MESSAGE`] bytes
//! with at most [`MAX_FDS`] file descriptors attached (`SCM_RIGHTS`). A truncated message or
//! truncated descriptor list is an error, never silently shortened; received descriptors are
//! close-on-exec.
//!
//! **Conversation** (protocol version [`PROTOCOL_VERSION`]):
//!
//! ```text
//! supervisor                                   worker (fresh namespaces, still root)
//!   ── ToWorker::Confine(plan) [+ storage dir fd] ──▶
//!                                                confines itself in the documented order
//!   ◀── FromWorker::Confined(report) ──
//!   ── ToWorker::Run(request) [code, stdout, stderr fds] ──▶     (or Compile [in, out])
//!                                                loads the code only if its SHA-256 matches
//!   ◀── FromWorker::Outcome(outcome) ──            (or Compiled)
//!                                                exits
//! ```
//!
//! A worker that cannot go on says [`FromWorker::Failed`] with the stage, then exits non-zero.
//!
//! While an app runs, its worker asks for devices on a second socket ([`broker`]); resources
//! of the simulated board speak [`sim`] over the descriptors the broker hands out.
#![forbid(unsafe_code)]

pub mod broker;
mod channel;
pub mod intercore;
mod messages;
pub mod sim;

pub use channel::{Channel, IpcError, MAX_FDS, MAX_MESSAGE};
pub use messages::{
    CodeKind, CompileRequest, ConfinePlan, ConfinementReport, Frame, FromWorker, MAX_TLS_ROOTS,
    MAX_TLS_ROOTS_BYTES, Outcome, PROTOCOL_VERSION, Rlimits, RunRequest, SeccompProfile,
    StepReport, ToWorker,
};
