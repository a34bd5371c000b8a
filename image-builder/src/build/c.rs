//! Building a C app: one clang-19 run compiles `src/*.c` with the SDK's generated bindings
//! against wasi-libc and links them with `wasm-component-ld`, which wraps the core module in
//! WASI 0.2's command adapter: a component exporting `wasi:cli/run`, whose `main()` is the app.

use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use super::{Progress, Project, Sdk, c_sources};

/// The files `warden app new --lang c` writes (see `Language::template`).
pub(super) const TEMPLATE: &[(&str, &str)] = &[
    ("src/main.c", include_str!("../../templates/c/src/main.c")),
    (".gitignore", include_str!("../../templates/c/gitignore")),
    (
        "app_manifest.json",
        include_str!("../../templates/app_manifest.json"),
    ),
];

/// The compiler: Debian's clang 19, the first whose driver runs `wasm-component-ld` itself
/// (`-fuse-ld=`), passing it the `wasm-ld` to link the core module with.
const CLANG: &str = "clang-19";

/// The generated bindings in the SDK's `c/` (see [`Sdk`]).
const BINDINGS_C: &str = "warden_device.c";
const BINDINGS_TYPE: &str = "warden_device_component_type.o";

/// Builds `project` into `out` (an absolute path whose directory exists).
pub(super) fn build(
    project: &Project,
    sdk: &Sdk,
    out: &Path,
    progress: &mut Progress,
) -> Result<()> {
    let bindings = sdk.dir("c")?;
    for file in [BINDINGS_C, BINDINGS_TYPE, "warden_device.h"] {
        sdk.file(&format!("c/{file}"), "complete C bindings")?;
    }
    let linker = sdk.file("bin/wasm-component-ld", "component linker")?;
    if super::on_path(CLANG).is_none() {
        bail!(
            "{CLANG} is not installed (C apps are compiled with it and wasi-libc): run `cargo \
             xtask sdk` in the Warden checkout, or `apt-get install --no-install-recommends \
             clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32`"
        );
    }
    let sources = c_sources(&project.dir)?;
    let mut clang = Command::new(CLANG);
    // Debian's wasi-libc is WASI preview 1 under the `wasm32-wasi` triple only;
    // wasm-component-ld adapts it to WASI 0.2.
    clang
        .args(["--target=wasm32-wasi", "-O2", "-Wall", "-I"])
        .arg(&bindings);
    let include = project.dir.join("include");
    if include.is_dir() {
        clang.arg("-I").arg(&include);
    }
    clang
        .args(&sources)
        .arg(bindings.join(BINDINGS_C))
        // The component type of the warden:device imports, which wasm-component-ld reads to
        // give the component its typed imports.
        .arg(bindings.join(BINDINGS_TYPE))
        // clang passes wasm-component-ld its own wasm-ld already: naming it again is an error.
        .arg(format!("-fuse-ld={}", linker.display()))
        // No debug names: a device stores and compiles what it gets.
        .arg("-s")
        .arg("-o")
        .arg(out);
    progress.run(
        &format!(
            "{CLANG}: compile {} source file(s) and link a component",
            sources.len()
        ),
        &mut clang,
    )
}
