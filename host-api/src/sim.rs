//! A simulated resource: one request, one reply over the descriptor the broker granted
//! (`warden_ipc::sim`), the board's refusals mapped to the WIT error.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::PollFlags;
use warden_ipc::Channel;
use warden_ipc::sim::{BusOp, SimReply, SimRequest};

use crate::bindings::warden::device::types::Error;
use crate::error::{self, io};
use crate::linux::wait_for;

/// How long the board may take beyond the time a request itself allows (an edge wait, SPI
/// delays). The board answers at once otherwise; a board that does not answer at all must not
/// hold the app in the host forever.
const GRACE: Duration = Duration::from_secs(10);

/// The worker's end of one simulated resource's socket pair.
#[derive(Debug)]
pub(crate) struct SimLink {
    label: String,
    channel: Channel,
    /// Why the link can no longer be used: once a reply is late or unreadable, the next reply
    /// read could be the late one, so every later call fails.
    broken: Option<String>,
}

impl SimLink {
    pub(crate) fn new(label: String, fd: OwnedFd) -> SimLink {
        SimLink {
            label,
            channel: Channel::from_fd(fd),
            broken: None,
        }
    }

    /// Sends `request` (checked against the protocol's bounds first, as the board checks it)
    /// and returns the board's reply; the board's `error` reply is the matching WIT error.
    pub(crate) fn call(&mut self, request: SimRequest) -> Result<SimReply, Error> {
        request.validate().map_err(error::from_sim)?;
        if let Some(why) = &self.broken {
            return Err(io(format!(
                "{}: the simulated board's link is unusable since an earlier failure: {why}",
                self.label
            )));
        }
        let deadline = Instant::now() + allowed(&request) + GRACE;
        if let Err(e) = self.channel.send(&request, &[]) {
            return Err(self.fail(format!("cannot send to the simulated board: {e}")));
        }
        match wait_for(self.channel.as_fd(), PollFlags::IN, Some(deadline)) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(self.fail(format!(
                    "the simulated board did not answer within {} s",
                    (allowed(&request) + GRACE).as_secs()
                )));
            }
            Err(e) => return Err(self.fail(format!("waiting for the simulated board: {e}"))),
        }
        let (reply, fds) = match self.channel.recv::<SimReply>() {
            Ok(received) => received,
            Err(e) => return Err(self.fail(format!("no answer from the simulated board: {e}"))),
        };
        if !fds.is_empty() {
            return Err(io(format!(
                "{}: the simulated board attached {} descriptor(s) to a reply",
                self.label,
                fds.len()
            )));
        }
        match reply {
            SimReply::Error(e) => Err(error::from_sim(e)),
            reply => Ok(reply),
        }
    }

    /// The error for a reply of the wrong shape for `request`.
    pub(crate) fn unexpected(&self, reply: &SimReply, request: &str) -> Error {
        io(format!(
            "{}: the simulated board answered {reply:?} to {request}",
            self.label
        ))
    }

    fn fail(&mut self, why: String) -> Error {
        let error = io(format!("{}: {why}", self.label));
        self.broken = Some(why);
        error
    }
}

/// The time a request may take by itself.
fn allowed(request: &SimRequest) -> Duration {
    match request {
        SimRequest::GpioWaitEdge { timeout_ms, .. } => {
            Duration::from_millis(u64::from(*timeout_ms))
        }
        SimRequest::Spi { ops } => Duration::from_micros(
            ops.iter()
                .map(|op| match op {
                    BusOp::DelayUs(us) => u64::from(*us),
                    _ => 0,
                })
                .sum(),
        ),
        _ => Duration::ZERO,
    }
}

/// The buffers a bus transaction's `Data` reply must hold: one per `Read` and `Transfer`, of
/// their lengths, in order.
pub(crate) fn expected_reads(ops: &[BusOp]) -> Vec<usize> {
    ops.iter()
        .filter_map(|op| match op {
            BusOp::Read(len) => Some(usize::try_from(*len).unwrap_or(usize::MAX)),
            BusOp::Transfer(bytes) => Some(bytes.len()),
            BusOp::Write(_) | BusOp::DelayUs(_) => None,
        })
        .collect()
}

/// Runs a bus transaction (I2C or SPI) on the board and checks the reply's shape: a buffer of
/// the right length for every read and transfer (`Done` when there is none).
pub(crate) fn bus(link: &mut SimLink, request: SimRequest) -> Result<Vec<Vec<u8>>, Error> {
    let expected = match &request {
        SimRequest::I2c { ops, .. } | SimRequest::Spi { ops } => expected_reads(ops),
        _ => Vec::new(),
    };
    let what = match &request {
        SimRequest::I2c { .. } => "an I2C transaction",
        _ => "an SPI transaction",
    };
    match link.call(request)? {
        SimReply::Done if expected.is_empty() => Ok(Vec::new()),
        SimReply::Data(buffers)
            if buffers.len() == expected.len()
                && buffers
                    .iter()
                    .zip(&expected)
                    .all(|(b, len)| b.len() == *len) =>
        {
            Ok(buffers)
        }
        other => Err(link.unexpected(&other, what)),
    }
}

/// Checks a transaction against the protocol's bounds, the same for every backend, so an app
/// sees the same limits on the simulated board and on a real one.
pub(crate) fn check(request: &SimRequest) -> Result<(), Error> {
    request.validate().map_err(error::from_sim)
}
