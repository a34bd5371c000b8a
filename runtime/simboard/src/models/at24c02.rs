//! Microchip AT24C02 2-Kbit serial EEPROM (I2C): 256 bytes, erased to 0xFF at power-up of the
//! board (the simulation keeps nothing across supervisor restarts).
//!
//! A write transaction's first byte is the word address; following bytes are written from it
//! on within its 8-byte page, wrapping to the page's start (the datasheet's page roll-over). A
//! read continues from the current address across the whole array, wrapping 0xFF → 0x00. The
//! 5 ms write cycle is not modelled: the part answers again at once.

const SIZE: usize = 256;
const PAGE: u8 = 8;

#[derive(Debug)]
pub(crate) struct At24c02 {
    memory: [u8; SIZE],
    address: u8,
}

impl At24c02 {
    pub(crate) fn new() -> At24c02 {
        At24c02 {
            memory: [0xFF; SIZE],
            address: 0,
        }
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        let Some((&address, data)) = bytes.split_first() else {
            return;
        };
        let page = address & !(PAGE - 1);
        let mut offset = address & (PAGE - 1);
        for &b in data {
            if let Some(cell) = self.memory.get_mut(usize::from(page | offset)) {
                *cell = b;
            }
            offset = (offset + 1) % PAGE;
        }
        self.address = page | offset;
    }

    pub(crate) fn read(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                let v = self
                    .memory
                    .get(usize::from(self.address))
                    .copied()
                    .unwrap_or(0xFF);
                self.address = self.address.wrapping_add(1);
                v
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_writes_roll_over_within_the_page_and_reads_run_on() {
        let mut e = At24c02::new();
        e.write(&[0x06, 1, 2, 3, 4]);
        e.write(&[0x00]);
        assert_eq!(e.read(9), [3, 4, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 0xFF]);
        e.write(&[0xFF]);
        assert_eq!(e.read(2), [0xFF, 3], "the read wraps to 0x00");
    }
}
