'use strict';
// A Node.js function on its own Runtime API loop whose event says what it does, each the way
// Node code does it (libuv underneath, glibc calls the guard sees):
//   {"delay_ms": N}                            wait N ms
//   {"send": {"host", "port", "bytes"}}        connect, write, close, all at once
//   {"connect": {"host", "port", "count"}}     connect `count` times, counting refusals
//   {"udp": {"host", "port"}}                  one DNS query, no connect
//   {"spawn": ["sh", "-c", "..."]}             run a command and wait for it
//   {"stop_extension": {"name", "ms"}}         SIGSTOP the processes named `name` (default
//                                              "warden"), wait `ms`, SIGCONT them
//   {"patch_parse": true}                      wrap JSON.parse (what a planted payload does;
//                                              the wrapper only counts its calls)
// Node's standard library only.

const childProcess = require('child_process');
const dgram = require('dgram');
const fs = require('fs');
const http = require('http');
const net = require('net');

// Logging set up at init the way many functions do: a runtime function replaced before any
// invocation, which Warden's language watch reports and Warden learns, never reports.
console.debug = console.log;

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const [apiHost, apiPort] = [api.slice(0, api.lastIndexOf(':')), api.slice(api.lastIndexOf(':') + 1)];
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function runtime(method, route, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: apiHost, port: apiPort, method, path: `/2018-06-01/runtime${route}`, agent,
      headers: { 'Content-Type': 'application/json' },
    }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function send(arg) {
  return new Promise((resolve) => {
    const out = { connected: false, sent: 0 };
    const sock = net.connect(Number(arg.port), arg.host, () => {
      out.connected = true;
      const bytes = Number(arg.bytes || 1000);
      sock.end(Buffer.alloc(bytes, 'x'), () => { out.sent = bytes; });
    });
    sock.on('data', () => {});
    sock.on('error', (err) => { out.error = err.code || String(err); resolve(out); });
    sock.on('close', () => resolve(out));
  });
}

async function connect(arg) {
  const out = { connected: 0, failed: 0 };
  for (let i = 0; i < Number(arg.count || 1); i += 1) {
    const ok = await new Promise((resolve) => {
      const sock = net.connect(Number(arg.port), arg.host, () => { sock.destroy(); resolve(true); });
      sock.on('error', () => resolve(false));
    });
    out[ok ? 'connected' : 'failed'] += 1;
  }
  return out;
}

function dnsQuery(name) {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const header = Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

function udp(arg) {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const query = dnsQuery(arg.name || 'data.example.com');
    sock.send(query, Number(arg.port || 53), arg.host, (err) => {
      sock.close();
      resolve(err ? { sent: 0, error: err.code || String(err) } : { sent: 1 });
    });
  });
}

function spawn(argv) {
  const [file, ...args] = argv;
  const run = childProcess.spawnSync(file, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  return run.error ? { error: run.error.code || String(run.error) } : { exit_code: run.status, signal: run.signal };
}

function processesNamed(name) {
  const pids = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === name) pids.push(Number(entry));
    } catch (err) { /* gone */ }
  }
  return pids;
}

async function stopExtension(arg) {
  const stopped = [];
  for (const pid of processesNamed(arg.name || 'warden')) {
    try { process.kill(pid, 'SIGSTOP'); stopped.push(pid); } catch (err) { /* not ours */ }
  }
  await sleep(Number(arg.ms || 1500));
  for (const pid of stopped) {
    try { process.kill(pid, 'SIGCONT'); } catch (err) { /* gone */ }
  }
  return { stopped };
}

let parsed = 0;

function patchParse() {
  const original = JSON.parse;
  JSON.parse = function (...args) {
    parsed += 1;
    return original.apply(this, args);
  };
  return { patched: true };
}

async function handle(event) {
  const out = { pid: process.pid };
  if (event.delay_ms) await sleep(Number(event.delay_ms));
  if (event.send) out.send = await send(event.send);
  if (event.connect) out.connect = await connect(event.connect);
  if (event.udp) out.udp = await udp(event.udp);
  if (Array.isArray(event.spawn)) out.spawn = spawn(event.spawn);
  if (event.stop_extension) out.stop_extension = await stopExtension(event.stop_extension);
  if (event.patch_parse) out.patch_parse = patchParse();
  if (parsed) out.parsed = parsed;
  return out;
}

async function main() {
  for (;;) {
    const next = await runtime('GET', '/invocation/next');
    const requestId = next.headers['lambda-runtime-aws-request-id'];
    try {
      const result = await handle(JSON.parse(next.body.toString('utf8')));
      await runtime('POST', `/invocation/${requestId}/response`, JSON.stringify(result));
    } catch (err) {
      await runtime('POST', `/invocation/${requestId}/error`,
        JSON.stringify({ errorType: err.name || 'Error', errorMessage: String(err.message || err) }));
    }
  }
}

main();
