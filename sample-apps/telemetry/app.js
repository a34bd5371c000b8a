// telemetry: reads the board's sensors and POSTs each reading as JSON to a collector.
//
// - The potentiometer on the ADC `POTENTIOMETER_ADC` (channel 0 on warden-sim) and the TMP102
//   temperature sensor at 0x48 on the I2C bus `SENSOR_I2C`: both granted by app_manifest.json.
// - The collector is `--url` from CmdArgs; its host must be in `AllowedConnections`.
// - Once, at start, it also tries `--unlisted` (a host NOT in the list) to show what a refusal
//   looks like: `fetch` rejects, the app logs it and carries on.
//
// CmdArgs: --url URL [--unlisted URL] [--interval-ms N] [--count N (0: forever)]

import { Controller as Adc } from 'warden:device/adc@0.1.0';
import { Bus as I2cBus } from 'warden:device/i2c@0.1.0';
import { log } from 'warden:device/log@0.1.0';
import { getArguments } from 'wasi:cli/environment@0.2.12';

const CONTEXT = 'telemetry';
const POTENTIOMETER_CHANNEL = 0; // SAMPLE_POTENTIOMETER_ADC_CHANNEL on warden-sim
const TMP102_ADDRESS = 0x48;
const TMP102_TEMPERATURE_REGISTER = 0x00;

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

// The TMP102's temperature register: 12 bits, two's complement, left-justified, 0.0625 °C.
function readTemperatureC(bus) {
  const bytes = bus.writeRead(TMP102_ADDRESS, new Uint8Array([TMP102_TEMPERATURE_REGISTER]), 2);
  let raw = ((bytes[0] << 8) | bytes[1]) >> 4;
  if (raw & 0x800) raw -= 0x1000;
  return raw * 0.0625;
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
  const bus = I2cBus.open('SENSOR_I2C');
  log('info', CONTEXT, `posting readings to ${options.url} every ${options.intervalMs} ms`);

  if (options.unlisted) await tryUnlisted(options.unlisted);

  const started = performance.now();
  for (let seq = 1; options.count === 0 || seq <= options.count; seq++) {
    const reading = {
      seq,
      uptime_ms: Math.round(performance.now() - started),
      potentiometer: readPotentiometer(adc),
      temperature_c: readTemperatureC(bus),
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
