//! ST LSM6DS3 accelerometer and gyroscope (I2C or SPI), after its datasheet (DocID026899).
//!
//! A 128-byte register file. Read-write registers take writes; read-only and reserved ones
//! ignore them (reserved ones read 0). `WHO_AM_I` (0x0F) is 0x69; `CTRL3_C` (0x12) resets to
//! 0x04 (`IF_INC`: multi-byte accesses advance the address; without it they repeat one
//! register), `CTRL9_XL`/`CTRL10_C` to 0x38, everything else to 0. `SW_RESET` restores the
//! reset values, `BLE` swaps the output bytes (MSB at the lower address).
//!
//! Outputs: `OUT_TEMP` (0x20–0x21, 16 LSB/°C, 0 at 25 °C), gyroscope `OUTX_L_G`…`OUTZ_H_G`
//! (0x22–0x27) and accelerometer `OUTX_L_XL`…`OUTZ_H_XL` (0x28–0x2D), 16-bit little-endian
//! two's complement, scaled by the full scale in `CTRL1_XL`/`CTRL2_G`. While a sensor's output
//! data rate (`ODR_XL`, `ODR_G`) is not zero, its outputs follow the set quantities at once
//! and `STATUS_REG` (0x1E) shows its data ready (`XLDA`, `GDA`, `TDA`); in power-down (ODR 0,
//! the reset state) the outputs keep their last value and the bit reads 0. Not modelled: the
//! FIFO (reads as empty), interrupts, tap/tilt/step functions, the sensor hub, axis enables.

/// Register addresses.
pub(crate) const WHO_AM_I: u8 = 0x0F;
pub(crate) const CTRL1_XL: u8 = 0x10;
pub(crate) const CTRL2_G: u8 = 0x11;
pub(crate) const CTRL3_C: u8 = 0x12;
const CTRL9_XL: u8 = 0x18;
const CTRL10_C: u8 = 0x19;
pub(crate) const STATUS_REG: u8 = 0x1E;
pub(crate) const OUT_TEMP_L: u8 = 0x20;
pub(crate) const OUTX_L_G: u8 = 0x22;
pub(crate) const OUTX_L_XL: u8 = 0x28;
const FIFO_STATUS2: u8 = 0x3B;

const WHO_AM_I_VALUE: u8 = 0x69;

/// `CTRL3_C` bits.
const BOOT: u8 = 1 << 7;
const IF_INC: u8 = 1 << 2;
const BLE: u8 = 1 << 1;
const SW_RESET: u8 = 1 << 0;

/// `FIFO_STATUS2`: the FIFO is empty.
const FIFO_EMPTY: u8 = 1 << 4;

/// Highest register address; addresses wrap to 0 after it.
const LAST: u8 = 0x7F;

/// What a register address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ReadWrite,
    ReadOnly,
    Reserved,
}

fn kind(address: u8) -> Kind {
    match address {
        0x01 | 0x04 | 0x06..=0x0B | 0x0D | 0x0E | 0x10..=0x1A | 0x58..=0x5F => Kind::ReadWrite,
        // WHO_AM_I; the event sources and STATUS_REG; OUT_TEMP, the gyroscope and accelerometer
        // outputs and SENSORHUB1–12; FIFO status and data; timestamps; step timestamp and
        // counter, SENSORHUB13–18, FUNC_SRC; the raw magnetometer outputs.
        0x0F | 0x1B..=0x1E | 0x20..=0x3F | 0x40..=0x42 | 0x49..=0x53 | 0x66..=0x6B => {
            Kind::ReadOnly
        }
        _ => Kind::Reserved,
    }
}

/// Where an SPI transaction is: before the command byte, or reading/writing at an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SpiPhase {
    Command,
    Read(u8),
    Write(u8),
}

#[derive(Debug)]
pub(crate) struct Lsm6ds3 {
    registers: [u8; 128],
    /// The I2C register address pointer.
    pointer: u8,
    accel_g: [f64; 3],
    gyro_dps: [f64; 3],
    temperature_c: f64,
}

