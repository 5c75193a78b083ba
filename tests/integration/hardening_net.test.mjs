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
import { api, sleep } from './lib/clients.mjs';

const labbookOnly = RUN_LABBOOK_ONLY ? {} : { skip: 'the listener and memory limits are labbook-only' };
const SUITE_DIR = path.dirname(fileURLToPath(import.meta.url));
const LABBOOK_BIN = process.env.LABBOOK_BIN
  ? path.resolve(process.env.LABBOOK_BIN)
  : path.resolve(SUITE_DIR, '../../build/labbook');

const ctx = useServer({ name: 'hardening_net', users: ['alice'] });

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
