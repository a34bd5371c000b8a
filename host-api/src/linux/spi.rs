//! A spidev device (`Access::SpiDev`): a transaction is one `SPI_IOC_MESSAGE(n)`, one
//! transfer per operation, so chip select stays asserted from the first to the last. Mode,
//! clock and word size are the device's, set by the supervisor.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use warden_ipc::sim::BusOp;

use super::sys::{self, SpiSegment};

/// The longest delay one transfer holds (`spi_ioc_transfer.delay_usecs` is 16 bits).
pub(crate) const MAX_DELAY_US: u32 = u16::MAX as u32;

#[derive(Debug)]
pub(crate) struct SpiDev {
    fd: OwnedFd,
}

impl SpiDev {
    pub(crate) fn new(fd: OwnedFd) -> SpiDev {
        SpiDev { fd }
    }

    /// Runs `ops` (already bounds-checked); one buffer per read and transfer, in order. A
    /// delay is a transfer of no bytes that holds chip select for its time.
    pub(crate) fn transaction(&mut self, ops: Vec<BusOp>) -> io::Result<Vec<Vec<u8>>> {
        let mut segments = ops
            .into_iter()
            .map(|op| {
                Ok(match op {
                    BusOp::Read(len) => SpiSegment {
                        rx: Some(vec![0; usize::try_from(len).map_err(io::Error::other)?]),
                        ..SpiSegment::default()
                    },
                    BusOp::Write(bytes) => SpiSegment {
                        tx: Some(bytes),
                        ..SpiSegment::default()
                    },
                    BusOp::Transfer(bytes) => SpiSegment {
                        rx: Some(vec![0; bytes.len()]),
                        tx: Some(bytes),
                        ..SpiSegment::default()
                    },
                    BusOp::DelayUs(us) => SpiSegment {
                        delay_us: u16::try_from(us).map_err(|_| {
                            io::Error::new(
                                io::ErrorKind::InvalidInput,
                                format!("a delay of {us} µs (at most {MAX_DELAY_US})"),
                            )
                        })?,
                        ..SpiSegment::default()
                    },
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        sys::spi_message(self.fd.as_fd(), &mut segments)?;
        Ok(segments.into_iter().filter_map(|s| s.rx).collect())
    }
}
