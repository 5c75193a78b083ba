// The hub's network edge under hostile or careless clients: it listens on exactly
// the address it was told (and says so), unauthenticated requests cost it no
// memory, and a user's unfinished WebSocket messages are capped together.
//
// labbook-only: jupyter_server's listener, memory and limits are its own.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { useServer, RUN_LABBOOK_ONLY, IS_LABBOOK, freePort } from './lib/server.mjs';
import { api, sleep, withTimeout } from './lib/clients.mjs';
import http from 'node:http';
import WebSocket from 'ws';

const labbookOnly = RUN_LABBOOK_ONLY ? {} : { skip: 'the listener and memory limits are labbook-only' };
const SUITE_DIR = path.dirname(fileURLToPath(import.meta.url));
const LABBOOK_BIN = process.env.LABBOOK_BIN
  ? path.resolve(process.env.LABBOOK_BIN)
  : path.resolve(SUITE_DIR, '../../build/labbook');

const ctx = useServer({ name: 'hardening_net', users: ['alice'], config: '[server]\nmax_ws_message_mb = 64\n' });

/** A /proc/PID/status figure of the hub, in KiB (VmRSS now, VmHWM its peak). */
function hubMem(field) {
  const m = fs.readFileSync(`/proc/${ctx.server.pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  return Number(m[1]);
}

/** Resolves 'connected' or the connection error's code ('ECONNREFUSED'...). */
function tryConnect(host, port) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 3000 });
    s.once('connect', () => { s.destroy(); resolve('connected'); });
    s.once('timeout', () => { s.destroy(); resolve('timeout'); });
    s.once('error', (e) => resolve(e.code));
  });
}

/** Starts a bare hub with `--bind bind`; resolves {port, log, stop()} once it logs that it listens. */
async function startBare(bind) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'labbook-bind-'));
  fs.writeFileSync(path.join(dir, 'labbook.ini'), '[server]\nuser = root\n[runtimes]\npool = 0\n');
  const port = await freePort();
  const p = spawn(LABBOOK_BIN, ['serve', '--config', path.join(dir, 'labbook.ini'), '--data', path.join(dir, 'var'),
    '--port', String(port), '--bind', bind], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  p.stdout.on('data', (d) => { log += d; });
  p.stderr.on('data', (d) => { log += d; });
  const exited = new Promise((r) => p.once('exit', r));
  const deadline = Date.now() + 20000;
  while (!/listening on/.test(log) && Date.now() < deadline && p.exitCode === null) await sleep(50);
  return {
    port,
    log: () => log,
    async stop() {
      if (p.exitCode === null) p.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('listening where told', labbookOnly, () => {
  test('a hub bound to 127.0.0.1 refuses connections to 127.0.0.2, and its log names 127.0.0.1', async () => {
    const port = ctx.server.port;
    assert.equal(await tryConnect('127.0.0.1', port), 'connected');
    assert.equal(await tryConnect('127.0.0.2', port), 'ECONNREFUSED',
      'the hub answers on an address it was not told to listen on');
    assert.equal(await tryConnect('::1', port), 'ECONNREFUSED', 'nor on IPv6');
    assert.match(ctx.server.log(), new RegExp(`listening on http://127\\.0\\.0\\.1:${port}/ `));
  });

  test('--bind ::1 listens on ::1 only, and says so', async () => {
    const hub = await startBare('::1');
    try {
      assert.match(hub.log(), new RegExp(`listening on http://\\[::1\\]:${hub.port}/ `), hub.log());
      assert.equal(await tryConnect('::1', hub.port), 'connected');
      assert.equal(await tryConnect('127.0.0.1', hub.port), 'ECONNREFUSED');
    } finally {
      await hub.stop();
    }
  });

  test('--bind localhost listens on what the name resolves to, and the log shows the address', async () => {
    const hub = await startBare('localhost');
    try {
      assert.match(hub.log(), /listening on http:\/\/(127\.0\.0\.1|\[::1\]):\d+\//, hub.log());
      assert.doesNotMatch(hub.log(), /listening on http:\/\/localhost/);
      assert.equal(await tryConnect('127.0.0.2', hub.port), 'ECONNREFUSED');
    } finally {
      await hub.stop();
    }
  });

  test('an address that is not this machine\'s stops the hub with a message naming it', async () => {
    const hub = await startBare('192.0.2.1');
    try {
      const deadline = Date.now() + 10000;
      while (!/cannot listen/.test(hub.log()) && Date.now() < deadline) await sleep(50);
      assert.match(hub.log(), /cannot listen on http:\/\/192\.0\.2\.1:\d+\/ \("192\.0\.2\.1"\)/);
    } finally {
      await hub.stop();
    }
  });
});

