//! The serving side of one opened simulated resource: a named thread that reads
//! [`SimRequest`]s from the board's end of the worker's socket pair, checks them and answers
//! each with one [`SimReply`], until the worker's end closes.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use warden_ipc::broker::Denial;
use warden_ipc::sim::{SimError, SimReply, SimRequest};
use warden_ipc::{Channel, IpcError};

/// Longest error text the board sends back. serde's messages can quote the offending input
/// (an unknown variant's name), which a hostile worker controls; bounding the text keeps every
/// reply far below the channel's 64 KiB packet limit.
const MAX_ERROR_TEXT: usize = 256;

/// One opened resource's request handler, owned by its serving thread. Dropping it (when the
/// worker's end closes, or if the thread unwinds) releases whatever the worker held.
pub(crate) trait Handler: Send + 'static {
    /// Answers one request that passed [`SimRequest::validate`]. `peer` is the board's end of
    /// the socket, so a long wait can notice that the worker went away.
    fn handle(&mut self, request: SimRequest, peer: BorrowedFd<'_>) -> SimReply;
}

/// A connected socket pair for one opened resource: (board end, worker end).
pub(crate) fn pair(peripheral: &str) -> Result<(Channel, Channel), Denial> {
    Channel::pair()
        .map_err(|e| Denial::Io(format!("cannot make a socket pair for `{peripheral}`: {e}")))
}

/// Serves `board_end` with `handler` on a thread of its own; the thread ends when the worker
/// closes its end.
pub(crate) fn start(
    peripheral: &str,
    board_end: Channel,
    handler: impl Handler,
) -> Result<(), Denial> {
    std::thread::Builder::new()
        .name(format!("sim {peripheral}"))
        .spawn(move || serve(&board_end, handler))
        .map(drop)
        .map_err(|e| {
            Denial::Io(format!(
                "cannot start the thread serving `{peripheral}`: {e}"
            ))
        })
}

fn serve(channel: &Channel, mut handler: impl Handler) {
    loop {
        let reply = match channel.recv::<SimRequest>() {
            Ok((_, fds)) if !fds.is_empty() => invalid(format!(
                "{} descriptor(s) attached to a request: simulated resources take none",
                fds.len()
            )),
            Ok((request, _)) => match request.validate() {
                Ok(()) => handler.handle(request, channel.as_fd()),
                Err(e) => SimReply::Error(bounded_error(e)),
            },
            // A malformed or oversized packet is consumed whole (SEQPACKET), so the next one
            // starts clean: answer it and keep serving, as the broker does.
            Err(IpcError::Malformed(why)) => invalid(format!("malformed request: {why}")),
            Err(IpcError::Truncated | IpcError::TooLarge { .. }) => invalid(format!(
                "a request larger than {} bytes (or with too many descriptors)",
                warden_ipc::MAX_MESSAGE
            )),
            Err(IpcError::Io(e)) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            // Closed, or the socket itself failed: nobody is left to answer.
            Err(_) => return,
        };
        if channel.send(&reply, &[]).is_err() {
            return;
        }
    }
}

/// An `InvalidArgument` reply with a bounded message.
pub(crate) fn invalid(message: String) -> SimReply {
    SimReply::Error(bounded_error(SimError::InvalidArgument(message)))
}

fn bounded_error(error: SimError) -> SimError {
    let cut = |m: String| {
        if m.len() <= MAX_ERROR_TEXT {
            return m;
        }
        let mut end = MAX_ERROR_TEXT;
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", m.get(..end).unwrap_or_default())
    };
    match error {
        SimError::InvalidArgument(m) => SimError::InvalidArgument(cut(m)),
        SimError::Io(m) => SimError::Io(cut(m)),
    }
}

/// The reply to a request meant for another kind of resource.
pub(crate) fn wrong_kind(peripheral: &str, what: &str, request: &SimRequest) -> SimReply {
    let op = match request {
        SimRequest::GpioSet { .. } => "gpio_set",
        SimRequest::GpioGet => "gpio_get",
        SimRequest::GpioDirection { .. } => "gpio_direction",
        SimRequest::GpioWaitEdge { .. } => "gpio_wait_edge",
        SimRequest::I2c { .. } => "i2c",
        SimRequest::Spi { .. } => "spi",
        SimRequest::AdcSample { .. } => "adc_sample",
        SimRequest::PwmApply { .. } => "pwm_apply",
    };
    invalid(format!(
        "`{peripheral}` is {what}: `{op}` does not apply to it"
    ))
}

/// Whether the worker closed its end of the socket whose board end is `fd`. A closed unix
/// socket peer shows as `POLLHUP`; a request waiting to be read does not count.
pub(crate) fn peer_gone(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::empty())];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => false,
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)),
        Err(_) => false,
    }
}

/// Locks `m` even if a serving thread panicked while holding it: the state behind every lock
/// here stays consistent between statements, and one broken worker must not take the control
/// API down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which apps hold a shared resource (I2C, SPI, ADC, PWM) open, for the view.
#[derive(Debug, Default)]
pub(crate) struct Holders {
    next: AtomicU64,
    open: Mutex<Vec<(u64, String)>>,
}

impl Holders {
    /// Records `app` as holding the resource until the returned guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>, app: &str) -> HolderGuard {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        lock(&self.open).push((token, app.to_owned()));
        HolderGuard {
            holders: Arc::clone(self),
            token,
        }
    }

    pub(crate) fn apps(&self) -> Vec<String> {
        lock(&self.open)
            .iter()
            .map(|(_, app)| app.clone())
            .collect()
    }
}

/// Removes its app from [`Holders`] when the serving thread ends.
#[derive(Debug)]
pub(crate) struct HolderGuard {
    holders: Arc<Holders>,
    token: u64,
}

impl Drop for HolderGuard {
    fn drop(&mut self) {
        lock(&self.holders.open).retain(|(t, _)| *t != self.token);
    }
}

/// The worker's end of a pair, as `open` hands it out.
pub(crate) fn worker_fd(worker_end: Channel) -> Vec<OwnedFd> {
    vec![worker_end.into_fd()]
}
