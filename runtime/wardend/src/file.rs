//! Reading a configuration file the operator names (board file, trust store, hosts table, TLS
//! roots) without trusting its size.

use std::io::Read;
use std::path::Path;

/// Why a bounded read failed; each caller names the file in its own error.
#[derive(Debug)]
pub(crate) enum ReadBounded {
    Io(std::io::Error),
    /// The file holds more than the limit.
    TooLarge,
}

/// The whole file at `path`, if it holds at most `limit` bytes (never reads more than one
/// byte past the limit).
pub(crate) fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, ReadBounded> {
    let file = std::fs::File::open(path).map_err(ReadBounded::Io)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadBounded::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadBounded::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_at_the_limit_is_read_and_one_byte_more_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read_bounded(&path, 5).unwrap(), b"12345");
        assert!(matches!(read_bounded(&path, 4), Err(ReadBounded::TooLarge)));
        assert!(matches!(
            read_bounded(&dir.path().join("none"), 4),
            Err(ReadBounded::Io(_))
        ));
    }
}
