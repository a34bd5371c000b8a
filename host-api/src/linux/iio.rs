//! IIO ADC channels (`Access::IioAdc`): one read-only `in_voltageN_raw` file per channel,
//! sampled by a positioned read from its start (a sysfs attribute is re-read on every read at
//! offset 0, so the descriptor never needs a seek).

use std::io;
use std::os::fd::OwnedFd;

/// Longest raw value text read (a u32 in decimal and a newline fit many times over).
const MAX_TEXT: usize = 32;

/// One raw sample from `fd`.
pub(crate) fn sample(fd: &OwnedFd) -> io::Result<u32> {
    let mut text = [0u8; MAX_TEXT];
    let read = loop {
        match rustix::io::pread(fd, &mut text, 0) {
            Ok(read) => break read,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    parse(text.get(..read).unwrap_or_default())
}

fn parse(text: &[u8]) -> io::Result<u32> {
    std::str::from_utf8(text)
        .ok()
        .map(str::trim)
        .and_then(|t| t.parse::<u32>().ok())
        .ok_or_else(|| {
            io::Error::other(format!(
                "the raw value {:?} is not a non-negative number",
                String::from_utf8_lossy(text)
            ))
        })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn raw_values_are_read_from_the_start_each_time() {
        let mut file = tempfile::tempfile().unwrap_or_else(|e| panic!("{e}"));
        file.write_all(b"1234\n").unwrap_or_else(|e| panic!("{e}"));
        let fd = OwnedFd::from(file);
        assert_eq!(sample(&fd).ok(), Some(1234));
        assert_eq!(sample(&fd).ok(), Some(1234));
        assert!(parse(b"-5\n").is_err());
        assert!(parse(b"").is_err());
        assert!(parse(b"12ab").is_err());
    }
}
