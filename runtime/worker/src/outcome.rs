//! How a run ended: from wasmtime's error (or success) to an [`Outcome`].

use warden_ipc::{Frame, Outcome};
use wasmtime::{Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

use crate::limits::MemoryBudget;

/// What the run had when it ended, besides the error itself.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub(crate) budget: &'a MemoryBudget,
    pub(crate) watchdog_ms: u64,
}

/// The outcome of a run that ended with `error` (a trap, an exit, or a host error).
///
/// Order matters: the watchdog first (the app was stopped), then an exit (an exit status of 0
/// stays a clean exit even after a refused growth the app handled), then a refused memory
/// growth (the trap or failing exit that follows it is its symptom), then the trap itself.
pub(crate) fn after_error(error: &wasmtime::Error, cx: &Context<'_>) -> Outcome {
    let trap = error.downcast_ref::<Trap>().copied();
    if trap == Some(Trap::Interrupt) {
        return Outcome::Watchdog {
            watchdog_ms: cx.watchdog_ms,
        };
    }
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return exited(exit.0, cx);
    }
    if let Some(requested_bytes) = cx.budget.denied() {
        return Outcome::MemoryLimit {
            limit_bytes: cx.budget.limit_bytes(),
            requested_bytes,
        };
    }
    let backtrace = error
        .downcast_ref::<WasmBacktrace>()
        .map(frames)
        .unwrap_or_default();
    match trap {
        Some(trap) => Outcome::Trapped {
            trap: trap_name(trap),
            message: trap.to_string(),
            backtrace,
        },
        None => Outcome::Trapped {
            trap: "host_error".to_owned(),
            message: message(error),
            backtrace,
        },
    }
}

/// The outcome of an app that returned or exited with `code`.
pub(crate) fn exited(code: i32, cx: &Context<'_>) -> Outcome {
    match cx.budget.denied() {
        Some(requested_bytes) if code != 0 => Outcome::MemoryLimit {
            limit_bytes: cx.budget.limit_bytes(),
            requested_bytes,
        },
        _ => Outcome::Exited { code },
    }
}

/// The outcome of an instantiation that failed: a trap in a start function or initialiser, an
/// exit, or a refused memory are run outcomes; anything else (an import the device does not
/// provide, a missing `_start` or `wasi:cli/run`) refuses the app before any of it ran.
pub(crate) fn after_instantiation_error(error: &wasmtime::Error, cx: &Context<'_>) -> Outcome {
    let ran = error.downcast_ref::<Trap>().is_some()
        || error.downcast_ref::<I32Exit>().is_some()
        || cx.budget.denied().is_some();
    if ran {
        after_error(error, cx)
    } else {
        Outcome::LoadRefused {
            reason: format!("cannot instantiate the app: {}", message(error)),
        }
    }
}

/// The error and its causes on one line, without the backtrace (reported as frames).
pub(crate) fn message(error: &wasmtime::Error) -> String {
    let backtrace = error
        .downcast_ref::<WasmBacktrace>()
        .map(ToString::to_string);
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if backtrace.as_ref() == Some(&text) {
            continue;
        }
        if !parts.iter().any(|p| p == &text) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// A stable, snake_case name for a trap code: `unreachable`, `memory_out_of_bounds`,
/// `stack_overflow`, `interrupt`, `integer_division_by_zero`, …
pub(crate) fn trap_name(trap: Trap) -> String {
    if trap == Trap::UnreachableCodeReached {
        return "unreachable".to_owned();
    }
    let debug = format!("{trap:?}");
    let mut name = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                name.push('_');
            }
            name.push(c.to_ascii_lowercase());
        } else {
            name.push(c);
        }
    }
    name
}

fn frames(backtrace: &WasmBacktrace) -> Vec<Frame> {
    backtrace
        .frames()
        .iter()
        .map(|frame| Frame {
            module: frame.module().name().map(str::to_owned),
            func_index: frame.func_index(),
            func_name: frame.func_name().map(str::to_owned),
            offset: frame.module_offset().and_then(|o| u32::try_from(o).ok()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trap_names_are_snake_case() {
        assert_eq!(trap_name(Trap::UnreachableCodeReached), "unreachable");
        assert_eq!(trap_name(Trap::StackOverflow), "stack_overflow");
        assert_eq!(trap_name(Trap::MemoryOutOfBounds), "memory_out_of_bounds");
        assert_eq!(trap_name(Trap::Interrupt), "interrupt");
    }
}