impl Lsm6ds3 {
    pub(crate) const QUANTITIES: &'static [&'static str] = &[
        "accel_x_g",
        "accel_y_g",
        "accel_z_g",
        "gyro_x_dps",
        "gyro_y_dps",
        "gyro_z_dps",
        "temperature_c",
    ];

    /// Lying flat and still at 25 °C: 1 g on Z.
    pub(crate) fn new() -> Lsm6ds3 {
        let mut d = Lsm6ds3 {
            registers: [0; 128],
            pointer: 0,
            accel_g: [0.0, 0.0, 1.0],
            gyro_dps: [0.0; 3],
            temperature_c: 25.0,
        };
        d.reset();
        d
    }

    fn reset(&mut self) {
        self.registers = [0; 128];
        self.put(WHO_AM_I, WHO_AM_I_VALUE);
        self.put(CTRL3_C, IF_INC);
        self.put(CTRL9_XL, 0x38);
        self.put(CTRL10_C, 0x38);
        self.put(FIFO_STATUS2, FIFO_EMPTY);
    }

    fn get(&self, address: u8) -> u8 {
        self.registers
            .get(usize::from(address & LAST))
            .copied()
            .unwrap_or(0)
    }

    fn put(&mut self, address: u8, value: u8) {
        if let Some(r) = self.registers.get_mut(usize::from(address & LAST)) {
            *r = value;
        }
    }

    pub(crate) fn quantities(&self) -> Vec<(&'static str, f64)> {
        let [ax, ay, az] = self.accel_g;
        let [gx, gy, gz] = self.gyro_dps;
        vec![
            ("accel_x_g", ax),
            ("accel_y_g", ay),
            ("accel_z_g", az),
            ("gyro_x_dps", gx),
            ("gyro_y_dps", gy),
            ("gyro_z_dps", gz),
            ("temperature_c", self.temperature_c),
        ]
    }

    /// Sets a quantity; `false` if the device has none of that name.
    pub(crate) fn set(&mut self, quantity: &str, value: f64) -> bool {
        let slot = match quantity {
            "accel_x_g" => &mut self.accel_g[0],
            "accel_y_g" => &mut self.accel_g[1],
            "accel_z_g" => &mut self.accel_g[2],
            "gyro_x_dps" => &mut self.gyro_dps[0],
            "gyro_y_dps" => &mut self.gyro_dps[1],
            "gyro_z_dps" => &mut self.gyro_dps[2],
            "temperature_c" => &mut self.temperature_c,
            _ => return false,
        };
        *slot = value;
        self.refresh();
        true
    }

    /// mg per LSB for `CTRL1_XL`'s FS_XL: ±2 g, ±16 g, ±4 g, ±8 g.
    fn accel_sensitivity_mg(&self) -> f64 {
        match (self.get(CTRL1_XL) >> 2) & 0b11 {
            0b00 => 0.061,
            0b01 => 0.488,
            0b10 => 0.122,
            _ => 0.244,
        }
    }

    /// mdps per LSB for `CTRL2_G`'s FS_125 and FS_G: 125, 245, 500, 1000, 2000 dps.
    fn gyro_sensitivity_mdps(&self) -> f64 {
        let ctrl = self.get(CTRL2_G);
        if ctrl & 0b10 != 0 {
            return 4.375;
        }
        match (ctrl >> 2) & 0b11 {
            0b00 => 8.75,
            0b01 => 17.5,
            0b10 => 35.0,
            _ => 70.0,
        }
    }

    /// Brings the outputs and `STATUS_REG` up to date with the quantities and the control
    /// registers (the simulated part converts instantly).
    fn refresh(&mut self) {
        let accel_on = self.get(CTRL1_XL) >> 4 != 0;
        let gyro_on = self.get(CTRL2_G) >> 4 != 0;
        if accel_on {
            let lsb = self.accel_sensitivity_mg() / 1000.0;
            for (axis, g) in self.accel_g.into_iter().enumerate() {
                self.put16(OUTX_L_XL + 2 * axis as u8, counts(g / lsb));
            }
        }
        if gyro_on {
            let lsb = self.gyro_sensitivity_mdps() / 1000.0;
            for (axis, dps) in self.gyro_dps.into_iter().enumerate() {
                self.put16(OUTX_L_G + 2 * axis as u8, counts(dps / lsb));
            }
        }
        if accel_on || gyro_on {
            self.put16(OUT_TEMP_L, counts((self.temperature_c - 25.0) * 16.0));
        }
        let status =
            u8::from(accel_on) | (u8::from(gyro_on) << 1) | (u8::from(accel_on || gyro_on) << 2);
        self.put(STATUS_REG, status);
    }

    fn put16(&mut self, low_address: u8, value: i16) {
        let [low, high] = value.to_le_bytes();
        let (first, second) = if self.get(CTRL3_C) & BLE != 0 {
            (high, low)
        } else {
            (low, high)
        };
        self.put(low_address, first);
        self.put(low_address.wrapping_add(1), second);
    }

    pub(crate) fn read_register(&self, address: u8) -> u8 {
        match kind(address & LAST) {
            Kind::Reserved => 0,
            _ => self.get(address),
        }
    }

    pub(crate) fn write_register(&mut self, address: u8, value: u8) {
        let address = address & LAST;
        if kind(address) != Kind::ReadWrite {
            return;
        }
        if address == CTRL3_C && value & SW_RESET != 0 {
            // The reset completes at once and the bit clears itself.
            self.reset();
        } else if address == CTRL3_C {
            // BOOT reloads trimming values, which the model does not have: done at once.
            self.put(address, value & !BOOT);
        } else {
            self.put(address, value);
        }
        self.refresh();
    }

    /// The address after `address` in a multi-byte access.
    fn next(&self, address: u8) -> u8 {
        if self.get(CTRL3_C) & IF_INC != 0 {
            address.wrapping_add(1) & LAST
        } else {
            address
        }
    }

    /// I2C write: the register address, then data written from it on.
    pub(crate) fn i2c_write(&mut self, bytes: &[u8]) {
        let Some((&address, data)) = bytes.split_first() else {
            return;
        };
        self.pointer = address & LAST;
        for &b in data {
            self.write_register(self.pointer, b);
            self.pointer = self.next(self.pointer);
        }
    }

    /// I2C read from the address pointer on.
    pub(crate) fn i2c_read(&mut self, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                let v = self.read_register(self.pointer);
                self.pointer = self.next(self.pointer);
                v
            })
            .collect()
    }

    /// One SPI byte: MOSI in, MISO out. The first byte of a transaction is the command (bit 7
    /// read, bits 6..0 address); the part leaves MISO undriven meanwhile, and during writes,
    /// which reads as 0xFF.
    pub(crate) fn spi_byte(&mut self, phase: &mut SpiPhase, mosi: u8) -> u8 {
        match *phase {
            SpiPhase::Command => {
                let address = mosi & LAST;
                *phase = if mosi & 0x80 != 0 {
                    SpiPhase::Read(address)
                } else {
                    SpiPhase::Write(address)
                };
                0xFF
            }
            SpiPhase::Read(address) => {
                let v = self.read_register(address);
                *phase = SpiPhase::Read(self.next(address));
                v
            }
            SpiPhase::Write(address) => {
                self.write_register(address, mosi);
                *phase = SpiPhase::Write(self.next(address));
                0xFF
            }
        }
    }
}