/**
 * Sends a request declaring a body of `declared` bytes but writes only `send` of
 * them, and resolves with the status once the answer comes (the rest is never sent).
 */
function partialBody(method, reqPath, declared, send, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: ctx.server.port, method, path: reqPath,
      headers: { 'Content-Type': 'application/json', 'Content-Length': declared, ...headers },
    }, (res) => {
      res.resume();
      resolve(res.statusCode);
      req.destroy();
    });
    req.on('error', reject);
    req.write(Buffer.alloc(send, 0x61));
  });
}

describe('nothing unauthenticated costs memory', labbookOnly, () => {
  test('an unauthenticated big body is refused at once, before it is sent', async () => {
    // 1 MiB of a declared 60 MiB: the answer must come without the rest.
    for (const p of ['/api/contents/x.txt', '/api/kernels', '/api/uploads', '/tree', '/login']) {
      const status = await withTimeout(partialBody(p === '/login' ? 'POST' : 'PUT', p, 60 << 20, 1 << 20), 10000, `PUT ${p}`);
      assert.ok(status === 401 || status === 403 || (p === '/login' && status === 413), `${p}: ${status}`);
    }
    // With "Expect: 100-continue" (curl's way) nothing of the body is needed.
    const status = await withTimeout(partialBody('PUT', '/api/contents/y.txt', 60 << 20, 0, { Expect: '100-continue' }), 10000, 'expect');
    assert.ok(status === 401 || status === 403, `expect: ${status}`);
    // The hub still answers on a new connection.
    assert.equal((await api(ctx.server, 'alice', 'GET', '/api/contents')).status, 200);
  });

  test('eight unauthenticated 60 MiB bodies at once leave the hub\'s memory where it was', async () => {
    const body = Buffer.alloc(60 << 20, 0x61);
    const peak0 = hubMem('VmHWM');
    const send = () => new Promise((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1', port: ctx.server.port, method: 'PUT', path: '/api/contents/big.txt',
        headers: { 'Content-Type': 'application/json', 'Content-Length': body.length },
      }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
      req.on('error', (e) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? resolve('reset') : reject(e)));
      req.end(body);
    });
    const t0 = Date.now();
    const statuses = await withTimeout(Promise.all(Array.from({ length: 8 }, send)), 30000, 'eight bodies');
    for (const st of statuses) assert.ok(st === 401 || st === 403, `status ${st}`);
    assert.ok(Date.now() - t0 < 30000);
    const grew = (hubMem('VmHWM') - peak0) / 1024;
    assert.ok(grew < 24, `the hub's peak memory grew by ${grew.toFixed(0)} MiB for 480 MiB of unauthenticated bodies`);
    assert.ok(!fs.existsSync(path.join(ctx.server.drive('alice'), 'big.txt')));
  });

  test('a user\'s unfinished WebSocket messages are capped together, over every connection', async () => {
    const k = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(k.status, 201, k.text);
    const socks = [];
    try {
      const url = `${ctx.server.wsUrl}/api/kernels/${k.body.id}/channels?token=${ctx.server.tokens.alice}`;
      const peak0 = hubMem('VmHWM');
      const piece = Buffer.alloc(1 << 20, 0x61);
      // Three connections each start a 40 MiB message and never finish it: 120 MiB
      // against the 64 MiB cap (max_ws_message_mb) for all of alice's together.
      for (let i = 0; i < 3; i++) {
        const ws = new WebSocket(url);
        const c = { ws, closed: null };
        ws.on('close', (code) => { c.closed = code; });
        ws.on('error', () => {});
        await withTimeout(new Promise((r, j) => { ws.once('open', r); ws.once('error', j); }), 20000, 'open');
        socks.push(c);
        for (let m = 0; m < 40 && c.closed === null; m++) {
          await new Promise((r) => ws.send(piece, { fin: false, binary: true }, () => r()));
          if (ws.bufferedAmount > (8 << 20)) await sleep(20);
        }
        await sleep(300);
      }
      const deadline = Date.now() + 10000;
      while (socks.every((c) => c.closed === null) && Date.now() < deadline) await sleep(100);
      const closed = socks.filter((c) => c.closed === 1009);
      assert.ok(closed.length >= 1, `a connection past the cap is closed with 1009 (codes: ${socks.map((c) => c.closed)})`);
      const grew = (hubMem('VmHWM') - peak0) / 1024;
      assert.ok(grew < 64 + 24, `the hub's peak memory grew by ${grew.toFixed(0)} MiB`);
      // A message under the cap still goes through on a fresh connection.
      const ok = new WebSocket(url);
      await withTimeout(new Promise((r, j) => { ok.once('open', r); ok.once('error', j); }), 20000, 'open');
      ok.close();
    } finally {
      for (const c of socks) c.ws.terminate();
      await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${k.body.id}`);
    }
  });
});
