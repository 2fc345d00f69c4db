//! Byte sizes in pipeline files: a number of bytes, or a string with a unit (`"800KB"`,
//! `"64MiB"`, `"2GiB"`: decimal kB, MB, GB and binary KiB, MiB, GiB).

/// Parses `<number>[unit]`: no unit or `B` for bytes, `KB`/`MB`/`GB` (powers of 1,000) or
/// `KiB`/`MiB`/`GiB` (powers of 1,024), upper or lower case.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size like \"800KB\", \"64MiB\" or \"2GiB\""))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "{text:?}: the unit must be B, KB, MB, GB, KiB, MiB or GiB"
            ))
        }
    };
    let bytes = (value * scale).round();
    if !(1.0..=usize::MAX as f64).contains(&bytes) {
        return Err(format!("{text:?} is out of range (at least 1 byte)"));
    }
    Ok(bytes as usize)
}

/// Serde support: a size written as a number of bytes or as a string with a unit.
pub(crate) mod serde_bytes {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<usize, D::Error> {
        match Size::deserialize(deserializer)? {
            Size::Bytes(0) => Err(serde::de::Error::custom("a size of 0 bytes")),
            Size::Bytes(bytes) => usize::try_from(bytes).map_err(serde::de::Error::custom),
            Size::Text(text) => super::parse_bytes(&text).map_err(serde::de::Error::custom),
        }
    }

    /// The same for an optional size (absent: none).
    pub(crate) fn deserialize_some<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<usize>, D::Error> {
        deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_bytes("4096"), Ok(4_096));
        assert_eq!(parse_bytes("800KB"), Ok(800_000));
        assert_eq!(parse_bytes("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytes("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("2gb"), Ok(2_000_000_000));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("ten MB").is_err());
        assert!(parse_bytes("5TB").is_err_and(|error| error.contains("the unit must be")));
    }
}
