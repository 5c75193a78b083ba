// A client that stops reading in the middle of a message: the hub cuts it off
// within ws_stall_s, whatever it has half received, and lets go of the message.
// Before, the hub kept the rest of the message (and the TCP connection) for as
// long as the client kept the connection open: a closed client had to finish
// its message first, and a stalled socket never became writable again.
//
// labbook-only (skipped on jupyter_server): ws_stall_s is set in labbook's
// config file.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import { useServer, RUN_LABBOOK_ONLY } from './lib/server.mjs';
import { api, rawKernelSocket, until, sleep } from './lib/clients.mjs';

const MiB = 1024 * 1024;
const STALL_S = 2;
const MESSAGE_MB = 50;
const labbookOnly = RUN_LABBOOK_ONLY ? {} : { skip: 'ws_stall_s is set in labbook\'s config file' };

// The queue cap is over the message, so that only the stall can cut the client.
const ctx = useServer({
  name: 'stall',
  config: `[server]\nws_queue_mb = 256\nws_stall_s = ${STALL_S}\n`,
  env: { ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=16'].filter(Boolean).join(':') },
});

function rssOf(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(status.match(/^VmRSS:\s+(\d+) kB/m)[1]) * 1024;
}

/**
 * A WebSocket client written on a bare TCP socket: it sends the upgrade, then
 * reads until it has `readBytes` of frames and stops reading (the socket is
 * paused, the connection kept open). Resolves `stalled` then; `ended` resolves
 * with the bytes it got in all once the server's side of the connection ends.
 */
function stallingClient(server, kernelId, readBytes) {
  const sock = net.connect(server.port, '127.0.0.1');
  const key = crypto.randomBytes(16).toString('base64');
  const url = `/api/kernels/${kernelId}/channels?session_id=${crypto.randomUUID()}&token=${server.tokens.alice}`;
  sock.write(`GET ${url} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  const c = { sock, head: '', upgraded: false, bytes: 0 };
  let onUpgrade, onStall;
  c.opened = new Promise((resolve, reject) => { onUpgrade = resolve; sock.once('error', reject); });
  c.stalled = new Promise((resolve) => { onStall = resolve; });
  c.ended = new Promise((resolve) => sock.once('close', () => resolve(c.bytes)));
  sock.on('error', () => {});
  sock.on('data', (d) => {
    if (!c.upgraded) {
      c.head += d.toString('latin1');
      const at = c.head.indexOf('\r\n\r\n');
      if (at < 0) return;
      c.upgraded = true;
      assert.match(c.head.slice(0, at), /^HTTP\/1\.1 101/);
      onUpgrade();
      d = Buffer.from(c.head.slice(at + 4), 'latin1');
    }
    c.bytes += d.length;
    if (c.readBytes !== undefined && c.bytes >= c.readBytes && !sock.isPaused()) {
      sock.pause();
      onStall();
    }
  });
  c.stopAfter = (n) => { c.readBytes = n; };
  c.stopAfter(readBytes);
  return c;
}

describe('a client that stops reading mid-message', labbookOnly, () => {
  let kernelId;
  before(async () => {
    const r = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(r.status, 201, r.text);
    kernelId = r.body.id;
  });
  after(async () => { await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${kernelId}`); });

  test('is cut off within ws_stall_s and the hub lets go of the message; another client keeps working', async () => {
    const hub = ctx.server.pid;
    const keep = (m) => m.header?.msg_type !== 'stream' || m.content.text.length < 4096;
    const good = rawKernelSocket(ctx.server, 'alice', kernelId, { keep });
    let goodStream = 0;
    good.ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      if (m.header?.msg_type === 'stream') goodStream += m.content.text.length;
    });
    await good.opened;
    const warm = good.execute('print("warm")');
    await good.waitFor((m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' &&
      m.parent_header?.msg_id === warm.header.msg_id, { what: 'idle after the warm-up' });

    // The stalling client reads a megabyte (the first fragments of the big
    // message: what comes before it is a few small messages), then stops.
    const stall = stallingClient(ctx.server, kernelId, MiB);
    await stall.opened;
    await sleep(200);
    const before = rssOf(hub);
    goodStream = 0;
    const req = good.execute(`import sys\nsys.stdout.write("x" * ${MESSAGE_MB * MiB})\nsys.stdout.flush()`,
      { store_history: false });
    await stall.stalled;
    const stalledAt = Date.now();
    await good.waitFor((m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' &&
      m.parent_header?.msg_id === req.header.msg_id, { what: 'idle after the big output', timeoutMs: 60000 });
    assert.equal(goodStream, MESSAGE_MB * MiB, 'the client that kept reading got the whole message');

    // The hub cuts the stalled connection off within the bound (the tick that
    // notices it is at most a second late), and its memory goes back down.
    await until(() => rssOf(hub) < before + (MESSAGE_MB / 2) * MiB,
      { timeoutMs: (STALL_S + 10) * 1000, what: 'the hub\'s VmRSS to fall back' })
      .catch((e) => {
        throw new Error(`${e.message}: ${(rssOf(hub) / MiB).toFixed(0)} MiB, ${(before / MiB).toFixed(0)} MiB before`);
      });
    const tookS = (Date.now() - stalledAt) / 1000;
    assert.ok(tookS < STALL_S + 8, `the stalled client was cut off after ${tookS.toFixed(1)} s`);
    assert.match(ctx.server.log(), /closing a client that stopped reading/);

    // Reading again, the client finds its connection ended, short of the message.
    stall.stopAfter(undefined);
    stall.sock.resume();
    const got = await Promise.race([stall.ended, sleep(10000).then(() => null)]);
    assert.ok(got !== null, 'the stalled connection ended once its client read what was on the way');
    assert.ok(got < MESSAGE_MB * MiB, `the stalled client got ${(got / MiB).toFixed(1)} MiB`);

    // The kernel goes on serving the client that kept reading.
    const after = good.execute('print(6*7)');
    const out = await good.waitFor((m) => m.header?.msg_type === 'stream' && m.parent_header?.msg_id === after.header.msg_id,
      { what: 'the next output' });
    assert.equal(out.content.text, '42\n');
    stall.sock.destroy();
    await good.close();
  });
});
