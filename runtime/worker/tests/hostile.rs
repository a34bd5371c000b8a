//! Hostile apps: each must end the way the limits say, with the right outcome, and never take
//! the worker down.

mod common;

use std::time::Duration;

use common::{precompile, request, run, wat};
use warden_ipc::Outcome;

#[test]
fn an_infinite_loop_is_stopped_by_the_watchdog() {
    let app = precompile(&wat("busy_loop.wat"));
    let mut req = request(&app);
    req.watchdog_ms = 500;
    let ran = run(&app, &req);
    assert_eq!(ran.outcome, Outcome::Watchdog { watchdog_ms: 500 });
    let took = ran.timings.execute;
    eprintln!("busy loop stopped after {took:?} (watchdog 500 ms)");
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_millis(500 + 250), "{took:?}");
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let app = precompile(&wat("memory_bomb.wat"));
    let mut req = request(&app);
    req.memory_limit_bytes = 8 << 20;
    let ran = run(&app, &req);
    let Outcome::MemoryLimit {
        limit_bytes,
        requested_bytes,
    } = ran.outcome
    else {
        panic!("expected MemoryLimit, got {:?}", ran.outcome);
    };
    assert_eq!(limit_bytes, 8 << 20);
    assert!(requested_bytes > limit_bytes);
    assert!(requested_bytes <= limit_bytes + (1 << 20));
}

#[test]
fn initial_memory_beyond_the_limit_is_refused_at_instantiation() {
    let app = precompile(&wat("hello.wat"));
    let mut req = request(&app);
    req.memory_limit_bytes = 1000; // less than one 64 KiB page
    let ran = run(&app, &req);
    assert_eq!(
        ran.outcome,
        Outcome::MemoryLimit {
            limit_bytes: 1000,
            requested_bytes: 65536
        }
    );
}

#[test]
fn unbounded_recursion_is_a_stack_overflow_trap() {
    let app = precompile(&wat("recursion.wat"));
    let ran = run(&app, &request(&app));
    let Outcome::Trapped {
        trap, backtrace, ..
    } = &ran.outcome
    else {
        panic!("expected a trap, got {:?}", ran.outcome);
    };
    assert_eq!(trap, "stack_overflow");
    assert_eq!(
        backtrace.first().and_then(|f| f.func_name.as_deref()),
        Some("recurse")
    );
}

#[test]
fn table_growth_hits_the_memory_limit() {
    let app = precompile(&wat("table_bomb.wat"));
    let mut req = request(&app);
    req.memory_limit_bytes = 1 << 20;
    let ran = run(&app, &req);
    assert!(
        matches!(ran.outcome, Outcome::MemoryLimit { limit_bytes, .. } if limit_bytes == 1 << 20),
        "{:?}",
        ran.outcome
    );
}

#[test]
fn a_log_flood_lands_in_the_log_file_and_the_worker_survives() {
    let app = precompile(&wat("log_flood.wat"));
    let mut req = request(&app);
    // The flood takes longer than this in total, but every write returns to the host.
    req.watchdog_ms = 50;
    let ran = run(&app, &req);
    assert_eq!(ran.outcome, Outcome::Exited { code: 0 });
    assert_eq!(ran.stdout.len(), 1600 * 65536);
    let rate = ran.stdout.len() as f64 / ran.timings.execute.as_secs_f64() / 1e6;
    eprintln!(
        "log flood: {} MB in {:?} ({rate:.0} MB/s)",
        ran.stdout.len() >> 20,
        ran.timings.execute
    );
    assert!(rate > 10.0, "{rate} MB/s");
}

#[test]
fn a_module_importing_an_ungranted_interface_is_refused_naming_it() {
    let app = precompile(&wat("gpio_import.wat"));
    let ran = run(&app, &request(&app));
    let Outcome::LoadRefused { reason } = &ran.outcome else {
        panic!("expected LoadRefused, got {:?}", ran.outcome);
    };
    assert!(reason.contains("warden:device/gpio"), "{reason}");
}

#[test]
fn a_component_importing_what_the_device_world_lacks_is_refused_naming_it() {
    for (guest, named) in [
        ("gpio_import_component.wat", "warden:device/gpio@0.1.0"),
        ("camera_import_component.wat", "warden:device/camera@0.1.0"),
    ] {
        let app = precompile(&wat(guest));
        let ran = run(&app, &request(&app));
        let Outcome::LoadRefused { reason } = &ran.outcome else {
            panic!("{guest}: expected LoadRefused, got {:?}", ran.outcome);
        };
        assert!(reason.contains(named), "{reason}");
    }
}
