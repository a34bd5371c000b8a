//! The developer workflow of `docs/guides/`, as a new user types it, in every language:
//! `warden app new my-app --lang L`, `warden app build my-app`, `warden app run --sim my-app`
//! — the scaffolded app builds as generated and runs on the simulated board in the full
//! sandbox (the real `wardend` and worker beside this `warden`). Needs root and the SDK
//! (`cargo xtask sdk`, made here if missing).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Once;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The SDK, the supervisor and the worker `warden app run --sim` uses, made once.
fn prepare() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let cargo = |args: &[&str]| {
            let status = Command::new(env!("CARGO"))
                .current_dir(repo())
                .args(args)
                .status()
                .unwrap();
            assert!(status.success(), "cargo {args:?} failed");
        };
        if std::env::var_os("WARDEN_SDK").is_none() && !repo().join("target/sdk/wit").is_dir() {
            cargo(&["xtask", "sdk"]);
        }
        cargo(&["build", "--locked", "-p", "wardend", "-p", "warden-worker"]);
    });
}

fn warden(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "warden {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// New, build, run: the three commands of every getting-started guide.
fn workflow(lang: &str, expect_in_log: &str) {
    if !is_root() {
        panic!("this test runs the real supervisor and sandbox: run it as root");
    }
    prepare();
    let dir = tempfile::tempdir().unwrap();
    warden(dir.path(), &["app", "new", "my-app", "--lang", lang]);
    assert!(dir.path().join("my-app/app_manifest.json").is_file());
    let built = warden(dir.path(), &["app", "build", "my-app"]);
    let text = String::from_utf8_lossy(&built.stdout);
    assert!(text.contains("built "), "{text}");
    let ran = warden(
        dir.path(),
        &["app", "run", "--sim", "my-app", "--for", "120"],
    );
    let text = String::from_utf8_lossy(&ran.stdout);
    assert!(
        text.contains("the app exited with status 0"),
        "{lang}: the scaffolded app did not run to its end:\n{text}"
    );
    assert!(
        text.contains(expect_in_log),
        "{lang}: {expect_in_log:?} is not in its log:\n{text}"
    );
    // The scratch state (keys, package, the supervisor's state and the app's storage) is gone.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("warden-run-"))
        .filter(|e| text.contains(&*e.path().to_string_lossy()))
        .collect();
    assert!(left.is_empty(), "scratch directories left: {left:?}");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn a_new_rust_app_builds_and_runs_on_the_simulated_board() {
    workflow("rust", "SAMPLE_LED is high");
}

#[test]
fn a_new_c_app_builds_and_runs_on_the_simulated_board() {
    workflow("c", "SAMPLE_LED");
}

#[test]
fn a_new_python_app_builds_and_runs_on_the_simulated_board() {
    workflow("python", "SAMPLE_LED");
}

#[test]
fn a_new_javascript_app_builds_and_runs_on_the_simulated_board() {
    workflow("js", "SAMPLE_LED");
}

#[test]
fn a_new_assemblyscript_app_builds_and_runs_on_the_simulated_board() {
    workflow("assemblyscript", "my-app");
}

#[test]
fn bad_projects_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let fails = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_warden"))
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "warden {args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = fails(&["app", "build", "."]);
    assert!(err.contains("has no app_manifest.json"), "{err}");
    let err = fails(&["app", "new", "My App", "--lang", "rust"]);
    assert!(err.contains("lower-case letters"), "{err}");
    // A manifest, but sources of two languages.
    std::fs::copy(
        repo().join("sample-apps/blinky/app_manifest.json"),
        dir.path().join("app_manifest.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("app.py"), "").unwrap();
    std::fs::write(dir.path().join("app.js"), "").unwrap();
    let err = fails(&["app", "build", "."]);
    assert!(err.contains("several languages"), "{err}");
    assert!(err.contains("app.py") && err.contains("app.js"), "{err}");
    let err = fails(&["app", "run", "."]);
    assert!(err.contains("needs --sim"), "{err}");
}
