//! Simulated I2C and SPI buses: emulated devices by address (I2C) or chip select (SPI), and a
//! bounded log of recent transactions so tests and developers can see what apps did.
//!
//! Buses are shared: several workers may hold one open (as several processes may open one
//! i2c-dev bus); each transaction runs under the bus lock, so transactions never interleave.
//! An SPI transaction releases the lock only while it sleeps for a `DelayUs`, so a worker
//! cannot stall the control API or other apps for up to the 16 s a request may ask to hold.

use std::collections::{BTreeMap, VecDeque};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use warden_ipc::broker::{Access, Denial, Detail};
use warden_ipc::sim::{BusOp, SimError, SimReply, SimRequest};

use crate::SimBoardError;
use crate::models::{Device, I2C_MODELS, SPI_MODELS, SpiCursor};
use crate::serve::{self, Handler, HolderGuard, Holders, invalid, lock, wrong_kind};

/// Transactions kept per bus for [`crate::SimBoard::bus_log`]; older ones are dropped.
pub const BUS_LOG: usize = 256;

/// Bytes of each buffer kept in a logged transaction (its full length is logged beside).
pub const LOG_BYTES: usize = 128;

/// Most bytes one transaction may return. The reply must fit one channel packet, and JSON
/// spends up to four characters on a byte (`255,`); the rest of the packet is headroom for
/// the framing. The wire protocol alone would allow 16 reads of 4 KiB, whose reply could
/// never be sent, so such a request is refused before it touches a device.
pub const MAX_REPLY_BYTES: usize = (warden_ipc::MAX_MESSAGE - 1024) / 4;

/// One logged bus transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusEvent {
    /// Increasing per bus, from 0.
    pub seq: u64,
    /// The app whose worker made it.
    pub app: String,
    /// The I2C address, or the SPI chip select.
    pub target: u16,
    pub ops: Vec<BusRecord>,
    /// Why it failed (a NACK), if it did.
    pub error: Option<String>,
}

/// One operation of a logged transaction. `data`, `wrote` and `read` keep at most
/// [`LOG_BYTES`] bytes; `len` is the whole length.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BusRecord {
    Write {
        data: Vec<u8>,
        len: u32,
    },
    Read {
        data: Vec<u8>,
        len: u32,
    },
    Transfer {
        wrote: Vec<u8>,
        read: Vec<u8>,
        len: u32,
    },
    DelayUs {
        us: u32,
    },
}

/// One emulated device, as the view shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceView {
    /// The I2C address, or the SPI chip select.
    pub target: u16,
    pub model: String,
    /// What it senses now (see [`crate::SimBoard::sensor_set`]).
    pub quantities: BTreeMap<String, f64>,
}

/// One bus as [`crate::SimBoard::view`] shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BusView {
    pub peripheral: String,
    pub devices: Vec<DeviceView>,
    /// Transactions since the board started.
    pub transactions: u64,
    /// Apps whose workers hold the bus open, once per open handle.
    pub open_by: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BusKind {
    I2c,
    Spi,
}

#[derive(Debug)]
pub(crate) struct Bus {
    peripheral: String,
    kind: BusKind,
    state: Mutex<BusState>,
    holders: Arc<Holders>,
}

#[derive(Debug)]
struct BusState {
    devices: BTreeMap<u16, Device>,
    log: VecDeque<BusEvent>,
    next_seq: u64,
}

impl Bus {
    /// A bus with `devices` as (address or chip select, model name).
    pub(crate) fn new(
        peripheral: &str,
        kind: BusKind,
        devices: impl IntoIterator<Item = (u16, String)>,
    ) -> Result<Bus, SimBoardError> {
        let mut map = BTreeMap::new();
        for (target, model) in devices {
            let device = match kind {
                BusKind::I2c => Device::i2c(&model),
                BusKind::Spi => Device::spi(&model),
            };
            let Some(device) = device else {
                let (bus, known) = match kind {
                    BusKind::I2c => ("I2C", I2C_MODELS),
                    BusKind::Spi => ("SPI", SPI_MODELS),
                };
                return Err(SimBoardError::UnknownModel {
                    peripheral: peripheral.to_owned(),
                    bus,
                    model,
                    target: describe(kind, target),
                    known: known.join(", "),
                });
            };
            map.insert(target, device);
        }
        Ok(Bus {
            peripheral: peripheral.to_owned(),
            kind,
            state: Mutex::new(BusState {
                devices: map,
                log: VecDeque::with_capacity(BUS_LOG),
                next_seq: 0,
            }),
            holders: Arc::default(),
        })
    }

