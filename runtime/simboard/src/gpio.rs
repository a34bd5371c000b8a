//! Simulated GPIO lines: a level the outside world holds (a button, a pull resistor), and,
//! while an app drives the line as an output, the level the app drives. One worker holds a
//! line at a time, like a Linux line request.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use warden_ipc::broker::{Access, Denial, Detail, GpioMode};
use warden_ipc::sim::{SimReply, SimRequest};

use crate::SimBoardError;
use crate::serve::{self, Handler, invalid, lock, peer_gone, wrong_kind};

/// Edges kept per line for waiters, as the kernel's per-line event buffer keeps 16: a waiter
/// gets edges that happened since its previous wait, and the oldest are lost beyond this.
const EDGE_QUEUE: usize = 16;

/// How often an edge wait looks whether its worker went away, so a dead worker's line is
/// released promptly rather than at the end of its (up to 60 s) timeout.
const HANGUP_CHECK: Duration = Duration::from_millis(50);

/// Which way a line goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Input,
    Output,
}

/// One GPIO line as [`crate::SimBoard::view`] shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpioView {
    pub peripheral: String,
    /// The board file's line number, if it gives one.
    pub line: Option<u32>,
    /// The line's level: what the app drives, else what the outside world holds.
    pub high: bool,
    pub direction: Direction,
    /// The app whose worker holds the line open.
    pub owner: Option<String>,
    /// Edges the outside world made on the line since the board started.
    pub edges: u64,
}

#[derive(Debug)]
pub(crate) struct GpioLine {
    peripheral: String,
    line: Option<u32>,
    state: Mutex<LineState>,
    changed: Condvar,
}

#[derive(Debug)]
struct LineState {
    /// What the outside world holds the line at (the board file's `Initial` until driven).
    outside: bool,
    /// What the owning app drives, while the line is an output.
    driven: Option<bool>,
    owner: Option<Owner>,
    /// The last edges, oldest first.
    edges: VecDeque<Edge>,
    /// Sequence number the next edge gets.
    next_edge: u64,
    next_token: u64,
}

#[derive(Debug)]
struct Owner {
    app: String,
    /// Tells this owner's serving thread apart from a later one.
    token: u64,
    /// A duplicate of the board's end of the owner's socket: `open` polls it to see whether
    /// the owner's worker is already gone while its thread has not noticed yet.
    probe: OwnedFd,
}

#[derive(Clone, Copy, Debug)]
struct Edge {
    seq: u64,
    rising: bool,
}

impl LineState {
    fn level(&self) -> bool {
        self.driven.unwrap_or(self.outside)
    }
}

impl GpioLine {
    pub(crate) fn new(peripheral: &str, line: Option<u32>, initial_high: bool) -> GpioLine {
        GpioLine {
            peripheral: peripheral.to_owned(),
            line,
            state: Mutex::new(LineState {
                outside: initial_high,
                driven: None,
                owner: None,
                edges: VecDeque::with_capacity(EDGE_QUEUE),
                next_edge: 0,
                next_token: 0,
            }),
            changed: Condvar::new(),
        }
    }

    /// Gives `app`'s worker the line, or `Busy` while another worker holds it.
    pub(crate) fn open(
        self: &Arc<Self>,
        app: &str,
        mode: GpioMode,
    ) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let (board_end, worker_end) = serve::pair(&self.peripheral)?;
        let probe = board_end.as_fd().try_clone_to_owned().map_err(|e| {
            Denial::Io(format!(
                "cannot duplicate the socket of `{}`: {e}",
                self.peripheral
            ))
        })?;
        let handler = {
            let mut state = lock(&self.state);
            if let Some(owner) = &state.owner
                && !peer_gone(owner.probe.as_fd())
            {
                return Err(Denial::Busy(format!(
                    "`{}` is held by app `{}`",
                    self.peripheral, owner.app
                )));
            }
            // Either free, or its last owner's worker is gone and its thread is about to
            // notice: the line is taken over, and that thread's release will not match.
            let token = state.next_token;
            state.next_token = state.next_token.wrapping_add(1);
            state.owner = Some(Owner {
                app: app.to_owned(),
                token,
                probe,
            });
            state.driven = match mode {
                GpioMode::Output { initial_high } => Some(initial_high),
                GpioMode::Input | GpioMode::InOut => None,
            };
            self.changed.notify_all();
            LineHandler {
                line: Arc::clone(self),
                token,
                in_out: mode == GpioMode::InOut,
                seen: state.next_edge,
            }
        };
        // Outside the lock: a failed spawn drops the handler, whose release takes the lock.
        serve::start(&self.peripheral, board_end, handler)?;
        Ok((
            Access::Sim {
                detail: Detail::Gpio,
            },
            serve::worker_fd(worker_end),
        ))
    }

    pub(crate) fn level(&self) -> bool {
        lock(&self.state).level()
    }

    /// The outside world holds the line at `high`.
    pub(crate) fn drive(&self, high: bool) -> Result<(), SimBoardError> {
        let mut state = lock(&self.state);
        if state.driven.is_some() {
            return Err(SimBoardError::DrivenByApp {
                peripheral: self.peripheral.clone(),
                app: state
                    .owner
                    .as_ref()
                    .map(|o| o.app.clone())
                    .unwrap_or_default(),
            });
        }
        if state.outside != high {
            state.outside = high;
            let seq = state.next_edge;
            state.next_edge = seq.wrapping_add(1);
            if state.edges.len() == EDGE_QUEUE {
                state.edges.pop_front();
            }
            state.edges.push_back(Edge { seq, rising: high });
            self.changed.notify_all();
        }
        Ok(())
    }

    pub(crate) fn view(&self) -> GpioView {
        let state = lock(&self.state);
        GpioView {
            peripheral: self.peripheral.clone(),
            line: self.line,
            high: state.level(),
            direction: if state.driven.is_some() {
                Direction::Output
            } else {
                Direction::Input
            },
            owner: state.owner.as_ref().map(|o| o.app.clone()),
            edges: state.next_edge,
        }
    }
}

