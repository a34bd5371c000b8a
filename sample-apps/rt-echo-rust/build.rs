//! Puts `memory.x` where cortex-m-rt's `link.x` includes it from, and links with `link.x`
//! (here rather than in `.cargo/config.toml`, which Cargo reads from the working directory and
//! so would miss a build driven by `--manifest-path`).

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("writing memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rerun-if-changed=memory.x");
}
