"""Sensor logger: reads a TMP102 temperature sensor on I2C once a second, prints each reading,
and keeps the latest ones in a ring log in the app's storage, so they survive a crash, a kill or
a reboot; after a restart it reads the log back and carries on numbering where it stopped.

The sensor is the TMP102 at address 0x48 on the bus the board's hardware definition calls
SENSOR_I2C (on the simulated board, set its temperature with
`warden sim sensor SENSOR_I2C 0x48 temperature_c 21.5`). The manifest grants the bus
("I2cMaster": ["$SENSOR_I2C"]) and 8 KiB of storage ("MutableStorage"), which Warden mounts at
/storage.
"""

import os
import sys
import time
from dataclasses import dataclass

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import i2c, log

# The bus, by its hardware-definition name, and the sensor's address on it (A0 to ground).
I2C_BUS = "SENSOR_I2C"
TMP102_ADDRESS = 0x48
# TMP102 pointer register 0: the temperature, 12 bits two's complement, 0.0625 °C a step,
# left-justified in two bytes (TI SBOS397, section 7.5).
TMP102_TEMPERATURE = 0x00

READ_INTERVAL_S = 1.0

# The ring log: CAPACITY fixed-size text records, reading number `seq` in slot `seq % CAPACITY`,
# so the file never grows past CAPACITY * RECORD_SIZE bytes and each reading is one small write
# in place. A record is "<seq> <temperature>\n" padded with spaces: readable with `cat`.
LOG_PATH = "/storage/readings.log"
CAPACITY = 10
RECORD_SIZE = 32

LOG_CONTEXT = "sensor-logger"


@dataclass
class Reading:
    seq: int
    celsius: float

    def record(self) -> bytes:
        text = f"{self.seq} {self.celsius:.4f}"
        return (text.ljust(RECORD_SIZE - 1) + "\n").encode("ascii")

    @staticmethod
    def parse(record: bytes) -> "Reading | None":
        """The reading in a record, or None for an empty slot or one a crash cut short."""
        try:
            seq, celsius = record.decode("ascii").split()
            return Reading(int(seq), float(celsius))
        except ValueError:
            return None


class RingLog:
    """The last CAPACITY readings in a file, written through to the disk: reading `seq` goes
    to slot `seq % CAPACITY`, overwriting the oldest in place."""

    def __init__(self, path: str) -> None:
        # "r+b" reads and writes anywhere but needs the file; "a+b" would write only at the end.
        try:
            self.file = open(path, "r+b")
        except FileNotFoundError:
            self.file = open(path, "w+b")

    def readings(self) -> list[Reading]:
        """Every reading in the log, oldest first."""
        self.file.seek(0)
        data = self.file.read(CAPACITY * RECORD_SIZE)
        records = (data[i : i + RECORD_SIZE] for i in range(0, len(data), RECORD_SIZE))
        found = [r for r in map(Reading.parse, records) if r is not None]
        return sorted(found, key=lambda r: r.seq)

    def append(self, reading: Reading) -> None:
        self.file.seek((reading.seq % CAPACITY) * RECORD_SIZE)
        self.file.write(reading.record())
        # Through Python's buffer and the OS to the disk: a reading the app printed is one the
        # next start will find, even if the app is killed right after.
        self.file.flush()
        os.fsync(self.file.fileno())


def read_celsius(bus: i2c.Bus) -> float:
    """One temperature reading from the TMP102 (a register read: write the pointer, then read
    two bytes after a repeated start)."""
    msb, lsb = bus.write_read(TMP102_ADDRESS, bytes([TMP102_TEMPERATURE]), 2)
    raw = (msb << 4) | (lsb >> 4)
    if raw & 0x800:  # negative: 12-bit two's complement
        raw -= 1 << 12
    return raw * 0.0625


class Run(exports.Run):
    def run(self) -> None:
        # The app's stdout is a file on the device, not a terminal, so Python would hold
        # printed lines in its buffer; write each line to the log as it is printed.
        sys.stdout.reconfigure(line_buffering=True)
        try:
            bus = i2c.Bus.open(I2C_BUS)
        except Err as error:
            log.log(log.Level.ERROR, LOG_CONTEXT, f"cannot open {I2C_BUS}: {error.value}")
            raise

        ring = RingLog(LOG_PATH)
        earlier = ring.readings()
        if earlier:
            last = earlier[-1]
            print(
                f"resuming after reading {last.seq} ({len(earlier)} kept in {LOG_PATH}, "
                f"the last {last.celsius:.2f} C)"
            )
            seq = last.seq + 1
        else:
            print(f"no earlier readings in {LOG_PATH}: starting at 1")
            seq = 1

        while True:
            try:
                celsius = read_celsius(bus)
            except Err as error:
                # A bus error (a loose wire, say) costs one reading, not the app.
                log.log(log.Level.WARN, LOG_CONTEXT, f"reading {seq} failed: {error.value}")
            else:
                ring.append(Reading(seq, celsius))
                print(f"reading {seq}: {celsius:.2f} C")
                seq += 1
            time.sleep(READ_INTERVAL_S)