    /// Opens the bus for `app`'s worker. For SPI, `chip_select` picks the device (`None`: the
    /// lowest chip select on the bus).
    pub(crate) fn open(
        self: &Arc<Self>,
        app: &str,
        chip_select: Option<u16>,
    ) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let detail = match self.kind {
            BusKind::I2c => Detail::I2c,
            BusKind::Spi => Detail::Spi,
        };
        let target = match (self.kind, chip_select) {
            (BusKind::I2c, _) => 0,
            (BusKind::Spi, Some(cs)) => {
                if !lock(&self.state).devices.contains_key(&cs) {
                    return Err(Denial::UnknownName(format!(
                        "`{}` has no device on chip select {cs}",
                        self.peripheral
                    )));
                }
                cs
            }
            // An empty bus still opens: nothing drives MISO, so reads see 0xFF.
            (BusKind::Spi, None) => lock(&self.state)
                .devices
                .keys()
                .next()
                .copied()
                .unwrap_or(0),
        };
        let (board_end, worker_end) = serve::pair(&self.peripheral)?;
        let handler = BusHandler {
            bus: Arc::clone(self),
            app: app.to_owned(),
            chip_select: target,
            _holder: self.holders.enter(app),
        };
        serve::start(&self.peripheral, board_end, handler)?;
        Ok((Access::Sim { detail }, serve::worker_fd(worker_end)))
    }

    pub(crate) fn sensor_set(
        &self,
        target: u16,
        quantity: &str,
        value: f64,
    ) -> Result<(), SimBoardError> {
        let mut state = lock(&self.state);
        let Some(device) = state.devices.get_mut(&target) else {
            return Err(SimBoardError::NoDevice {
                peripheral: self.peripheral.clone(),
                target: describe(self.kind, target),
            });
        };
        if !value.is_finite() {
            return Err(SimBoardError::NotFinite {
                peripheral: self.peripheral.clone(),
                quantity: quantity.to_owned(),
                value,
            });
        }
        if device.set(quantity, value) {
            return Ok(());
        }
        let known = device.quantity_names();
        Err(SimBoardError::UnknownQuantity {
            peripheral: self.peripheral.clone(),
            target: describe(self.kind, target),
            model: device.model(),
            quantity: quantity.to_owned(),
            known: if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            },
        })
    }

    pub(crate) fn log(&self) -> Vec<BusEvent> {
        lock(&self.state).log.iter().cloned().collect()
    }

    pub(crate) fn view(&self) -> BusView {
        let state = lock(&self.state);
        BusView {
            peripheral: self.peripheral.clone(),
            devices: state
                .devices
                .iter()
                .map(|(&target, d)| DeviceView {
                    target,
                    model: d.model().to_owned(),
                    quantities: d
                        .quantities()
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                })
                .collect(),
            transactions: state.next_seq,
            open_by: self.holders.apps(),
        }
    }

    fn i2c(&self, app: &str, address: u16, ops: Vec<BusOp>) -> SimReply {
        let mut state = lock(&self.state);
        let BusState {
            devices,
            log,
            next_seq,
        } = &mut *state;
        let mut records = Vec::with_capacity(ops.len());
        let Some(device) = devices.get_mut(&address) else {
            let message = format!(
                "no device answers at {address:#04x} on `{}`",
                self.peripheral
            );
            record(log, next_seq, app, address, records, Some(message.clone()));
            return SimReply::Error(SimError::Io(message));
        };
        let mut out = Vec::new();
        for op in ops {
            match op {
                BusOp::Write(bytes) => {
                    device.i2c_write(&bytes);
                    records.push(BusRecord::Write {
                        len: len32(&bytes),
                        data: kept(bytes),
                    });
                }
                BusOp::Read(n) => {
                    let data = device.i2c_read(usize::try_from(n).unwrap_or(0));
                    records.push(BusRecord::Read {
                        len: n,
                        data: kept(data.clone()),
                    });
                    out.push(data);
                }
                // `SimRequest::validate` refuses these on I2C before they get here.
                BusOp::Transfer(_) | BusOp::DelayUs(_) => {
                    return invalid("an I2C transaction has only reads and writes".into());
                }
            }
        }
        record(log, next_seq, app, address, records, None);
        SimReply::Data(out)
    }

    fn spi(&self, app: &str, chip_select: u16, ops: Vec<BusOp>) -> SimReply {
        let mut cursor = SpiCursor::new();
        let mut records = Vec::with_capacity(ops.len());
        let mut out = Vec::new();
        let mut state = lock(&self.state);
        for op in ops {
            let mut clock = |mosi: u8| match state.devices.get_mut(&chip_select) {
                Some(device) => device.spi_byte(&mut cursor, mosi),
                None => 0xFF,
            };
            match op {
                BusOp::Write(bytes) => {
                    for &b in &bytes {
                        clock(b);
                    }
                    records.push(BusRecord::Write {
                        len: len32(&bytes),
                        data: kept(bytes),
                    });
                }
                BusOp::Read(n) => {
                    // A read clocks out zeros, as spidev does for a transfer without a TX
                    // buffer.
                    let data: Vec<u8> = (0..n).map(|_| clock(0)).collect();
                    records.push(BusRecord::Read {
                        len: n,
                        data: kept(data.clone()),
                    });
                    out.push(data);
                }
                BusOp::Transfer(bytes) => {
                    let data: Vec<u8> = bytes.iter().map(|&b| clock(b)).collect();
                    records.push(BusRecord::Transfer {
                        len: len32(&bytes),
                        wrote: kept(bytes),
                        read: kept(data.clone()),
                    });
                    out.push(data);
                }
                BusOp::DelayUs(us) => {
                    drop(state);
                    std::thread::sleep(Duration::from_micros(u64::from(us)));
                    state = lock(&self.state);
                    records.push(BusRecord::DelayUs { us });
                }
            }
        }
        let BusState { log, next_seq, .. } = &mut *state;
        record(log, next_seq, app, chip_select, records, None);
        SimReply::Data(out)
    }
}

