// Memory proportional to the work (issue 10, item 12): saving and reading a notebook
// of tens of MiB costs the hub at most a small multiple of its size, and the memory
// goes back once the request is done; a notebook over max_notebook_mb is refused with
// 413 before it is parsed. The hub's own figures come from /proc/PID/status (VmHWM:
// its peak resident size; VmRSS: now). labbook-only (the cap and the figures are its).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api, sleep, until, rawKernelSocket, makeMsg } from './lib/clients.mjs';

const skip = IS_LABBOOK ? false : 'labbook-only: the hub\'s own memory and cap';
const CAP_MB = 64;
const ctx = useServer({ name: 'memory', config: `[server]\nmax_notebook_mb = ${CAP_MB}\n` });

/** The hub's VmHWM and VmRSS in bytes. */
function mem(pid) {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)[1]) * 1024;
  return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
}

/**
 * A notebook of about mib MiB, as training runs make them: half in PNGs (base64), half
 * in logs, whose text nbformat keeps as arrays of short lines (the costly shape: a
 * JSON value per line).
 */
function bigNotebook(mib) {
  const cells = [];
  const lines = [];
  for (let j = 0; j < 16384; j++) lines.push(`epoch ${j} loss ${(1 / (j + 1)).toFixed(6)}\n`);
  const logBytes = lines.join('').length;
  for (let i = 0; i < mib / 1.45; i++) {
    cells.push({
      cell_type: 'code', id: `p${i}`, source: `plot(${i})`, metadata: {}, execution_count: 2 * i + 1,
      outputs: [{ output_type: 'display_data', metadata: {}, data: {
        'image/png': crypto.randomBytes(384 << 10).toString('base64'), 'text/plain': [`<Figure ${i}>`],
      } }],
    });
    const logs = [];
    for (let have = 0; have < (1 << 19); have += logBytes) logs.push(...lines);
    cells.push({
      cell_type: 'code', id: `t${i}`, source: ['train(', `${i})`], metadata: {}, execution_count: 2 * i + 2,
      outputs: [{ output_type: 'stream', name: 'stdout', text: logs }],
    });
  }
  return { nbformat: 4, nbformat_minor: 5, metadata: {}, cells };
}

const MiB = 1 << 20;

test('saving and reading a 40 MiB notebook costs a small multiple of its size, and gives it back', { skip }, async () => {
  const pid = ctx.server.pid;
  // Warm up: the first requests allocate what every request needs.
  const small = { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] };
  assert.equal((await api(ctx.server, 'alice', 'PUT', '/api/contents/small.ipynb', { type: 'notebook', format: 'json', content: small })).status, 201);
  await api(ctx.server, 'alice', 'GET', '/api/contents/small.ipynb');
  const before = mem(pid);
  const nb = bigNotebook(40);
  const body = JSON.stringify({ type: 'notebook', format: 'json', content: nb });
  const size = Buffer.byteLength(body);
  assert.ok(size > 38 * MiB && size < CAP_MB * MiB, `notebook of ${(size / MiB).toFixed(1)} MiB`);
  const put = await api(ctx.server, 'alice', 'PUT', '/api/contents/big.ipynb', body, { raw: true });
  assert.equal(put.status, 201, put.text.slice(0, 300));
  const get = await api(ctx.server, 'alice', 'GET', '/api/contents/big.ipynb?content=1');
  assert.equal(get.status, 200);
  assert.equal(get.body.content.cells.length, nb.cells.length);
  const after = mem(pid);
  const peak = after.hwm - before.rss;
  process.stderr.write(`# notebook ${(size / MiB).toFixed(1)} MiB: hub peak +${(peak / MiB).toFixed(0)} MiB ` +
    `(${(peak / size).toFixed(1)}x), rss before ${(before.rss / MiB).toFixed(0)} MiB, after ${(after.rss / MiB).toFixed(0)} MiB\n`);
  assert.ok(peak < 8 * size, `the hub's peak grew by ${(peak / MiB).toFixed(0)} MiB for a ${(size / MiB).toFixed(0)} MiB notebook (${(peak / size).toFixed(1)}x; at most 8x)`);
  // Given back: once the requests are done and the file deleted, the hub is about as
  // big as it was.
  assert.equal((await api(ctx.server, 'alice', 'DELETE', '/api/contents/big.ipynb')).status, 204);
  let rss = 0;
  for (let i = 0; i < 20; i++) {
    rss = mem(pid).rss;
    if (rss - before.rss < size) break;
    await sleep(250);
  }
  process.stderr.write(`# rss after delete ${(rss / MiB).toFixed(0)} MiB\n`);
  assert.ok(rss - before.rss < size, `the hub kept ${((rss - before.rss) / MiB).toFixed(0)} MiB after the save was done (notebook ${(size / MiB).toFixed(0)} MiB)`);
});

