//! The CPU watchdog: epoch interruption driven by SIGALRM, with no thread.
//!
//! `setitimer(ITIMER_REAL)` raises SIGALRM every tick; the handler (in `sys.rs`) only calls
//! `Engine::increment_epoch`, one atomic add. Compiled code checks the epoch at function
//! entries and loop back-edges and traps with `Trap::Interrupt` once it reaches the store's
//! deadline. The deadline is `ticks` beyond the current epoch and is set again every time
//! control returns from a host call into WebAssembly (a store call hook), so the watchdog
//! measures the longest stretch of WebAssembly running without returning to the host.

use std::time::Duration;

/// Shortest and longest tick. One tenth of the watchdog, within these bounds: precise enough,
/// and an idle app (sleeping in a host call) is woken at most 10 times a second by the timer.
const MIN_TICK: Duration = Duration::from_millis(1);
const MAX_TICK: Duration = Duration::from_millis(100);

/// The timer period and the deadline in ticks for a watchdog of `watchdog_ms`.
///
/// The deadline is one tick more than the watchdog divided by the tick, so an app always gets
/// at least `watchdog_ms` and is stopped within `watchdog_ms` plus two ticks (about 20 %).
pub(crate) fn schedule(watchdog_ms: u64) -> (Duration, u64) {
    let watchdog = Duration::from_millis(watchdog_ms.max(1));
    let tick = (watchdog / 10).clamp(MIN_TICK, MAX_TICK);
    let tick_ms = u64::try_from(tick.as_millis()).unwrap_or(u64::MAX).max(1);
    let ticks = watchdog_ms.max(1).div_ceil(tick_ms) + 1;
    (tick, ticks)
}

/// The interval timer, armed while an app runs and disarmed when this is dropped.
#[derive(Debug)]
pub(crate) struct Ticking(());

impl Ticking {
    pub(crate) fn start(tick: Duration) -> std::io::Result<Ticking> {
        crate::sys::set_tick_timer(Some(tick))?;
        Ok(Ticking(()))
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        // Best effort: the process is about to report and exit anyway.
        let _ = crate::sys::set_tick_timer(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_covers_the_watchdog() {
        assert_eq!(schedule(1000), (Duration::from_millis(100), 11));
        assert_eq!(schedule(100), (Duration::from_millis(10), 11));
        assert_eq!(schedule(5), (Duration::from_millis(1), 6));
        assert_eq!(schedule(60_000), (Duration::from_millis(100), 601));
        assert_eq!(schedule(0), (Duration::from_millis(1), 2));
    }
}
