//! The install pipeline against the simulated board: what is committed, what is refused, and
//! that a refusal changes nothing.

#![allow(clippy::unwrap_used)] // test helpers may panic on set-up failures

mod common;

use std::path::Path;
use std::sync::atomic::Ordering;

use common::{APP_A, APP_B, Fixture, fixture, manifest, pack};
use wardend::index::Index;
use wardend::install::{self, InstallError};

fn install(
    f: &Fixture,
    index: &mut Index,
    bytes: &[u8],
) -> Result<install::Installed, InstallError> {
    install::install(&f.state, index, &f.device, &f.compiler, bytes)
}

fn dir_names(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_install_is_committed_with_its_compiled_code_and_digest() {
    let f = fixture();
    let mut index = Index::load(&f.state).unwrap();
    let done = install(
        &f,
        &mut index,
        &pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, None),
    )
    .unwrap();
    assert_eq!(done.decision, "first install");
    let app = &index.apps[APP_A];
    assert_eq!(app.version, 1);
    assert!(app.uid >= wardend::index::APP_UID_BASE);
    let code = app.code.as_ref().unwrap();
    let path = f.state_path.join("store").join(&app.store).join(&code.file);
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"compiled:"));
    assert_eq!(
        code.sha256,
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
    );
    assert_eq!(
        Index::load(&f.state).unwrap(),
        index,
        "the index on disk is the committed one"
    );
    assert!(dir_names(&f.state_path.join("staging")).is_empty());
}

#[test]
fn upgrade_reinstall_and_rollback() {
    let f = fixture();
    let mut index = Index::load(&f.state).unwrap();
    let v1 = pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, None);
    install(&f, &mut index, &v1).unwrap();
    let old_store = index.apps[APP_A].store.clone();
    let uid = index.apps[APP_A].uid;
    let compiles = f.compiler.calls.load(Ordering::SeqCst);
    let committed = Index::load(&f.state).unwrap();
    assert_eq!(
        install(&f, &mut index, &v1).unwrap().decision,
        "reinstall (already installed, nothing changed)"
    );
    assert_eq!(
        f.compiler.calls.load(Ordering::SeqCst),
        compiles,
        "nothing was recompiled"
    );
    assert_eq!(
        Index::load(&f.state).unwrap(),
        committed,
        "nothing was committed"
    );
    assert!(
        f.state_path
            .join("store")
            .join(&old_store)
            .join("meta.json")
            .is_file()
    );

    let v2 = pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 2, None);
    assert_eq!(
        install(&f, &mut index, &v2).unwrap().decision,
        "upgrade from 1"
    );
    assert_eq!(index.apps[APP_A].uid, uid, "an update keeps the app's uid");
    assert_eq!(
        dir_names(&f.state_path.join("store")),
        vec![index.apps[APP_A].store.clone()]
    );
    assert!(!f.state_path.join("store").join(old_store).exists());

    let before = Index::load(&f.state).unwrap();
    let err = install(&f, &mut index, &v1).unwrap_err();
    assert!(matches!(err, InstallError::Rollback(_)), "{err}");
    assert!(err.to_string().contains("older"), "{err}");
    assert_eq!(
        Index::load(&f.state).unwrap(),
        before,
        "a refusal changed the index"
    );
    assert!(dir_names(&f.state_path.join("staging")).is_empty());
}

#[test]
fn a_tampered_package_changes_nothing() {
    let f = fixture();
    let mut index = Index::load(&f.state).unwrap();
    let mut bytes = pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, None);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let err = install(&f, &mut index, &bytes).unwrap_err();
    assert!(matches!(err, InstallError::Package(_)), "{err}");
    assert!(index.apps.is_empty());
    assert!(!f.state_path.join("index.json").exists());
    assert!(dir_names(&f.state_path.join("staging")).is_empty());
    assert!(dir_names(&f.state_path.join("store")).is_empty());
}

#[test]
fn a_pin_owned_by_another_app_is_refused_at_install() {
    let f = fixture();
    let mut index = Index::load(&f.state).unwrap();
    install(
        &f,
        &mut index,
        &pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, None),
    )
    .unwrap();
    let err = install(
        &f,
        &mut index,
        &pack(&f, &manifest(APP_B, "$SAMPLE_LED"), 1, None),
    )
    .unwrap_err();
    assert!(matches!(err, InstallError::Resolve(_)), "{err}");
    assert!(err.to_string().contains(APP_A), "the owner is named: {err}");
    assert_eq!(index.apps.len(), 1);
}

#[test]
fn a_signed_artefact_for_this_target_is_used_without_compiling() {
    let f = fixture();
    let mut index = Index::load(&f.state).unwrap();
    let bytes = pack(
        &f,
        &manifest(APP_A, "$SAMPLE_LED"),
        1,
        Some(b"precompiled bytes"),
    );
    install(&f, &mut index, &bytes).unwrap();
    assert_eq!(f.compiler.calls.load(Ordering::SeqCst), 0);
    let code = index.apps[APP_A].code.clone().unwrap();
    assert_eq!(code.file, "payloads/bin/app.test-target.cwasm");
}

#[test]
fn a_device_without_a_compiler_needs_a_signed_artefact() {
    let mut f = fixture();
    f.compiler.available = false;
    let mut index = Index::load(&f.state).unwrap();
    let err = install(
        &f,
        &mut index,
        &pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, None),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("no precompiled artefact for target `test-target`"),
        "{err}"
    );
    assert!(index.apps.is_empty());
}

#[test]
fn recovery_removes_interrupted_installs() {
    let f = fixture();
    let mut index = Index::load(&f.state).unwrap();
    install(
        &f,
        &mut index,
        &pack(&f, &manifest(APP_A, "$SAMPLE_LED"), 1, None),
    )
    .unwrap();
    std::fs::create_dir_all(f.state_path.join("staging/install-crashed/payloads")).unwrap();
    std::fs::create_dir_all(f.state_path.join("store/deadbeef")).unwrap();
    let removed = install::recover(&f.state, &index).unwrap();
    assert_eq!(removed, vec!["staging/install-crashed", "store/deadbeef"]);
    assert_eq!(
        dir_names(&f.state_path.join("store")),
        vec![index.apps[APP_A].store.clone()]
    );
}
