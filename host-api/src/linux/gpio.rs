//! A GPIO character device v2 line request holding one line (`Access::GpioLine`).
//!
//! What the worker assumes of the request the supervisor made: exactly one line (bit 0 of
//! every value mask), requested without `ACTIVE_LOW` (WIT levels are physical), as an output
//! with its initial value, or as an input (an in-out pin starts as one). Edge detection is
//! switched on by the worker at the first wait for an edge; from then on the kernel queues
//! edges, and a wait returns the oldest queued one of the kind asked for.
//!
//! A direction change (`SET_CONFIG`) states the whole line configuration, so drive flags
//! (open drain/source) and a debounce period the supervisor set are not kept; the bias stays
//! as the hardware has it.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Instant;

use rustix::event::PollFlags;

use super::sys::{
    self, GPIO_LINE_EVENT_SIZE, GPIO_V2_LINE_EVENT_FALLING_EDGE, GPIO_V2_LINE_EVENT_RISING_EDGE,
    GPIO_V2_LINE_FLAG_EDGE_FALLING, GPIO_V2_LINE_FLAG_EDGE_RISING, GpioLineConfig, GpioLineEvent,
    GpioLineValues,
};
use super::wait_for;

#[derive(Debug)]
pub(crate) struct LineRequest {
    fd: OwnedFd,
    /// Edge detection is on (since the first wait, until a direction change).
    edges: bool,
}

impl LineRequest {
    pub(crate) fn new(fd: OwnedFd) -> LineRequest {
        LineRequest { fd, edges: false }
    }

    pub(crate) fn set(&mut self, high: bool) -> io::Result<()> {
        let mut values = GpioLineValues {
            bits: u64::from(high),
            mask: 1,
        };
        sys::gpio_set_values(self.fd.as_fd(), &mut values)
    }

    pub(crate) fn get(&mut self) -> io::Result<bool> {
        let mut values = GpioLineValues { bits: 0, mask: 1 };
        sys::gpio_get_values(self.fd.as_fd(), &mut values)?;
        Ok(values.bits & 1 == 1)
    }

    /// Drives the line to `high` (`Some`), glitch-free from the first moment, or makes it an
    /// input (`None`).
    pub(crate) fn direction(&mut self, output: Option<bool>) -> io::Result<()> {
        let mut config = match output {
            Some(high) => GpioLineConfig::output(high),
            None => GpioLineConfig::input(0),
        };
        sys::gpio_set_config(self.fd.as_fd(), &mut config)?;
        self.edges = false;
        Ok(())
    }

    /// Waits until `deadline` for an edge (`rising`: `Some(true)`, falling: `Some(false)`,
    /// either: `None`); returns the level after it (high after a rising edge).
    pub(crate) fn wait_edge(
        &mut self,
        rising: Option<bool>,
        deadline: Instant,
    ) -> io::Result<Option<bool>> {
        if !self.edges {
            let mut config = GpioLineConfig::input(
                GPIO_V2_LINE_FLAG_EDGE_RISING | GPIO_V2_LINE_FLAG_EDGE_FALLING,
            );
            sys::gpio_set_config(self.fd.as_fd(), &mut config)?;
            self.edges = true;
        }
        loop {
            let Some(ready) = wait_for(self.fd.as_fd(), PollFlags::IN, Some(deadline))? else {
                return Ok(None);
            };
            if ready.intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL) {
                return Err(io::Error::other(format!(
                    "the line request failed ({ready:?})"
                )));
            }
            // One event per read: the kernel returns whole events, and one that does not
            // match stays consumed, the next stays queued.
            let mut bytes = [0u8; GPIO_LINE_EVENT_SIZE];
            let read = match rustix::io::read(&self.fd, &mut bytes) {
                Ok(read) => read,
                Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
                Err(e) => return Err(e.into()),
            };
            if read != GPIO_LINE_EVENT_SIZE {
                return Err(io::Error::other(format!(
                    "a line event of {read} bytes (expected {GPIO_LINE_EVENT_SIZE})"
                )));
            }
            if let Some(high) = matching(&GpioLineEvent::from_bytes(&bytes), rising) {
                return Ok(Some(high));
            }
        }
    }
}

/// The level after `event`, if it is an edge of the kind asked for.
fn matching(event: &GpioLineEvent, rising: Option<bool>) -> Option<bool> {
    let high = match event.id {
        GPIO_V2_LINE_EVENT_RISING_EDGE => true,
        GPIO_V2_LINE_EVENT_FALLING_EDGE => false,
        _ => return None,
    };
    (rising.is_none() || rising == Some(high)).then_some(high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u32) -> GpioLineEvent {
        GpioLineEvent {
            timestamp_ns: 1,
            id,
            offset: 0,
        }
    }

    #[test]
    fn only_edges_of_the_kind_asked_for_match() {
        let rising = event(GPIO_V2_LINE_EVENT_RISING_EDGE);
        let falling = event(GPIO_V2_LINE_EVENT_FALLING_EDGE);
        assert_eq!(matching(&rising, Some(true)), Some(true));
        assert_eq!(matching(&rising, Some(false)), None);
        assert_eq!(matching(&falling, Some(false)), Some(false));
        assert_eq!(matching(&falling, None), Some(false));
        assert_eq!(matching(&event(9), None), None);
    }
}
