//! Identifiers shared by manifests, hardware definitions and packages.

use std::fmt;
use std::str::FromStr;

/// A GUID in its canonical 8-4-4-4-12 form, as Azure Sphere writes `ComponentId` and tenant ids.
/// Parsing accepts either case; display is lower-case.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Guid([u8; 16]);

/// An app's identity: the `ComponentId` of its manifest.
pub type ComponentId = Guid;

/// Why a string is not a GUID.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a GUID (expected 8-4-4-4-12 hex digits, e.g. 1689d8b2-c835-2e27-27ad-e894d6d15fa9)"
)]
pub struct GuidError(pub String);

impl Guid {
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }
}

impl FromStr for Guid {
    type Err = GuidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = || GuidError(s.chars().take(64).collect());
        let groups: Vec<&str> = s.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if lengths != [8, 4, 4, 4, 12] {
            return Err(fail());
        }
        let hex: String = groups.concat();
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(&hex, &mut bytes).map_err(|_| fail())?;
        Ok(Guid(bytes))
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = hex::encode(self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

impl serde::Serialize for Guid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Guid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The kinds of peripheral Azure Sphere names, spelled as both its manifest capability keys and
/// its hardware-definition `Type` values spell them.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum PeripheralType {
    Gpio,
    Uart,
    I2cMaster,
    SpiMaster,
    Adc,
    Pwm,
    I2sSubordinate,
    ExternalInterrupt,
}

impl PeripheralType {
    pub const ALL: [PeripheralType; 8] = [
        PeripheralType::Gpio,
        PeripheralType::Uart,
        PeripheralType::I2cMaster,
        PeripheralType::SpiMaster,
        PeripheralType::Adc,
        PeripheralType::Pwm,
        PeripheralType::I2sSubordinate,
        PeripheralType::ExternalInterrupt,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PeripheralType::Gpio => "Gpio",
            PeripheralType::Uart => "Uart",
            PeripheralType::I2cMaster => "I2cMaster",
            PeripheralType::SpiMaster => "SpiMaster",
            PeripheralType::Adc => "Adc",
            PeripheralType::Pwm => "Pwm",
            PeripheralType::I2sSubordinate => "I2sSubordinate",
            PeripheralType::ExternalInterrupt => "ExternalInterrupt",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for PeripheralType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The value by which a manifest names a peripheral on the chip: Azure Sphere uses numbers for
/// GPIOs (`8`) and strings for the rest (`"ISU0"`, `"ADC-CONTROLLER-0"`).
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(untagged)]
pub enum AppManifestValue {
    Number(u64),
    Text(String),
}

impl fmt::Display for AppManifestValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppManifestValue::Number(n) => write!(f, "{n}"),
            AppManifestValue::Text(t) => write!(f, "\"{t}\""),
        }
    }
}

/// True for a peripheral name as hardware definitions and `$NAME` references write it:
/// a letter or `_`, then letters, digits and `_`, at most 64 characters.
pub fn is_peripheral_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// One segment of a path Warden accepts from data (package payloads, device paths): not empty,
/// not `.` or `..`, only `[A-Za-z0-9._-]`, so it can never climb out or smuggle a separator.
pub fn is_plain_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_round_trip_is_lower_case() {
        let g: Guid = "1689D8B2-C835-2E27-27AD-E894D6D15FA9".parse().unwrap();
        assert_eq!(g.to_string(), "1689d8b2-c835-2e27-27ad-e894d6d15fa9");
    }

    #[test]
    fn malformed_guids_are_refused() {
        for bad in [
            "",
            "1689d8b2c8352e2727ade894d6d15fa9",
            "1689d8b2-c835-2e27-27ad-e894d6d15fa",
            "1689d8b2-c835-2e27-27ad-e894d6d15fag",
            "{1689d8b2-c835-2e27-27ad-e894d6d15fa9}",
            "1689d8b2-c835-2e27-27ade-894d6d15fa9",
            "+689d8b2-c835-2e27-27ad-e894d6d15fa9",
        ] {
            assert!(bad.parse::<Guid>().is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn peripheral_names() {
        assert!(is_peripheral_name("MT3620_GPIO8"));
        assert!(is_peripheral_name("_X"));
        assert!(!is_peripheral_name("8LED"));
        assert!(!is_peripheral_name("LED-1"));
        assert!(!is_peripheral_name(""));
    }
}
