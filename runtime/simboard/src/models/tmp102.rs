//! TI TMP102 digital temperature sensor (I2C), after its datasheet (SBOS397).
//!
//! A pointer register selects one of four 16-bit registers, sent MSB first: temperature
//! (`0x00`, read-only), configuration (`0x01`, reset `0x60A0`), T_LOW (`0x02`, reset 75 °C) and
//! T_HIGH (`0x03`, reset 80 °C). A write transaction's first byte sets the pointer; two more
//! bytes write the register. A read returns the pointed register's MSB, LSB, MSB, … Conversions
//! are instant: the temperature register follows the set temperature at once, unless the part
//! is shut down (`SD`), where only a one-shot (`OS`) converts.

/// Temperature register: 12-bit (13-bit in extended mode) two's complement, left-justified.
const TEMPERATURE: u8 = 0x00;
const CONFIG: u8 = 0x01;
const T_LOW: u8 = 0x02;
const T_HIGH: u8 = 0x03;

/// Configuration bits.
const OS: u16 = 1 << 15;
/// Converter resolution, read-only `11` (12 bits).
const R1_R0: u16 = 0b11 << 13;
const POL: u16 = 1 << 10;
const SD: u16 = 1 << 8;
const AL: u16 = 1 << 5;
const EM: u16 = 1 << 4;
/// Bits a write changes: OS, F1 F0, POL, TM, SD, CR1 CR0, EM (R1 R0 and AL are read-only,
/// the low nibble reads zero).
const CONFIG_WRITABLE: u16 = 0x9FD0;
const CONFIG_RESET: u16 = 0x60A0;

/// °C per LSB.
const RESOLUTION: f64 = 0.0625;

#[derive(Debug)]
pub(crate) struct Tmp102 {
    pointer: u8,
    config: u16,
    t_low: u16,
    t_high: u16,
    /// The temperature register as last converted.
    temperature: u16,
    /// The die temperature the outside world set, in °C.
    ambient_c: f64,
    /// Comparator state: set at T_HIGH or above, cleared below T_LOW.
    alert: bool,
    /// A one-shot conversion completed while shut down: `OS` reads 1.
    one_shot_done: bool,
}

impl Tmp102 {
    pub(crate) const QUANTITIES: &'static [&'static str] = &["temperature_c"];

    pub(crate) fn new() -> Tmp102 {
        let mut t = Tmp102 {
            pointer: TEMPERATURE,
            config: CONFIG_RESET,
            t_low: encode(75.0, false),
            t_high: encode(80.0, false),
            temperature: 0,
            ambient_c: 25.0,
            alert: false,
            one_shot_done: false,
        };
        t.convert();
        t
    }

    pub(crate) fn quantities(&self) -> Vec<(&'static str, f64)> {
        vec![("temperature_c", self.ambient_c)]
    }

    /// Sets a quantity; `false` if the device has none of that name.
    pub(crate) fn set(&mut self, quantity: &str, value: f64) -> bool {
        if quantity != "temperature_c" {
            return false;
        }
        self.ambient_c = value;
        if self.config & SD == 0 {
            self.convert();
        }
        true
    }

    fn extended(&self) -> bool {
        self.config & EM != 0
    }

    fn convert(&mut self) {
        self.temperature = encode(self.ambient_c, self.extended());
        let now = decode(self.temperature, self.extended());
        if now >= decode(self.t_high, self.extended()) {
            self.alert = true;
        } else if now < decode(self.t_low, self.extended()) {
            self.alert = false;
        }
    }

    fn register(&self, pointer: u8) -> u16 {
        match pointer {
            TEMPERATURE => self.temperature,
            CONFIG => {
                let mut config = (self.config & !(OS | AL)) | R1_R0;
                if self.one_shot_done {
                    config |= OS;
                }
                // With POL clear the AL bit reads 1 until the comparator trips, then 0; POL
                // inverts it.
                if self.alert == (self.config & POL != 0) {
                    config |= AL;
                }
                config
            }
            T_LOW => self.t_low,
            T_HIGH => self.t_high,
            // The pointer is masked to its two bits.
            _ => 0,
        }
    }

    /// A write transaction: pointer byte, then (optionally) MSB and LSB. A lone data byte is
    /// ignored, as the part latches a register only with both bytes; bytes after the second
    /// are ignored. Pointer bits above the two the part has are ignored.
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        let Some((&pointer, data)) = bytes.split_first() else {
            return;
        };
        self.pointer = pointer & 0x03;
        let [msb, lsb, ..] = data else {
            return;
        };
        let value = u16::from_be_bytes([*msb, *lsb]);
        match self.pointer {
            TEMPERATURE => {}
            CONFIG => {
                let was_shut_down = self.config & SD != 0;
                self.config = (self.config & !CONFIG_WRITABLE) | (value & CONFIG_WRITABLE);
                let one_shot = value & OS != 0;
                self.config &= !OS;
                self.one_shot_done = false;
                if self.config & SD == 0 {
                    self.convert();
                } else if one_shot && was_shut_down {
                    self.convert();
                    self.one_shot_done = true;
                }
            }
            T_LOW => self.t_low = value,
            T_HIGH => self.t_high = value,
            _ => {}
        }
    }

    /// A read transaction of `len` bytes from the pointed register.
    pub(crate) fn read(&mut self, len: usize) -> Vec<u8> {
        let bytes = self.register(self.pointer).to_be_bytes();
        bytes.iter().copied().cycle().take(len).collect()
    }
}

