//! What the broker opens granted peripherals with: the simulated board for `Sim*` backends;
//! the Linux devices a real board file names for the others.

use std::os::fd::OwnedFd;

use warden_ipc::broker::{Access, Denial, ResourceRequest};
use warden_policy::board::{Backend, Board};
use warden_policy::install::Grant;
use warden_simboard::SimBoard;

use crate::broker::DeviceOpener;

/// The device's peripherals, as the broker reaches them.
#[derive(Clone, Debug)]
pub struct BoardDevices {
    /// The simulated peripherals of the board file, if it has any.
    pub sim: Option<SimBoard>,
}

impl BoardDevices {
    /// Brings up the board file's simulated peripherals (none on a board without `Sim*`
    /// resources).
    pub fn new(board: &Board) -> Result<BoardDevices, warden_simboard::SimBoardError> {
        let simulated = board.resources.iter().any(|r| r.backend.is_simulated());
        Ok(BoardDevices {
            sim: if simulated {
                Some(SimBoard::new(board)?)
            } else {
                None
            },
        })
    }
}

impl DeviceOpener for BoardDevices {
    fn open(
        &self,
        app: &str,
        grant: &Grant,
        request: &ResourceRequest,
    ) -> Result<(Access, Vec<OwnedFd>), Denial> {
        let backend = &grant.resource.backend;
        if backend.is_simulated() {
            let Some(sim) = &self.sim else {
                return Err(Denial::Io(format!(
                    "{} is simulated, but this supervisor runs no simulated board",
                    grant.chip_peripheral
                )));
            };
            return sim.open(app, &grant.chip_peripheral, request);
        }
        let what = match backend {
            Backend::Gpio { .. } => "GPIO character devices",
            Backend::Uart { .. } => "ttys",
            Backend::I2c { .. } => "i2c-dev buses",
            Backend::Spi { .. } => "spidev devices",
            Backend::Adc { .. } => "IIO ADCs",
            Backend::Pwm { .. } => "sysfs PWM chips",
            _ => "devices of this kind",
        };
        // Linux backends are the next increment of the host-API issue; until then a grant on a
        // real board is refused with this message instead of pretending to work.
        Err(Denial::Io(format!(
            "{} is a Linux device ({}); this supervisor does not open {what} yet",
            grant.chip_peripheral,
            backend.key()
        )))
    }
}
