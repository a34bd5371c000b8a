//! Well-behaved apps: output, exit codes, traps with backtraces, storage, a real component.

mod common;

use std::time::Duration;

use common::{hello_component, precompile, request, run, run_code, wat};
use warden_ipc::Outcome;

#[test]
fn a_module_greets_on_stdout() {
    let app = precompile(&wat("hello.wat"));
    let ran = run(&app, &request(&app));
    assert_eq!(ran.outcome, Outcome::Exited { code: 0 });
    assert_eq!(ran.stdout_text(), "hello from a module\n");
    assert!(ran.stderr.is_empty());
}

#[test]
fn the_hello_component_greets_with_its_arguments() {
    let app = precompile(&hello_component());
    let mut req = request(&app);
    req.args = vec!["hello".to_owned(), "--loud".to_owned()];
    let ran = run(&app, &req);
    assert_eq!(ran.outcome, Outcome::Exited { code: 0 }, "{ran:?}");
    assert_eq!(
        ran.stdout_text(),
        "hello from a Warden app (args: [\"--loud\"])\n"
    );
    eprintln!(
        "hello component: prepare {:?}, verify {:?}, load {:?}, instantiate {:?}, execute {:?}, \
         wall {:?}, artefact {} bytes",
        ran.prepare,
        ran.timings.verify,
        ran.timings.load,
        ran.timings.instantiate,
        ran.timings.execute,
        ran.wall,
        app.bytes.len()
    );
}

#[test]
fn proc_exit_is_the_exit_code() {
    let app = precompile(&wat("exit3.wat"));
    assert_eq!(
        run(&app, &request(&app)).outcome,
        Outcome::Exited { code: 3 }
    );
}

#[test]
fn a_trap_names_its_code_and_the_functions_on_the_stack() {
    let app = precompile(&wat("unreachable.wat"));
    let ran = run(&app, &request(&app));
    let Outcome::Trapped {
        trap,
        message,
        backtrace,
    } = ran.outcome
    else {
        panic!("expected a trap, got {:?}", ran.outcome);
    };
    assert_eq!(trap, "unreachable");
    assert!(message.contains("unreachable"), "{message}");
    let names: Vec<_> = backtrace
        .iter()
        .map(|f| f.func_name.as_deref().unwrap_or("?"))
        .collect();
    assert_eq!(
        names.get(..2),
        Some(&["deep_inside", "middle"][..]),
        "{backtrace:?}"
    );
    assert!(
        backtrace.iter().all(|f| f.offset.is_some()),
        "{backtrace:?}"
    );
}

#[test]
fn host_calls_reset_the_watchdog() {
    let app = precompile(&wat("host_calls_loop.wat"));
    let mut req = request(&app);
    req.watchdog_ms = 200;
    let ran = run(&app, &req);
    assert_eq!(ran.outcome, Outcome::Exited { code: 0 });
    assert!(ran.timings.execute >= Duration::from_millis(600));
}

#[test]
fn a_sleep_longer_than_the_watchdog_is_not_a_hang_nor_a_timeout() {
    let app = precompile(&wat("sleep.wat"));
    let mut req = request(&app);
    req.watchdog_ms = 100;
    let ran = run(&app, &req);
    assert_eq!(ran.outcome, Outcome::Exited { code: 0 });
    assert!(ran.timings.execute >= Duration::from_millis(300), "{ran:?}");
    assert!(ran.timings.execute < Duration::from_secs(5), "{ran:?}");
}

#[test]
fn storage_is_readable_and_writable_when_granted() {
    let app = precompile(&wat("storage.wat"));
    let dir = tempfile::tempdir().expect("tempdir");
    let fd = std::fs::File::open(dir.path()).expect("open dir");
    let ran = run_code(&request(&app), app.open(), Some(fd.into()));
    assert_eq!(ran.outcome, Outcome::Exited { code: 0 });
    assert_eq!(
        std::fs::read(dir.path().join("x")).expect("x was written"),
        b"stored!"
    );
}

#[test]
fn without_storage_opening_a_file_fails_with_an_errno() {
    let app = precompile(&wat("storage.wat"));
    let ran = run(&app, &request(&app));
    // EBADF: there is no descriptor 3.
    assert_eq!(ran.outcome, Outcome::Exited { code: 8 });
}

#[test]
fn storage_escapes_are_refused() {
    let app = precompile(&wat("storage_escape.wat"));
    let dir = tempfile::tempdir().expect("tempdir");
    let fd = std::fs::File::open(dir.path()).expect("open dir");
    let ran = run_code(&request(&app), app.open(), Some(fd.into()));
    // ENOTCAPABLE (76) or EPERM (63): refused by wasmtime-wasi's path sandbox, not by luck.
    let Outcome::Exited { code } = ran.outcome else {
        panic!("{:?}", ran.outcome)
    };
    assert!(code == 76 || code == 63, "errno {code}");
}

#[test]
fn wasi_random_works() {
    let app = precompile(&wat("random.wat"));
    assert_eq!(
        run(&app, &request(&app)).outcome,
        Outcome::Exited { code: 0 }
    );
}
