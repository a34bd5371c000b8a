//! `warden app new NAME --lang LANG`: a new app project that builds and runs as it is.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rand_core::{OsRng, RngCore as _};

use crate::build::{Language, Sdk};
use crate::cli::AppNewArgs;
use crate::files::{self, Mode};
use crate::output;

/// Longest app name: it becomes a directory, a package name and a file name.
const MAX_NAME: usize = 64;

pub(crate) fn new(args: &AppNewArgs) -> Result<()> {
    check_name(&args.name)?;
    let project = args.dir.join(&args.name);
    if project.exists() {
        bail!(
            "{} already exists: choose another name or directory",
            project.display()
        );
    }
    // The Rust template depends on the SDK crate by path; the other languages find their SDK
    // when they build.
    let sdk_rust = if args.lang == Language::Rust {
        let krate = Sdk::locate(args.sdk.as_deref())?.rust_crate()?;
        std::fs::canonicalize(&krate)
            .with_context(|| format!("{}", krate.display()))?
            .display()
            .to_string()
    } else {
        String::new()
    };
    let component_id = new_component_id();
    let fill = |text: &str| {
        text.replace("{{name}}", &args.name)
            .replace("{{component_id}}", &component_id)
            .replace("{{sdk_rust}}", &sdk_rust)
    };
    std::fs::create_dir_all(&project).with_context(|| format!("creating {}", project.display()))?;
    for (path, contents) in args.lang.template() {
        let path = project.join(fill(path));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        files::write_bytes(&path, fill(contents).as_bytes(), Mode::Public, false)?;
    }
    output::line(format!(
        "created {} ({} app, component id {component_id})",
        project.display(),
        args.lang.name()
    ));
    let shown = show(&project);
    output::line(format!("  build it:             warden app build {shown}"));
    output::line(format!(
        "  run it on the simulated board (as root): warden app run --sim {shown}"
    ));
    Ok(())
}

/// A name is 1–64 of `[a-z0-9-]`, starting with a letter: valid as a directory, a Cargo
/// package, a Python module's file, an npm name and a file name everywhere.
fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        bail!(
            "app name {name:?} is not 1 to {MAX_NAME} lower-case letters, digits and dashes \
             starting with a letter (e.g. \"my-sensor\")"
        );
    }
    Ok(())
}

/// A random (version 4) GUID, lower-case, as Azure Sphere's `ComponentId`.
fn new_component_id() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The project path as the user would type it next.
fn show(project: &Path) -> String {
    project
        .strip_prefix(".")
        .unwrap_or(project)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["a", "blinky", "my-sensor-2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Blinky",
            "2fast",
            "-x",
            "x-",
            "a_b",
            "a b",
            "../x",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn component_ids_are_version_4_guids() {
        let id = new_component_id();
        assert!(id.parse::<warden_policy::ids::Guid>().is_ok(), "{id}");
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_component_id());
    }
}
