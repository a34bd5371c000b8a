//! What the broker opens granted peripherals with: the simulated board for `Sim*` backends;
//! the Linux devices a real board file names for the others.

use std::os::fd::OwnedFd;

use warden_ipc::broker::{Access, Denial, ResourceRequest};
use warden_linux_devices::Roots;
use warden_policy::board::Board;
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
        // A Linux resource: opened for real, set up as the board file says (docs/broker.md,
        // "Linux backends"). The denial keeps its kind; the peripheral is put in front of its
        // message so that the app's error and the log say which grant failed.
        warden_linux_devices::open(backend, request, &Roots::default())
            .map_err(|denial| about(&grant.chip_peripheral, denial))
    }
}

/// `denial`, its message prefixed with the chip peripheral it is about.
fn about(peripheral: &str, denial: Denial) -> Denial {
    match denial {
        Denial::NotGranted(m) => Denial::NotGranted(format!("`{peripheral}`: {m}")),
        Denial::UnknownName(m) => Denial::UnknownName(format!("`{peripheral}`: {m}")),
        Denial::Busy(m) => Denial::Busy(format!("`{peripheral}`: {m}")),
        Denial::InvalidArgument(m) => Denial::InvalidArgument(format!("`{peripheral}`: {m}")),
        Denial::Io(m) => Denial::Io(format!("`{peripheral}`: {m}")),
        Denial::Network { error, detail } => Denial::Network {
            error,
            detail: format!("`{peripheral}`: {detail}"),
        },
    }
}