/// One worker's hold on a line.
struct LineHandler {
    line: Arc<GpioLine>,
    token: u64,
    /// Opened as an in-out pin: may switch direction.
    in_out: bool,
    /// Edges with a sequence number below this were already seen by this worker.
    seen: u64,
}

impl LineHandler {
    fn peripheral(&self) -> &str {
        &self.line.peripheral
    }

    fn wait_edge(
        &mut self,
        rising: Option<bool>,
        timeout: Duration,
        peer: BorrowedFd<'_>,
    ) -> SimReply {
        let deadline = Instant::now() + timeout;
        let mut state = lock(&self.line.state);
        if state.driven.is_some() {
            return invalid(format!(
                "`{}` is an output: only an input waits for edges",
                self.peripheral()
            ));
        }
        loop {
            let found = state
                .edges
                .iter()
                .find(|e| e.seq >= self.seen && rising.is_none_or(|r| r == e.rising))
                .copied();
            // Edges of the other kind are consumed too: the wait asked not to see them.
            self.seen = match found {
                Some(edge) => edge.seq.wrapping_add(1),
                None => state.next_edge,
            };
            if let Some(edge) = found {
                return SimReply::Edge(Some(edge.rising));
            }
            let now = Instant::now();
            if now >= deadline {
                return SimReply::Edge(None);
            }
            let slice = (deadline - now).min(HANGUP_CHECK);
            state = self
                .line
                .changed
                .wait_timeout(state, slice)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
            if peer_gone(peer) {
                // Nobody will read the answer; end the wait so the thread can release.
                return SimReply::Edge(None);
            }
        }
    }
}

impl Handler for LineHandler {
    fn handle(&mut self, request: SimRequest, peer: BorrowedFd<'_>) -> SimReply {
        match request {
            SimRequest::GpioGet => SimReply::Level(lock(&self.line.state).level()),
            SimRequest::GpioSet { high } => {
                let mut state = lock(&self.line.state);
                if state.driven.is_none() {
                    return invalid(format!(
                        "`{}` is an input: only an output is set",
                        self.peripheral()
                    ));
                }
                state.driven = Some(high);
                SimReply::Done
            }
            SimRequest::GpioDirection { output } => {
                if !self.in_out {
                    return invalid(format!(
                        "`{}` was not opened as an in-out pin: its direction is fixed",
                        self.peripheral()
                    ));
                }
                let mut state = lock(&self.line.state);
                if state.driven.is_none() && output.is_none() {
                    return SimReply::Done;
                }
                if output.is_none() {
                    // Back to input: edges made while it was an output were not for this wait.
                    self.seen = state.next_edge;
                }
                state.driven = output;
                SimReply::Done
            }
            SimRequest::GpioWaitEdge { rising, timeout_ms } => {
                self.wait_edge(rising, Duration::from_millis(u64::from(timeout_ms)), peer)
            }
            other => wrong_kind(self.peripheral(), "a GPIO line", &other),
        }
    }
}

impl Drop for LineHandler {
    fn drop(&mut self) {
        let mut state = lock(&self.line.state);
        if state.owner.as_ref().is_some_and(|o| o.token == self.token) {
            // Released lines float back to what the outside world holds, as a freed line
            // request leaves the pin to its pull.
            state.owner = None;
            state.driven = None;
            self.line.changed.notify_all();
        }
    }
}
