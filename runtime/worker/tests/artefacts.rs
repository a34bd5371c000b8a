//! The digest rule: swapped, truncated, mislabelled or foreign code is refused, never loaded.

mod common;

use common::{Artefact, precompile, request, run, sha256, wat};
use warden_ipc::{CodeKind, Outcome};

fn refused(ran: &common::Ran) -> &str {
    match &ran.outcome {
        Outcome::LoadRefused { reason } => reason,
        other => panic!("expected LoadRefused, got {other:?}"),
    }
}

#[test]
fn a_swapped_artefact_is_refused_by_digest() {
    let recorded = precompile(&wat("hello.wat"));
    let swapped = precompile(&wat("exit3.wat"));
    let ran = run(&swapped, &request(&recorded));
    assert!(refused(&ran).contains("digest mismatch"), "{ran:?}");
}

#[test]
fn a_module_claimed_as_a_component_is_refused() {
    let app = precompile(&wat("hello.wat"));
    let mut req = request(&app);
    req.kind = CodeKind::Component;
    let ran = run(&app, &req);
    assert!(refused(&ran).contains("precompiled module"), "{ran:?}");
}

#[test]
fn a_component_claimed_as_a_module_is_refused() {
    let app = precompile(&wat("gpio_import_component.wat"));
    let mut req = request(&app);
    req.kind = CodeKind::Module;
    let ran = run(&app, &req);
    assert!(refused(&ran).contains("precompiled component"), "{ran:?}");
}

#[test]
fn a_truncated_artefact_is_refused_even_when_its_digest_matches() {
    let app = precompile(&wat("hello.wat"));
    for keep in [app.bytes.len() / 2, app.bytes.len() - 64, 16] {
        let truncated =
            Artefact::from_bytes(app.bytes.get(..keep).expect("shorter").to_vec(), app.kind);
        let ran = run(&truncated, &request(&truncated));
        refused(&ran);
    }
}

#[test]
fn raw_webassembly_is_not_a_precompiled_artefact() {
    let wasm = wat("hello.wat");
    let foreign = Artefact::from_bytes(wasm, CodeKind::Module);
    let ran = run(&foreign, &request(&foreign));
    assert!(
        refused(&ran).contains("not a wasmtime precompiled artefact"),
        "{ran:?}"
    );
}

#[test]
fn an_artefact_for_another_target_is_refused() {
    let bytes = warden_worker::compile(&wat("hello.wat"), Some("pulley32")).expect("compiles");
    let foreign = Artefact::from_bytes(bytes, CodeKind::Module);
    let ran = run(&foreign, &request(&foreign));
    assert!(refused(&ran).contains("wasmtime refused"), "{ran:?}");
}

#[test]
fn an_empty_file_and_a_malformed_digest_are_refused() {
    let empty = Artefact::from_bytes(Vec::new(), CodeKind::Module);
    let mut req = request(&empty);
    req.code_sha256 = sha256(b"");
    assert!(refused(&run(&empty, &req)).contains("empty"));

    let app = precompile(&wat("hello.wat"));
    let mut req = request(&app);
    req.code_sha256 = "not hex".to_owned();
    assert!(refused(&run(&app, &req)).contains("not a SHA-256"));
}
