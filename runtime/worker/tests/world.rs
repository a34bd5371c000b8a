//! The app world (`host-api/wit-app/app.wit`, `warden:app/app@0.1.0`) against the worker's
//! real component linker, both ways: everything the world offers an app is linked, and the
//! worker links nothing an app could import that the world does not offer.
//!
//! The WIT tree is the one `cargo xtask wit` writes (the same code, the xtask's library
//! `warden_wit`): the world, `warden:device` from `host-api/wit/`, and the WASI packages from
//! the sources of the wasmtime-wasi and wasmtime-wasi-http crates in Cargo.lock (found with
//! `cargo metadata --offline`; no network). A missing file fails the test, never skips it.
//!
//! A world becomes a component the way a guest toolchain would make one: a core module that
//! imports every function of every imported interface and exports `wasi:cli/run`
//! (`wit_component::dummy_module`), encoded by `wit_component::ComponentEncoder`. The worker
//! checks it as a run does before it starts an app (`Prepared::check_links`:
//! `instantiate_pre` with the linker `Prepared::new` builds, then the `wasi:cli/run` export).
//! The docs that list the world are docs/api/world.md.
#![allow(clippy::unwrap_used)]
// `Prepared::check_links` compiles the component: it needs the compiler (the default feature).
#![cfg(feature = "compile")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use warden_ipc::CodeKind;
use warden_worker::Prepared;
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve, WorldId, WorldItem};

/// What the worker links beyond the world, among the interfaces of the tree's packages. Each
/// entry needs a line in docs/api/world.md saying why an app cannot have it. None today.
const LINKED_BEYOND_THE_WORLD: &[&str] = &[];

/// What wasmtime's `instantiate_pre` says of an import it has no matching definition for.
const LINKER_REFUSAL: &str = "but a matching implementation was not found in the linker";

/// The interface the world exports (an app's `main`); the worker calls it, never links it.
const RUN: &str = "wasi:cli/run@0.2.12";

