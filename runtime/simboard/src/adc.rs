//! The simulated ADC: each channel samples the raw value the outside world set (0 until
//! set). Shared: several workers may hold it open.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use warden_ipc::broker::{Access, Denial, Detail};
use warden_ipc::sim::{SimReply, SimRequest};

use crate::SimBoardError;
use crate::serve::{self, Handler, HolderGuard, Holders, invalid, lock, wrong_kind};

/// One ADC as [`crate::SimBoard::view`] shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdcView {
    pub peripheral: String,
    pub bits: u8,
    pub reference_millivolts: u64,
    /// The raw value each channel samples, by channel.
    pub raw: Vec<u32>,
    pub open_by: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Adc {
    peripheral: String,
    bits: u8,
    reference_millivolts: u64,
    raw: Mutex<Vec<u32>>,
    holders: Arc<Holders>,
}

impl Adc {
    pub(crate) fn new(peripheral: &str, channels: u32, bits: u8, reference_millivolts: u64) -> Adc {
        Adc {
            peripheral: peripheral.to_owned(),
            bits,
            reference_millivolts,
            raw: Mutex::new(vec![0; usize::try_from(channels).unwrap_or(0)]),
            holders: Arc::default(),
        }
    }

    fn channels(&self) -> u32 {
        u32::try_from(lock(&self.raw).len()).unwrap_or(u32::MAX)
    }

    /// Largest raw value: 2^bits - 1.
    fn max(&self) -> u64 {
        (1u64 << self.bits.min(32)) - 1
    }

    pub(crate) fn open(self: &Arc<Self>, app: &str) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let reference_microvolts = u32::try_from(self.reference_millivolts.saturating_mul(1000))
            .map_err(|_| {
                Denial::Io(format!(
                    "`{}`: a reference of {} mV does not fit the grant",
                    self.peripheral, self.reference_millivolts
                ))
            })?;
        let detail = Detail::Adc {
            channels: self.channels(),
            bits: u32::from(self.bits),
            reference_microvolts,
        };
        let (board_end, worker_end) = serve::pair(&self.peripheral)?;
        let handler = AdcHandler {
            adc: Arc::clone(self),
            _holder: self.holders.enter(app),
        };
        serve::start(&self.peripheral, board_end, handler)?;
        Ok((Access::Sim { detail }, serve::worker_fd(worker_end)))
    }

    pub(crate) fn set(&self, channel: u32, raw: u32) -> Result<(), SimBoardError> {
        if u64::from(raw) > self.max() {
            return Err(SimBoardError::RawOutOfRange {
                peripheral: self.peripheral.clone(),
                raw,
                bits: self.bits,
                max: self.max(),
            });
        }
        let mut values = lock(&self.raw);
        let channels = u32::try_from(values.len()).unwrap_or(u32::MAX);
        let slot = usize::try_from(channel)
            .ok()
            .and_then(|c| values.get_mut(c))
            .ok_or_else(|| SimBoardError::NoChannel {
                peripheral: self.peripheral.clone(),
                channel,
                channels,
            })?;
        *slot = raw;
        Ok(())
    }

    pub(crate) fn view(&self) -> AdcView {
        AdcView {
            peripheral: self.peripheral.clone(),
            bits: self.bits,
            reference_millivolts: self.reference_millivolts,
            raw: lock(&self.raw).clone(),
            open_by: self.holders.apps(),
        }
    }
}

struct AdcHandler {
    adc: Arc<Adc>,
    _holder: HolderGuard,
}

impl Handler for AdcHandler {
    fn handle(&mut self, request: SimRequest, _peer: BorrowedFd<'_>) -> SimReply {
        let SimRequest::AdcSample { channel } = request else {
            return wrong_kind(&self.adc.peripheral, "an ADC", &request);
        };
        let values = lock(&self.adc.raw);
        match usize::try_from(channel).ok().and_then(|c| values.get(c)) {
            Some(&raw) => SimReply::Sample(raw),
            None => invalid(format!(
                "`{}` has {} channel(s): there is no channel {channel}",
                self.adc.peripheral,
                values.len()
            )),
        }
    }
}
