// Caps on what a client can make the server hold: request bodies
// (max_body_mb), WebSocket messages (max_ws_message_mb) and output queued for
// a client that stopped reading (ws_queue_mb). Each over-cap client is refused
// or closed; the server and the other clients carry on, and the server's
// memory stays bounded.
//
// labbook-only (skipped on jupyter_server): the caps are set in labbook's
// config file, which jupyter_server does not read.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { useServer, RUN_LABBOOK_ONLY } from './lib/server.mjs';
import { api, rawKernelSocket, until, withTimeout, sleep } from './lib/clients.mjs';

const MiB = 1024 * 1024;
const labbookOnly = RUN_LABBOOK_ONLY ? {} : { skip: 'the caps are set in labbook\'s config file' };

const ctx = useServer({
  name: 'limits',
  config: '[server]\nmax_body_mb = 1\nmax_ws_message_mb = 1\nws_queue_mb = 8\n',
  // An ASan build keeps freed memory in quarantine (256 MB by default), which
  // would read as growth; keep it small so VmRSS shows what the hub holds.
  env: { ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=16'].filter(Boolean).join(':') },
});

/** VmRSS and VmHWM of a process, in bytes. */
function memoryOf(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(status.match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'))[1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

async function startKernel() {
  const r = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
  assert.equal(r.status, 201, r.text);
  return r.body.id;
}

/** Runs code on a raw client and waits for its reply and idle status. */
async function run(c, code, timeoutMs = 30000) {
  const req = c.execute(code);
  const id = req.header.msg_id;
  const reply = await c.waitFor((m) => m.header?.msg_type === 'execute_reply' && m.parent_header?.msg_id === id,
    { what: `execute_reply to ${JSON.stringify(code.slice(0, 40))}`, timeoutMs });
  await c.waitFor((m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' &&
    m.parent_header?.msg_id === id, { what: 'idle', timeoutMs });
  const stdout = c.msgs.filter((m) => m.header?.msg_type === 'stream' && m.parent_header?.msg_id === id)
    .map((m) => m.content.text).join('');
  return { reply, stdout };
}

/** Resolves with {code, reason} when the client's WebSocket closes. */
function closedOf(c) {
  if (c.closeInfo) return Promise.resolve(c.closeInfo);
  return new Promise((resolve) => c.ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

describe('request bodies over max_body_mb', labbookOnly, () => {
  test('a 2 MiB PUT is refused with 413 and a JSON message; the server keeps serving', async () => {
    const content = 'x'.repeat(2 * MiB);
    const r = await api(ctx.server, 'alice', 'PUT', '/api/contents/big.txt', { type: 'file', format: 'text', content });
    assert.equal(r.status, 413, r.text.slice(0, 200));
    assert.equal(typeof r.body?.message, 'string', `a JSON message: ${r.text.slice(0, 200)}`);
    assert.match(r.body.message, /too large|limit/i);
    assert.ok(!fs.existsSync(path.join(ctx.server.drive('alice'), 'big.txt')), 'nothing written');

    const small = await api(ctx.server, 'alice', 'PUT', '/api/contents/small.txt', { type: 'file', format: 'text', content: 'ok' });
    assert.equal(small.status, 201);
    assert.equal((await api(ctx.server, 'alice', 'GET', '/api/status')).status, 200);
  });

  test('a body sent chunked (no Content-Length) is refused with 411, never taken for an empty one', async () => {
    // curl -T - and streaming clients send Transfer-Encoding: chunked. labbook
    // requires a Content-Length (every Jupyter client sends one) and says so.
    // Its own connection (agent: false), so that whatever the server makes of
    // it cannot spill into the other tests' pooled connections. The answer
    // must reach a client that is still sending: a server that closes at once
    // resets the connection and the client sees EPIPE instead (a third of the
    // tries before the lingering close), so it is tried 20 times.
    const put = (name, content) => new Promise((resolve, reject) => {
      const bytes = Buffer.from(JSON.stringify({ type: 'file', format: 'text', content }));
      let settled = false;
      const settle = (f, v) => { if (!settled) { settled = true; clearTimeout(deadline); f(v); } };
      const deadline = setTimeout(() => settle(reject, new Error('chunked PUT: no answer within 20 s')), 20000);
      const req = http.request({
        host: '127.0.0.1', port: ctx.server.port, method: 'PUT', path: `/api/contents/${name}`, agent: false,
        headers: { Authorization: `token ${ctx.server.tokens.alice}`, 'Content-Type': 'application/json',
          'Transfer-Encoding': 'chunked' },
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => settle(resolve, { status: res.statusCode, text: Buffer.concat(chunks).toString() }));
        res.on('error', (e) => settle(reject, e));
      });
      // A reset while sending: the answer may still be on its way; if none
      // comes, the client never learnt why.
      req.on('error', (e) => setTimeout(() => settle(reject,
        new Error(`chunked PUT: ${e.code || e.message} and no answer`)), 2000));
      for (let o = 0; o < bytes.length; o += 256 * 1024) req.write(bytes.subarray(o, o + 256 * 1024));
      req.end();
    });
    const content = 'y'.repeat(2 * MiB);
    for (let i = 0; i < 20; i++) {
      const big = await put('chunked-big.txt', content);
      assert.ok(big.status === 413 || big.status === 411, `${big.status} ${big.text.slice(0, 200)}`);
      assert.match(JSON.parse(big.text).message, /Content-Length|too large/);
    }
    assert.ok(!fs.existsSync(path.join(ctx.server.drive('alice'), 'chunked-big.txt')), 'nothing written');
    // A small one is saved (or refused with 411 Length Required), never
    // taken for a request without a body.
    const small = await put('chunked-small.txt', 'small');
    assert.ok(small.status === 201 || small.status === 411, `${small.status} ${small.text.slice(0, 200)}`);
    assert.equal(typeof JSON.parse(small.text).message === 'string' || small.status === 201, true);
    if (small.status === 201) {
      assert.equal(fs.readFileSync(path.join(ctx.server.drive('alice'), 'chunked-small.txt'), 'utf8'), 'small');
    }
    assert.equal((await api(ctx.server, 'alice', 'GET', '/api/status')).status, 200);
  });
});

describe('kernel WebSocket caps', labbookOnly, () => {
  let kernelId;
  before(async () => { kernelId = await startKernel(); });
  after(async () => { await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${kernelId}`); });

  test('a 2 MiB message closes that connection with 1009; another client keeps working', async () => {
    const good = rawKernelSocket(ctx.server, 'alice', kernelId);
    const bad = rawKernelSocket(ctx.server, 'alice', kernelId);
    try {
      await good.opened;
      await bad.opened;
      const closed = closedOf(bad);
      bad.execute(`s = "${'z'.repeat(2 * MiB)}"`);
      const info = await withTimeout(closed, 15000, 'the over-cap client to be closed');
      assert.equal(info.code, 1009, `close code ${info.code} (${info.reason})`);
      const r = await run(good, 'print("still here", 6*7)');
      assert.equal(r.reply.content.status, 'ok');
      assert.equal(r.stdout, 'still here 42\n');
      // The big message never reached the kernel.
      const s = await run(good, 'print("s" in globals())');
      assert.equal(s.stdout, 'False\n');
      // A message just under the cap is fine.
      const ok = await run(good, `t = "${'w'.repeat(MiB - 4096)}"\nprint(len(t))`);
      assert.equal(ok.stdout, `${MiB - 4096}\n`);
    } finally {
      await bad.close();
      await good.close();
    }
  });

  // One run, three tests: a slow client (paused socket) and a fast one on the
  // kernel while it prints 200 MiB.
  const TOTAL_MB = 200;
  let burst = null;

  test('a client that stops reading is closed and the hub does not buffer its output', async () => {
    const hub = ctx.server.pid;
    // Big stream messages are counted, not kept.
    const keep = (m) => m.header?.msg_type !== 'stream' || m.content.text.length < 4096;
    const fast = rawKernelSocket(ctx.server, 'alice', kernelId, { keep });
    const slow = rawKernelSocket(ctx.server, 'alice', kernelId, { keep });
    let fastStream = 0;
    fast.ws.on('message', (d) => {
      const m = JSON.parse(d.toString());
      if (m.header?.msg_type === 'stream') fastStream += m.content.text.length;
    });
    try {
      await fast.opened;
      await slow.opened;
      await run(fast, 'import sys\nline = "o" * 1023 + "\\n"\nblock = line * 1024');
      const before = memoryOf(hub);
      // The slow client stops reading: its socket is paused, so the hub's
      // writes to it back up.
      slow.ws._socket.pause();
      const slowClosed = closedOf(slow);
      fastStream = 0;
      const req = fast.execute(`for i in range(${TOTAL_MB}):\n    sys.stdout.write(block)\n    sys.stdout.flush()\nprint("done")`,
        { store_history: false });
      const id = req.header.msg_id;
      // The cell has finished once the hub reports the kernel idle again
      // (asked by REST: this must not depend on either WebSocket client).
      await sleep(500);
      await until(async () => (await api(ctx.server, 'alice', 'GET', `/api/kernels/${kernelId}`)).body.execution_state === 'idle',
        { timeoutMs: 60000, what: 'the kernel to be idle after printing' });
      const isIdle = (m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' &&
        m.parent_header?.msg_id === id;
      const fastEnd = await until(() => (fast.msgs.some(isIdle) ? 'idle' : fast.closed ? `closed (${fast.closeInfo.code})` : null),
        { timeoutMs: 60000, what: 'the fast client to see idle or be closed' });
      burst = { fastEnd, fastStream };

      const after = memoryOf(hub);
      const grew = (after.rss - before.rss) / MiB;
      const peak = (after.hwm - before.rss) / MiB;
      assert.ok(grew < 150, `hub VmRSS grew by ${grew.toFixed(0)} MiB while ${TOTAL_MB} MiB went by`);
      assert.ok(peak < 150, `hub peak VmHWM was ${peak.toFixed(0)} MiB over its VmRSS before`);

      // The slow client, once it reads again, finds itself closed by the hub
      // rather than sent everything.
      slow.ws._socket.resume();
      burst.slowClose = await withTimeout(slowClosed, 20000, 'the slow client to be closed');
      assert.ok(slow.bytes < 64 * MiB, `the slow client got ${(slow.bytes / MiB).toFixed(0)} MiB before it was closed`);

      // The kernel still works for a new client.
      const fresh = rawKernelSocket(ctx.server, 'alice', kernelId);
      try {
        await fresh.opened;
        assert.equal((await run(fresh, 'print("after")')).stdout, 'after\n');
      } finally {
        await fresh.close();
      }
    } finally {
      if (slow.ws._socket) slow.ws._socket.resume();
      slow.ws.terminate();
      await fast.close();
    }
  });

  test('meanwhile a client that kept reading got all the output and the idle status', () => {
    assert.ok(burst, 'the run above happened');
    assert.equal(burst.fastEnd, 'idle',
      `the client that kept reading was ${burst.fastEnd} after ${(burst.fastStream / MiB).toFixed(0)} of ${TOTAL_MB} MiB`);
    assert.equal(burst.fastStream, TOTAL_MB * MiB + 'done\n'.length);
  });

  test('the slow client is closed, with 1008 and a reason when it can still be told', () => {
    // The hub sends a close frame (1008, "client too slow: ...") behind whatever is
    // already in the socket. A client that stopped reading cannot read it before
    // libwebsockets gives up waiting for the closing handshake (a few seconds), so
    // it may only see the connection drop (1006). What matters: it is closed, and it
    // is never told anything else.
    assert.ok(burst?.slowClose, 'the run above happened');
    const { code, reason } = burst.slowClose;
    assert.ok(code === 1008 || code === 1006, `close code ${code} ${JSON.stringify(reason)}`);
    if (code === 1008) assert.match(reason, /slow|unsent|reading/);
  });
});
