// telemetry: reads the board's sensors and POSTs each reading as JSON to a collector.
//
// - The potentiometer on the ADC `POTENTIOMETER_ADC` (channel 0 on warden-sim) and the
//   temperature of the LSM6DS3 motion sensor on the SPI device `SAMPLE_LSM6DS3_SPI`: both
//   granted by app_manifest.json.
// - The collector is `--url` from CmdArgs; its host must be in `AllowedConnections`.
// - Once, at start, it also tries `--unlisted` (a host NOT in the list) to show what a refusal
//   looks like: `fetch` rejects, the app logs it and carries on.
//
// CmdArgs: --url URL [--unlisted URL] [--interval-ms N] [--count N (0: forever)]

import { Controller as Adc } from 'warden:device/adc@0.1.0';
import { Device as SpiDevice } from 'warden:device/spi@0.1.0';
import { log } from 'warden:device/log@0.1.0';
import { getArguments } from 'wasi:cli/environment@0.2.12';

const CONTEXT = 'telemetry';
const POTENTIOMETER_CHANNEL = 0; // SAMPLE_POTENTIOMETER_ADC_CHANNEL on warden-sim
// LSM6DS3 registers (ST DocID026899): the first byte of an SPI transaction is the command,
// bit 7 set for a read, the register address below it.
const LSM6DS3_CTRL1_XL = 0x10;
const LSM6DS3_OUT_TEMP_L = 0x20;
const SPI_READ = 0x80;
// CTRL1_XL: accelerometer at 104 Hz. In power-down (its reset state) the sensor's outputs,
// the temperature too, keep their last value.
const ODR_104_HZ = 0x40;

// A device call that fails throws a ComponentError whose `payload` is the WIT `error` variant:
// `{ tag: 'not-granted' | 'unknown-name' | 'busy' | 'invalid-argument' | 'io' | 'timeout',
// val: 'a message naming the peripheral' }`. Anything else (a fetch failure) is a plain Error.
function describe(e) {
  if (e && e.payload && typeof e.payload.tag === 'string') {
    return e.payload.val === undefined ? e.payload.tag : `${e.payload.tag}: ${e.payload.val}`;
  }
  return String(e);
}

// The arguments after the program name, as { url, unlisted, intervalMs, count }.
function parseArgs(args) {
  const options = { url: undefined, unlisted: undefined, intervalMs: 5000, count: 0 };
  for (let i = 0; i < args.length; i += 2) {
    const [flag, value] = [args[i], args[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case '--url': options.url = value; break;
      case '--unlisted': options.unlisted = value; break;
      case '--interval-ms': options.intervalMs = Number.parseInt(value, 10); break;
      case '--count': options.count = Number.parseInt(value, 10); break;
      default: throw new Error(`unknown argument ${flag}`);
    }
  }
  if (!options.url) throw new Error('--url is required (the collector to POST readings to)');
  if (!(options.intervalMs > 0)) throw new Error('--interval-ms must be a positive number');
  if (!(options.count >= 0)) throw new Error('--count must be 0 (forever) or more');
  return options;
}

// Wakes the LSM6DS3 (one register write: the command byte, then the value).
function startSensor(spi) {
  spi.write(new Uint8Array([LSM6DS3_CTRL1_XL, ODR_104_HZ]));
}

// OUT_TEMP: 16 bits, little-endian, two's complement, 16 LSB/°C, 0 = 25 °C. A transfer clocks
// out the command and two more bytes; the first byte read back (during the command) is not data.
function readTemperatureC(spi) {
  const bytes = spi.transfer(new Uint8Array([SPI_READ | LSM6DS3_OUT_TEMP_L, 0, 0]));
  let raw = bytes[1] | (bytes[2] << 8);
  if (raw & 0x8000) raw -= 0x10000;
  return 25 + raw / 16;
}

function readPotentiometer(adc) {
  const raw = adc.sample(POTENTIOMETER_CHANNEL);
  const full = 2 ** adc.bits() - 1;
  const millivolts = Math.round((raw * adc.referenceMicrovolts()) / full / 1000);
  return { raw, millivolts };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function post(url, reading) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(reading),
  });
  // Read the body so the connection is finished before the next request.
  await response.arrayBuffer();
  return response.status;
}

// A host that is not in AllowedConnections: the supervisor refuses to resolve or connect it,
// before any packet leaves the device, and fetch rejects with a TypeError.
async function tryUnlisted(url) {
  try {
    const status = await post(url, { probe: true });
    log('error', CONTEXT, `${url} is not in AllowedConnections but answered ${status}`);
  } catch (e) {
    log('warn', CONTEXT, `refused as expected: ${url}: ${describe(e)}`);
    console.log(`unlisted host refused: ${describe(e)}`);
  }
}

async function main() {
  // getArguments()[0] is the program name.
  const options = parseArgs(getArguments().slice(1));
  const adc = Adc.open('POTENTIOMETER_ADC');
  const spi = SpiDevice.open('SAMPLE_LSM6DS3_SPI');
  startSensor(spi);
  log('info', CONTEXT, `posting readings to ${options.url} every ${options.intervalMs} ms`);

  if (options.unlisted) await tryUnlisted(options.unlisted);

  const started = performance.now();
  for (let seq = 1; options.count === 0 || seq <= options.count; seq++) {
    const reading = {
      seq,
      uptime_ms: Math.round(performance.now() - started),
      potentiometer: readPotentiometer(adc),
      temperature_c: readTemperatureC(spi),
    };
    try {
      const status = await post(options.url, reading);
      console.log(`reading ${seq}: potentiometer ${reading.potentiometer.raw} ` +
        `(${reading.potentiometer.millivolts} mV), ${reading.temperature_c} C -> ${status}`);
    } catch (e) {
      // The collector is down or unreachable: log it, keep the app running, try again later.
      log('warn', CONTEXT, `reading ${seq} not sent: ${describe(e)}`);
    }
    await sleep(options.intervalMs);
  }
}

// The app world exports wasi:cli/run; its `run` may be async (the engine runs the event loop
// until the promise settles). A throw ends the app with status 1 and the message in its log.
export const run = {
  async run() {
    try {
      await main();
    } catch (e) {
      log('error', CONTEXT, describe(e));
      throw e;
    }
  },
};
