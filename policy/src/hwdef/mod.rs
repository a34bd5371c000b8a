//! Azure Sphere hardware definitions, read as Azure Sphere writes them.
//!
//! A hardware definition names peripherals in layers: the chip file (`mt3620.json`) gives each
//! chip peripheral its `AppManifestValue`; a board file (`mt3620_rdb.json`) imports it and maps
//! board names onto chip names; an app-abstraction file (`sample_appliance.json`) imports the
//! board file and maps the names apps use. An app asks for `$SAMPLE_LED`; [`HwdefSet`] follows
//! the mappings down to the chip peripheral (`MT3620_GPIO8`), and the board file
//! ([`crate::board`]) says which Linux resource backs that.
//!
//! Reading is strict and reports every problem of every file in one pass: unknown keys,
//! unknown mapping targets, type mismatches along a mapping, duplicate names, import cycles,
//! missing imports, two chip peripherals answering to one manifest value. The set is pulled in
//! through a [`HwdefSource`], so this crate does no I/O itself.

mod file;
mod set;
mod source;

pub use file::{
    Definition, DefinitionType, HardwareDefinition, Import, MAX_IMPORTS, MAX_PERIPHERALS,
    METADATA_TYPE, Target,
};
pub use set::{ChipPeripheral, HwdefError, HwdefSet, Resolution, ResolveError, SetLimits};
pub use source::{HwdefSource, MemorySource, SourceError, SourceFile};

pub(crate) use file::check_import_path;
pub(crate) use set::closest;

use crate::diag::Report;

impl HardwareDefinition {
    /// Reads one file on its own (imports are not followed). `source` names it in messages.
    pub fn parse(source: &str, bytes: &[u8]) -> Result<HardwareDefinition, HwdefError> {
        let mut report = Report::new(source);
        let def = file::read(&mut report, source, bytes);
        report.sort();
        match def {
            Some(def) if !report.has_errors() => Ok(def),
            _ => Err(HwdefError {
                reports: vec![report],
            }),
        }
    }
}
