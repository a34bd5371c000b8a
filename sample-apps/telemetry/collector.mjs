// A stand-in for the telemetry sample's collector, to try the sample by hand: prints each
// JSON body POSTed to it and answers 204 No Content. Not part of the app.
//
//   node sample-apps/telemetry/collector.mjs [PORT]      (default 8080, on 127.0.0.1)

import { createServer } from 'node:http';

const port = Number.parseInt(process.argv[2] ?? '8080', 10);

createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    console.log(`${request.method} ${request.url} ${body}`);
    response.writeHead(204).end();
  });
}).listen(port, '127.0.0.1', () => {
  console.log(`collector: listening on http://127.0.0.1:${port}/`);
});
