//! The simulated PWM controller: it records the state an app applied to each channel, for the
//! outside world to read. Shared: several workers may hold it open.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use warden_ipc::broker::{Access, Denial, Detail};
use warden_ipc::sim::{PwmState, SimReply, SimRequest};

use crate::SimBoardError;
use crate::serve::{self, Handler, HolderGuard, Holders, invalid, lock, wrong_kind};

/// One PWM controller as [`crate::SimBoard::view`] shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PwmView {
    pub peripheral: String,
    /// The last state applied to each channel, by channel (`None`: never applied).
    pub channels: Vec<Option<PwmState>>,
    pub open_by: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Pwm {
    peripheral: String,
    states: Mutex<Vec<Option<PwmState>>>,
    holders: Arc<Holders>,
}

impl Pwm {
    pub(crate) fn new(peripheral: &str, channels: u32) -> Pwm {
        Pwm {
            peripheral: peripheral.to_owned(),
            states: Mutex::new(vec![None; usize::try_from(channels).unwrap_or(0)]),
            holders: Arc::default(),
        }
    }

    pub(crate) fn open(self: &Arc<Self>, app: &str) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let channels = u32::try_from(lock(&self.states).len()).unwrap_or(u32::MAX);
        let (board_end, worker_end) = serve::pair(&self.peripheral)?;
        let handler = PwmHandler {
            pwm: Arc::clone(self),
            _holder: self.holders.enter(app),
        };
        serve::start(&self.peripheral, board_end, handler)?;
        Ok((
            Access::Sim {
                detail: Detail::Pwm { channels },
            },
            serve::worker_fd(worker_end),
        ))
    }

    pub(crate) fn state(&self, channel: u32) -> Result<Option<PwmState>, SimBoardError> {
        let states = lock(&self.states);
        usize::try_from(channel)
            .ok()
            .and_then(|c| states.get(c))
            .copied()
            .ok_or_else(|| SimBoardError::NoChannel {
                peripheral: self.peripheral.clone(),
                channel,
                channels: u32::try_from(states.len()).unwrap_or(u32::MAX),
            })
    }

    pub(crate) fn view(&self) -> PwmView {
        PwmView {
            peripheral: self.peripheral.clone(),
            channels: lock(&self.states).clone(),
            open_by: self.holders.apps(),
        }
    }
}

struct PwmHandler {
    pwm: Arc<Pwm>,
    _holder: HolderGuard,
}

impl Handler for PwmHandler {
    fn handle(&mut self, request: SimRequest, _peer: BorrowedFd<'_>) -> SimReply {
        let SimRequest::PwmApply { channel, state } = request else {
            return wrong_kind(&self.pwm.peripheral, "a PWM controller", &request);
        };
        if state.duty_ns > state.period_ns {
            return invalid(format!(
                "a duty cycle of {} ns is longer than the period of {} ns",
                state.duty_ns, state.period_ns
            ));
        }
        let mut states = lock(&self.pwm.states);
        let channels = states.len();
        match usize::try_from(channel)
            .ok()
            .and_then(|c| states.get_mut(c))
        {
            Some(slot) => {
                *slot = Some(state);
                SimReply::Done
            }
            None => invalid(format!(
                "`{}` has {channels} channel(s): there is no channel {channel}",
                self.pwm.peripheral
            )),
        }
    }
}
