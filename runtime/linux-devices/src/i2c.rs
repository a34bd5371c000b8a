//! An I2C bus (`Backend::I2c` → `Access::I2cDev`): `/dev/i2c-N`, checked to be an adapter
//! that does plain I2C messages, since every transaction of the worker is one `I2C_RDWR` (an
//! SMBus-only adapter would fail each of them, long after the grant).
//!
//! The bus clock (the board file's `SpeedHz`) is not set here: Linux has no call for it. The
//! adapter's driver takes it from the device tree (`clock-frequency`) at probe, so the board
//! file's value documents what the OS image must configure.

use std::fs::OpenOptions;
use std::os::fd::{AsFd, OwnedFd};

use warden_ipc::broker::{Access, Denial};

use crate::sys::{self, I2C_FUNC_I2C};
use crate::{Roots, describe, open_file};

pub(crate) fn open(roots: &Roots, bus: u32) -> Result<(Access, Vec<OwnedFd>), Denial> {
    let path = roots.dev.join(format!("i2c-{bus}"));
    let fd = open_file(OpenOptions::new().read(true).write(true), &path)?;
    let funcs = sys::i2c_funcs(fd.as_fd()).map_err(|e| {
        Denial::Io(format!(
            "cannot read the functions of {} (I2C_FUNCS): {}",
            path.display(),
            describe(&e)
        ))
    })?;
    if funcs & I2C_FUNC_I2C == 0 {
        return Err(Denial::Io(format!(
            "{} is an SMBus-only adapter (functions {funcs:#x}): it cannot run I2C_RDWR \
             transactions",
            path.display()
        )));
    }
    Ok((Access::I2cDev, vec![fd]))
}
