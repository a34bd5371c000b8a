//! An i2c-dev bus (`Access::I2cDev`): every transaction is one `I2C_RDWR`, so a write-read
//! is a repeated start, as the WIT promises.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use warden_ipc::sim::BusOp;

use super::sys::{self, I2cSegment};

#[derive(Debug)]
pub(crate) struct I2cDev {
    fd: OwnedFd,
}

impl I2cDev {
    pub(crate) fn new(fd: OwnedFd) -> I2cDev {
        I2cDev { fd }
    }

    /// Runs `ops` (reads and writes only, already bounds-checked) with the target at
    /// `address`; one buffer per read, in order.
    pub(crate) fn transaction(
        &mut self,
        address: u16,
        ops: Vec<BusOp>,
    ) -> io::Result<Vec<Vec<u8>>> {
        let mut segments = ops
            .into_iter()
            .map(|op| match op {
                BusOp::Read(len) => Ok(I2cSegment {
                    read: true,
                    buf: vec![0; usize::try_from(len).map_err(io::Error::other)?],
                }),
                BusOp::Write(bytes) => Ok(I2cSegment {
                    read: false,
                    buf: bytes,
                }),
                BusOp::Transfer(_) | BusOp::DelayUs(_) => Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "an I2C transaction has only reads and writes",
                )),
            })
            .collect::<io::Result<Vec<_>>>()?;
        sys::i2c_rdwr(self.fd.as_fd(), address, &mut segments)?;
        Ok(segments
            .into_iter()
            .filter(|s| s.read)
            .map(|s| s.buf)
            .collect())
    }
}
