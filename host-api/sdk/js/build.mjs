// Builds a JavaScript app into a WebAssembly component of the Warden app world
// (`warden:app/app`), with ComponentizeJS (the StarlingMonkey engine, pinned by
// package-lock.json). `warden app build` runs it; it can also be run by hand:
//
//   node target/sdk/js/build.mjs --source app.js --out build/app.wasm
//
// Options:
//   --source FILE   the app's main module (ES module exporting `run`)           (required)
//   --out FILE      where the component goes                                     (required)
//   --wit DIR       the app world's WIT tree               (default: ../wit beside this file)
//   --world NAME    the world                                     (default: warden:app/app)
//
// The component imports the world's interfaces at the world's WASI version (0.2.12): the WIT
// tree decides, not the engine's own WASI version. `fetch()` is kept (it is `wasi:http`
// outgoing, which the world has); the `fetch-event` feature, an incoming-request handler, is
// left out, because a Warden app serves no incoming HTTP and the worker links none.
//
// We use ComponentizeJS's API, not `jco componentize`: the CLI fails here
// ("failed to get path metadata") while the API works offline.

import { componentize } from '@bytecodealliance/componentize-js';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const usage = 'usage: node build.mjs --source APP.js --out APP.wasm [--wit DIR] [--world NAME]';

function fail(message) {
  console.error(`build.mjs: ${message}`);
  process.exit(1);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      source: { type: 'string' },
      out: { type: 'string' },
      wit: { type: 'string' },
      world: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (e) {
  fail(`${e.message}\n${usage}`);
}
if (!values.source || !values.out) fail(usage);

const here = dirname(fileURLToPath(import.meta.url));
const sourcePath = resolve(values.source);
const witPath = resolve(values.wit ?? resolve(here, '..', 'wit'));
const worldName = values.world ?? 'warden:app/app';
const out = resolve(values.out);

async function requireExists(path, what, hint) {
  try {
    await stat(path);
  } catch {
    fail(`${what} ${path} does not exist${hint ? `: ${hint}` : ''}`);
  }
}
await requireExists(sourcePath, 'the app source');
await requireExists(witPath, 'the WIT tree', 'run `cargo xtask sdk` in the Warden checkout');

let component;
try {
  ({ component } = await componentize({
    sourcePath,
    witPath,
    worldName,
    // stdio, random, clocks and http (fetch) stay: the world has them all.
    disableFeatures: ['fetch-event'],
  }));
} catch (e) {
  // ComponentizeJS reports JavaScript syntax errors, unknown imports and missing exports
  // with the offending name; pass its message on unchanged.
  fail(`componentizing ${sourcePath} for world ${worldName} (WIT ${witPath}) failed:\n${e.message ?? e}`);
}
await mkdir(dirname(out), { recursive: true });
await writeFile(out, component);
console.log(`build.mjs: wrote ${out} (${Math.ceil(component.length / 1024)} KiB)`);