/// `0x48` for I2C, `chip select 1` for SPI.
fn describe(kind: BusKind, target: u16) -> String {
    match kind {
        BusKind::I2c => format!("{target:#04x}"),
        BusKind::Spi => format!("chip select {target}"),
    }
}

fn len32(bytes: &[u8]) -> u32 {
    u32::try_from(bytes.len()).unwrap_or(u32::MAX)
}

fn kept(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.truncate(LOG_BYTES);
    bytes
}

fn record(
    log: &mut VecDeque<BusEvent>,
    next_seq: &mut u64,
    app: &str,
    target: u16,
    ops: Vec<BusRecord>,
    error: Option<String>,
) {
    if log.len() == BUS_LOG {
        log.pop_front();
    }
    log.push_back(BusEvent {
        seq: *next_seq,
        app: app.to_owned(),
        target,
        ops,
        error,
    });
    *next_seq = next_seq.wrapping_add(1);
}

/// Bytes a transaction would return.
fn reply_bytes(ops: &[BusOp]) -> usize {
    ops.iter()
        .map(|op| match op {
            BusOp::Read(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            BusOp::Transfer(bytes) => bytes.len(),
            BusOp::Write(_) | BusOp::DelayUs(_) => 0,
        })
        .fold(0usize, usize::saturating_add)
}

/// One worker's handle on a bus.
struct BusHandler {
    bus: Arc<Bus>,
    app: String,
    /// The SPI device this handle talks to (unused on I2C, where each transaction names its
    /// target).
    chip_select: u16,
    _holder: HolderGuard,
}

impl Handler for BusHandler {
    fn handle(&mut self, request: SimRequest, _peer: BorrowedFd<'_>) -> SimReply {
        let ops = match (&request, self.bus.kind) {
            (SimRequest::I2c { ops, .. }, BusKind::I2c)
            | (SimRequest::Spi { ops }, BusKind::Spi) => ops,
            (_, BusKind::I2c) => return wrong_kind(&self.bus.peripheral, "an I2C bus", &request),
            (_, BusKind::Spi) => {
                return wrong_kind(&self.bus.peripheral, "an SPI device", &request);
            }
        };
        let returned = reply_bytes(ops);
        if returned > MAX_REPLY_BYTES {
            return invalid(format!(
                "a transaction returning {returned} bytes (at most {MAX_REPLY_BYTES}, so that the \
                 reply fits one packet)"
            ));
        }
        match request {
            SimRequest::I2c { address, ops } => self.bus.i2c(&self.app, address, ops),
            SimRequest::Spi { ops } => self.bus.spi(&self.app, self.chip_select, ops),
            other => wrong_kind(&self.bus.peripheral, "a bus", &other),
        }
    }
}