/// A reading in LSB, saturated to the 16-bit output.
fn counts(value: f64) -> i16 {
    // Clamped first, so the cast is exact; NaN never reaches here (set refuses it).
    value
        .round()
        .clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(d: &mut Lsm6ds3, address: u8, len: usize) -> Vec<u8> {
        d.i2c_write(&[address]);
        d.i2c_read(len)
    }

    #[test]
    fn identity_and_reset_values() {
        let mut d = Lsm6ds3::new();
        assert_eq!(read(&mut d, WHO_AM_I, 1), [0x69]);
        assert_eq!(read(&mut d, CTRL1_XL, 3), [0x00, 0x00, 0x04]);
        assert_eq!(read(&mut d, CTRL9_XL, 2), [0x38, 0x38]);
        assert_eq!(read(&mut d, STATUS_REG, 1), [0x00], "powered down");
    }

    #[test]
    fn read_only_and_reserved_registers_ignore_writes() {
        let mut d = Lsm6ds3::new();
        d.i2c_write(&[WHO_AM_I, 0x00]);
        d.i2c_write(&[0x00, 0xAA]);
        d.i2c_write(&[OUTX_L_XL, 0x12, 0x34]);
        assert_eq!(read(&mut d, WHO_AM_I, 1), [0x69]);
        assert_eq!(read(&mut d, 0x00, 1), [0x00]);
        assert_eq!(read(&mut d, OUTX_L_XL, 2), [0x00, 0x00]);
    }

    #[test]
    fn outputs_follow_the_quantities_at_the_configured_full_scale() {
        let mut d = Lsm6ds3::new();
        // ODR_XL 104 Hz, ±2 g; ODR_G 104 Hz, 245 dps.
        d.i2c_write(&[CTRL1_XL, 0x40, 0x40]);
        assert_eq!(read(&mut d, STATUS_REG, 1), [0x07]);
        // 1 g / 0.061 mg = 16393 = 0x4009 on Z.
        assert_eq!(read(&mut d, OUTX_L_XL, 6), [0, 0, 0, 0, 0x09, 0x40]);
        d.set("accel_x_g", -0.5);
        // -0.5 / 0.000061 = -8197 = 0xDFFB.
        assert_eq!(read(&mut d, OUTX_L_XL, 2), [0xFB, 0xDF]);
        // ±8 g: 0.244 mg/LSB, 1 g = 4098 = 0x1002.
        d.i2c_write(&[CTRL1_XL, 0x4C]);
        assert_eq!(read(&mut d, OUTX_L_XL + 4, 2), [0x02, 0x10]);
        d.set("gyro_y_dps", 100.0);
        // 100 / 0.00875 = 11429 = 0x2CA5.
        assert_eq!(read(&mut d, OUTX_L_G + 2, 2), [0xA5, 0x2C]);
        d.set("temperature_c", 26.5);
        assert_eq!(read(&mut d, OUT_TEMP_L, 2), [24, 0]);
        // Saturates instead of wrapping.
        d.set("accel_y_g", 100.0);
        assert_eq!(read(&mut d, OUTX_L_XL + 2, 2), [0xFF, 0x7F]);
    }

    #[test]
    fn without_if_inc_a_burst_repeats_one_register_and_ble_swaps_bytes() {
        let mut d = Lsm6ds3::new();
        d.i2c_write(&[CTRL1_XL, 0x40]);
        d.i2c_write(&[CTRL3_C, 0x02 | 0x04]);
        assert_eq!(read(&mut d, OUTX_L_XL + 4, 2), [0x40, 0x09]);
        d.i2c_write(&[CTRL3_C, 0x00]);
        assert_eq!(read(&mut d, WHO_AM_I, 3), [0x69, 0x69, 0x69]);
        d.i2c_write(&[CTRL3_C, 0x01]);
        assert_eq!(
            read(&mut d, CTRL1_XL, 3),
            [0x00, 0x00, 0x04],
            "software reset"
        );
    }

    #[test]
    fn spi_reads_and_writes_with_a_command_byte() {
        let mut d = Lsm6ds3::new();
        let mut phase = SpiPhase::Command;
        let miso: Vec<u8> = [0x80 | WHO_AM_I, 0, 0]
            .into_iter()
            .map(|b| d.spi_byte(&mut phase, b))
            .collect();
        assert_eq!(miso, [0xFF, 0x69, 0x00], "WHO_AM_I, then CTRL1_XL");
        let mut phase = SpiPhase::Command;
        for b in [CTRL1_XL, 0x40] {
            d.spi_byte(&mut phase, b);
        }
        assert_eq!(read(&mut d, CTRL1_XL, 1), [0x40]);
    }
}