test('recording a cell into a 40 MiB notebook costs a small multiple of it, and the tree is not kept', { skip }, async () => {
  const pid = ctx.server.pid;
  const nb = bigNotebook(40);
  nb.cells.push({ cell_type: 'code', id: 'run', source: 'print("recorded")', metadata: {}, outputs: [], execution_count: null });
  const body = JSON.stringify({ type: 'notebook', format: 'json', content: nb });
  const size = Buffer.byteLength(body);
  assert.equal((await api(ctx.server, 'alice', 'PUT', '/api/contents/rec.ipynb', body, { raw: true })).status, 201);
  const s = await api(ctx.server, 'alice', 'POST', '/api/sessions', { path: 'rec.ipynb', name: 'rec.ipynb', type: 'notebook', kernel: { name: 'python3' } });
  assert.equal(s.status, 201, s.text);
  const c = rawKernelSocket(ctx.server, 'alice', s.body.kernel.id);
  await c.opened;
  // From here the peak counts again (writing 5 to clear_refs resets VmHWM).
  await sleep(500);
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const before = mem(pid);
  const req = makeMsg('execute_request', { code: 'print("recorded")', silent: false, store_history: true,
    user_expressions: {}, allow_stdin: false, stop_on_error: true }, { session: c.sessionId });
  req.metadata = { cellId: 'run' };
  c.send(req);
  await c.waitFor((m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' &&
    m.parent_header?.msg_id === req.header.msg_id, { what: 'idle', timeoutMs: 30000 });
  await c.close(); // the hub saves recorded outputs while no client is connected
  await until(() => fs.readFileSync(`${ctx.server.drive('alice')}/rec.ipynb`, 'utf8').includes('"recorded\\n"'),
    { timeoutMs: 30000, what: 'the output recorded into the file' });
  await sleep(500);
  const after = mem(pid);
  const peak = after.hwm - before.rss;
  process.stderr.write(`# recorded into ${(size / MiB).toFixed(1)} MiB: peak +${(peak / MiB).toFixed(0)} MiB ` +
    `(${(peak / size).toFixed(1)}x), rss ${(before.rss / MiB).toFixed(0)} -> ${(after.rss / MiB).toFixed(0)} MiB\n`);
  assert.ok(peak < 8 * size, `recording took the peak up by ${(peak / size).toFixed(1)}x the notebook`);
  assert.ok(after.rss - before.rss < size / 2, `the hub kept ${((after.rss - before.rss) / MiB).toFixed(0)} MiB after recording`);
  await api(ctx.server, 'alice', 'DELETE', `/api/sessions/${s.body.id}`);
  await api(ctx.server, 'alice', 'DELETE', '/api/contents/rec.ipynb');
});

test('a notebook over max_notebook_mb is refused with 413, naming the setting', { skip }, async () => {
  const pid = ctx.server.pid;
  const body = JSON.stringify({ type: 'notebook', format: 'json', content: bigNotebook(CAP_MB + 8) });
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5'); // VmHWM counts from here
  const before = mem(pid);
  assert.ok(Buffer.byteLength(body) > CAP_MB * MiB);
  const r = await api(ctx.server, 'alice', 'PUT', '/api/contents/huge.ipynb', body, { raw: true });
  assert.equal(r.status, 413, r.text.slice(0, 300));
  assert.match(r.body?.message ?? '', /max_notebook_mb|MiB/, r.text.slice(0, 300));
  assert.equal((await api(ctx.server, 'alice', 'GET', '/api/contents/huge.ipynb')).status, 404, 'nothing saved');
  const after = mem(pid);
  const peak = after.hwm - before.rss;
  process.stderr.write(`# refused ${(Buffer.byteLength(body) / MiB).toFixed(0)} MiB: peak +${(peak / MiB).toFixed(0)} MiB\n`);
  assert.ok(peak < 16 * MiB, `refusing it cost ${(peak / MiB).toFixed(0)} MiB: its body was read into memory`);
  assert.equal((await api(ctx.server, 'alice', 'GET', '/api/status')).status, 200);
});
