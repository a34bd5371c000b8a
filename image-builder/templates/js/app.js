// {{name}}: a Warden app in JavaScript. It blinks SAMPLE_LED five times and exits.
//
// Peripherals are opened by their hardware-definition name, and only those listed in
// app_manifest.json open. A refused or failed call throws an error whose `payload` says why:
// `{ tag: 'not-granted' | 'unknown-name' | 'busy' | 'invalid-argument' | 'io' | 'timeout',
// val: 'a message' }`.
//
// Build:  warden app build .
// Run:    warden app run --sim .      (as root: the simulated board, logs until Ctrl-C)

import { OutputPin } from 'warden:device/gpio@0.1.0';
import { log } from 'warden:device/log@0.1.0';

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const led = OutputPin.open('SAMPLE_LED', 'high');
  for (let i = 0; i < 10; i++) {
    const level = led.toggle(); // 'low' or 'high'
    log('info', '{{name}}', `SAMPLE_LED is ${level}`);
    await sleep(250);
  }
  console.log('{{name}}: done');
}

// The app world exports wasi:cli/run: `run` is called once; the app ends when its promise
// settles (a throw ends it with status 1).
export const run = {
  async run() {
    try {
      await main();
    } catch (e) {
      const why = e.payload ? `${e.payload.tag}: ${e.payload.val}` : String(e);
      log('error', '{{name}}', why);
      throw e;
    }
  },
};