/// The WIT tree, written into a fresh directory by the xtask's own code.
struct Tree {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn tree() -> Tree {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let sources = warden_wit::Sources::locate(&root).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wit");
    let written = warden_wit::materialise(&sources, &path).unwrap();
    assert_eq!(written.world, "warden:app/app@0.1.0");
    Tree { _dir: dir, path }
}

/// A component for `world`: a dummy core module with the world's metadata, encoded.
fn component(resolve: &Resolve, world: WorldId) -> Vec<u8> {
    let mut module =
        wit_component::dummy_module(resolve, world, ManglingAndAbi::Legacy(LiftLowerAbi::Sync));
    wit_component::embed_component_metadata(&mut module, resolve, world, StringEncoding::UTF8)
        .unwrap();
    ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

fn prepared() -> Prepared {
    Prepared::new(CodeKind::Component, false).unwrap()
}

/// The interfaces `world` imports, by id (`wasi:io/poll@0.2.12`).
fn imported_interfaces(resolve: &Resolve, world: WorldId) -> BTreeSet<String> {
    resolve.worlds[world]
        .imports
        .values()
        .map(|item| match item {
            WorldItem::Interface { id, .. } => resolve.id_of(*id).unwrap(),
            other => panic!("the world imports a bare item, not an interface: {other:?}"),
        })
        .collect()
}

/// Every interface of every package in `resolve`, by id.
fn all_interfaces(resolve: &Resolve) -> BTreeSet<String> {
    resolve
        .interfaces
        .iter()
        .filter_map(|(id, _)| resolve.id_of(id))
        .collect()
}

#[test]
fn the_world_imports_wasi_cli_and_http_imports_and_every_device_interface_and_exports_run() {
    let tree = tree();
    let (resolve, world) = warden_wit::resolve_tree(&tree.path).unwrap();
    let imports = imported_interfaces(&resolve, world);

    let world_of = |package: &str, name: &str| {
        let package = resolve
            .packages
            .iter()
            .find(|(_, p)| p.name.to_string() == package)
            .unwrap_or_else(|| panic!("{package} is not in the tree"))
            .1;
        package.worlds[name]
    };
    for (package, name) in [
        ("wasi:cli@0.2.12", "imports"),
        ("wasi:http@0.2.12", "imports"),
    ] {
        let wanted = imported_interfaces(&resolve, world_of(package, name));
        let missing: Vec<_> = wanted.difference(&imports).collect();
        assert!(
            missing.is_empty(),
            "the app world lacks {missing:?} of {package} world {name}"
        );
    }

    let device: BTreeSet<_> = all_interfaces(&resolve)
        .into_iter()
        .filter(|id| id.starts_with("warden:device/"))
        .collect();
    assert!(device.len() >= 11, "{device:?}");
    let missing: Vec<_> = device.difference(&imports).collect();
    assert!(
        missing.is_empty(),
        "warden:device interfaces not in the app world (add them to device.wit's world `app`): \
         {missing:?}"
    );

    let exports: Vec<_> = resolve.worlds[world]
        .exports
        .values()
        .map(|item| match item {
            WorldItem::Interface { id, .. } => resolve.id_of(*id).unwrap(),
            other => panic!("the world exports a bare item: {other:?}"),
        })
        .collect();
    assert_eq!(exports, [RUN]);
}

#[test]
fn every_import_of_the_world_is_linked_by_the_worker() {
    let tree = tree();
    let (resolve, world) = warden_wit::resolve_tree(&tree.path).unwrap();
    let app = component(&resolve, world);
    if let Err(e) = prepared().check_links(&app) {
        panic!(
            "the worker does not link the whole app world ({} imports: {:?}): {e:#}",
            resolve.worlds[world].imports.len(),
            imported_interfaces(&resolve, world)
        );
    }
}

#[test]
fn the_worker_links_no_interface_of_the_tree_beyond_the_world() {
    let tree = tree();
    let (mut resolve, world) = warden_wit::resolve_tree(&tree.path).unwrap();
    let imports = imported_interfaces(&resolve, world);
    let others: Vec<String> = all_interfaces(&resolve)
        .into_iter()
        .filter(|id| !imports.contains(id) && id != RUN)
        .collect();
    // The control: the worker serves no incoming requests, so this one must be refused.
    let incoming = "wasi:http/incoming-handler@0.2.12";
    assert!(others.iter().any(|id| id == incoming), "{others:?}");

    // One probe world per interface: that import alone, and the export every app has.
    let mut probes = String::from("package warden:probe;\n");
    for (i, id) in others.iter().enumerate() {
        probes.push_str(&format!(
            "world probe{i} {{ import {id}; export {RUN}; }}\n"
        ));
    }
    let package = resolve.push_str("probes.wit", &probes).unwrap();
    let prepared = prepared();
    let mut linked = Vec::new();
    for (i, id) in others.iter().enumerate() {
        let probe = resolve.packages[package].worlds[&format!("probe{i}")];
        match prepared.check_links(&component(&resolve, probe)) {
            Ok(()) => linked.push(id.as_str()),
            Err(e) => {
                // Refused for the right reason: the linker has no such import, not the probe's
                // making.
                let e = format!("{e:#}");
                assert!(
                    e.contains(LINKER_REFUSAL),
                    "{id}: refused, not by the linker: {e}"
                );
                assert!(id != incoming || e.contains(incoming), "{e}");
            }
        }
    }
    assert_eq!(
        linked, LINKED_BEYOND_THE_WORLD,
        "the worker links interfaces the app world does not offer (of {others:?}): add them to \
         the world, or list them here and in docs/api/world.md"
    );
}

#[test]
fn no_unstable_wasi_feature_is_linked() {
    let tree = tree();
    let mut features = BTreeSet::new();
    for dir in std::iter::once(tree.path.clone()).chain(
        std::fs::read_dir(tree.path.join("deps"))
            .unwrap()
            .map(|e| e.unwrap().path()),
    ) {
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "wit") {
                let text = std::fs::read_to_string(&file).unwrap();
                for rest in text.split("@unstable(feature = ").skip(1) {
                    features.insert(rest.split(')').next().unwrap().trim().to_owned());
                }
            }
        }
    }
    // WASI 0.2.12's: clocks-timezone, network-error-code, informational-outbound-responses.
    assert!(!features.is_empty());

    let (resolve, world) = warden_wit::resolve_tree(&tree.path).unwrap();
    let stable = component(&resolve, world);
    let prepared = prepared();
    let mut linked = Vec::new();
    let mut beside_the_world = Vec::new();
    for feature in &features {
        let mut with = Resolve::default();
        with.features.insert(feature.clone());
        let (resolve, world) = warden_wit::resolve_tree_with(with, &tree.path).unwrap();
        let app = component(&resolve, world);
        if app == stable {
            beside_the_world.push(feature.as_str());
        } else {
            match prepared.check_links(&app) {
                Ok(()) => linked.push(feature.as_str()),
                Err(e) => {
                    let e = format!("{e:#}");
                    eprintln!("{feature}: refused: {e}");
                    assert!(
                        e.contains(LINKER_REFUSAL),
                        "{feature}: refused, not by the linker: {e}"
                    );
                }
            }
        }
    }
    eprintln!("unstable features: {features:?}; not touching the world: {beside_the_world:?}");
    assert!(
        linked.is_empty(),
        "the worker links unstable WASI features {linked:?}: say so in docs/api/world.md (an app \
         built with them runs) and change this test"
    );
}