/// °C as the register holds it: normal mode 12 bits `<< 4`, extended mode 13 bits `<< 3` with
/// bit 0 set (the datasheet's extended-mode flag). Beyond the range it saturates.
fn encode(celsius: f64, extended: bool) -> u16 {
    let counts = (celsius / RESOLUTION).round();
    let (min, max, shift) = if extended {
        (-4096.0, 4095.0, 3)
    } else {
        (-2048.0, 2047.0, 4)
    };
    // In range after the clamp, so the cast is exact.
    let counts = counts.clamp(min, max) as i16;
    let value = (counts << shift).cast_unsigned();
    if extended { value | 1 } else { value }
}

fn decode(register: u16, extended: bool) -> f64 {
    let shift = if extended { 3 } else { 4 };
    f64::from(register.cast_signed() >> shift) * RESOLUTION
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_register(t: &mut Tmp102, pointer: u8) -> [u8; 2] {
        t.write(&[pointer]);
        let bytes = t.read(2);
        [bytes[0], bytes[1]]
    }

    #[test]
    fn temperatures_are_left_justified_twos_complement() {
        let mut t = Tmp102::new();
        assert_eq!(
            read_register(&mut t, TEMPERATURE),
            [0x19, 0x00],
            "25 °C at reset"
        );
        for (celsius, bytes) in [
            (25.5, [0x19, 0x80]),
            (0.0, [0x00, 0x00]),
            (-0.25, [0xFF, 0xC0]),
            (-10.0, [0xF6, 0x00]),
            (127.9375, [0x7F, 0xF0]),
            (-55.0, [0xC9, 0x00]),
            (1000.0, [0x7F, 0xF0]),
        ] {
            assert!(t.set("temperature_c", celsius));
            assert_eq!(read_register(&mut t, TEMPERATURE), bytes, "{celsius} °C");
        }
    }

    #[test]
    fn registers_reset_as_the_datasheet_says_and_the_temperature_is_read_only() {
        let mut t = Tmp102::new();
        assert_eq!(read_register(&mut t, CONFIG), [0x60, 0xA0]);
        assert_eq!(read_register(&mut t, T_LOW), [0x4B, 0x00]);
        assert_eq!(read_register(&mut t, T_HIGH), [0x50, 0x00]);
        t.write(&[TEMPERATURE, 0x12, 0x34]);
        assert_eq!(read_register(&mut t, TEMPERATURE), [0x19, 0x00]);
        t.write(&[T_HIGH, 0x1E, 0x00]);
        assert_eq!(read_register(&mut t, T_HIGH), [0x1E, 0x00]);
        // The resolution bits stay 11 and the low nibble 0 whatever is written.
        t.write(&[CONFIG, 0x00, 0x0F]);
        assert_eq!(read_register(&mut t, CONFIG), [0x60, 0x20]);
    }

    #[test]
    fn the_comparator_trips_at_t_high_and_clears_below_t_low() {
        let mut t = Tmp102::new();
        t.set("temperature_c", 80.0);
        assert_eq!(
            read_register(&mut t, CONFIG)[1] & 0x20,
            0,
            "AL reads 0 when active"
        );
        t.set("temperature_c", 76.0);
        assert_eq!(read_register(&mut t, CONFIG)[1] & 0x20, 0, "hysteresis");
        t.set("temperature_c", 74.0);
        assert_eq!(read_register(&mut t, CONFIG)[1] & 0x20, 0x20);
        // POL inverts the bit.
        t.write(&[CONFIG, 0x64, 0xA0]);
        assert_eq!(read_register(&mut t, CONFIG)[1] & 0x20, 0);
    }

    #[test]
    fn shutdown_freezes_the_reading_until_a_one_shot() {
        let mut t = Tmp102::new();
        t.write(&[CONFIG, 0x61, 0xA0]);
        t.set("temperature_c", 30.0);
        assert_eq!(read_register(&mut t, TEMPERATURE), [0x19, 0x00]);
        t.write(&[CONFIG, 0xE1, 0xA0]);
        assert_eq!(
            read_register(&mut t, CONFIG)[0] & 0x80,
            0x80,
            "OS reads 1 when done"
        );
        assert_eq!(read_register(&mut t, TEMPERATURE), [0x1E, 0x00]);
    }

    #[test]
    fn extended_mode_uses_13_bits_and_flags_bit_0() {
        let mut t = Tmp102::new();
        t.write(&[CONFIG, 0x60, 0xB0]);
        t.set("temperature_c", 150.0);
        // 150 / 0.0625 = 2400 = 0x960; << 3 = 0x4B00; | 1.
        assert_eq!(read_register(&mut t, TEMPERATURE), [0x4B, 0x01]);
    }
}
