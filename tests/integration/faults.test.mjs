// Nothing lost (issue 11): a cell that prints while no browser is connected keeps every
// line in its notebook across a crash (SIGKILL) or an orderly restart (SIGTERM) of the
// hub, the lines printed while the hub was down included. labbook-only: jupyter_server
// loses a kernel's output when it is not running.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api, rawKernelSocket, until, makeMsg, sleep } from './lib/clients.mjs';

const skip = IS_LABBOOK ? false : 'server-side recording across restarts is labbook-only';
const ctx = useServer({ name: 'faults' });

const LINES = 60; // one every 100 ms: six seconds of printing
const code = `import time\nfor i in range(${LINES}):\n    print("line", i, flush=True)\n    time.sleep(0.1)`;
const want = Array.from({ length: LINES }, (_, i) => `line ${i}\n`).join('');

const notebook = (cells) => ({
  nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'python3', display_name: 'Python 3' } },
  cells: cells.map(([id, source]) => ({ cell_type: 'code', id, source, metadata: {}, outputs: [], execution_count: null })),
});

function streamText(nb, cellId) {
  const cell = nb.cells.find((c) => c.id === cellId);
  return cell.outputs.filter((o) => o.output_type === 'stream' && o.name === 'stdout').map((o) => o.text).join('');
}

/** Starts the cell from a browser that closes after the first line; returns the session. */
async function startUnattended(file) {
  const put = await api(ctx.server, 'alice', 'PUT', `/api/contents/${file}`, {
    type: 'notebook', format: 'json', content: notebook([['c-loop', code]]),
  });
  assert.ok(put.status === 201 || put.status === 200, JSON.stringify(put.body));
  const sess = await api(ctx.server, 'alice', 'POST', '/api/sessions', { path: file, name: file, type: 'notebook', kernel: { name: 'python3' } });
  assert.equal(sess.status, 201, JSON.stringify(sess.body));
  const c = rawKernelSocket(ctx.server, 'alice', sess.body.kernel.id);
  await c.opened;
  const req = makeMsg('execute_request', { code, silent: false, store_history: true, user_expressions: {},
    allow_stdin: false, stop_on_error: true }, { session: c.sessionId });
  req.metadata = { cellId: 'c-loop' };
  c.send(req);
  await c.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === req.header.msg_id, { what: 'first line', timeoutMs: 60000 });
  await c.close();
  return sess.body;
}

async function everyLineAfter(signal, file) {
  const sess = await startUnattended(file);
  await sleep(1500); // some lines recorded by the first hub
  await ctx.server.kill(signal);
  await sleep(1500); // some lines printed while no hub runs
  await ctx.server.start();
  const nb = await until(async () => {
    const r = await api(ctx.server, 'alice', 'GET', `/api/contents/${file}?content=1`);
    return r.status === 200 && streamText(r.body.content, 'c-loop').includes(`line ${LINES - 1}\n`) ? r.body.content : null;
  }, { timeoutMs: 30000, what: 'the last line in the notebook' });
  const got = streamText(nb, 'c-loop');
  const lost = want.split('\n').filter((l) => l && !got.includes(`${l}\n`));
  assert.deepEqual(lost, [], `lines missing from the notebook after ${signal}`);
  assert.equal(got, want, 'every line once, in order');
  await api(ctx.server, 'alice', 'DELETE', `/api/sessions/${sess.id}`);
}

test('a hub crash (SIGKILL) while a cell prints unattended loses no line of it', { skip }, async () => {
  await everyLineAfter('SIGKILL', 'crash.ipynb');
});

test('an orderly restart (SIGTERM) while a cell prints unattended loses no line of it', { skip }, async () => {
  await everyLineAfter('SIGTERM', 'restart.ipynb');
});

// An orderly stop saves what the hub recorded last before it exits, whether or not a hub
// comes back (the file is read before the next start).
test('an orderly stop saves the running cell\'s last lines into the notebook', { skip }, async () => {
  const s = ctx.server;
  const file = 'last.ipynb';
  const stamped = 'import time\nfor i in range(400):\n    print("line", i, "%.3f" % time.time(), flush=True)\n    time.sleep(0.05)';
  const put = await api(s, 'alice', 'PUT', `/api/contents/${file}`, {
    type: 'notebook', format: 'json', content: notebook([['c-loop', stamped]]),
  });
  assert.ok(put.status === 201 || put.status === 200, JSON.stringify(put.body));
  const onDisk = path.join(s.drive('alice'), file);
  const sess = await api(s, 'alice', 'POST', '/api/sessions', { path: file, name: file, type: 'notebook', kernel: { name: 'python3' } });
  assert.equal(sess.status, 201, JSON.stringify(sess.body));
  const c = rawKernelSocket(s, 'alice', sess.body.kernel.id);
  await c.opened;
  const req = makeMsg('execute_request', { code: stamped, silent: false, store_history: true, user_expressions: {},
    allow_stdin: false, stop_on_error: true }, { session: c.sessionId });
  req.metadata = { cellId: 'c-loop' };
  c.send(req);
  await c.waitFor((m) => m.header.msg_type === 'stream', { what: 'first line', timeoutMs: 60000 });
  await c.close();
  // The recorder saves every 2 s: stop 1.5 s after one of its saves, so that what came
  // since is only in the hub's memory.
  const before = fs.statSync(onDisk).mtimeMs;
  await until(() => fs.statSync(onDisk).mtimeMs !== before, { intervalMs: 10, what: 'a save by the recorder' });
  await sleep(1500);
  const stopAt = Date.now() / 1000;
  await s.kill('SIGTERM');
  const nb = JSON.parse(fs.readFileSync(onDisk, 'utf8'));
  await s.start();
  const times = streamText(nb, 'c-loop').trim().split('\n').map((l) => Number(l.split(' ')[2]));
  const last = Math.max(...times);
  assert.ok(last >= stopAt - 0.4, `the notebook's last line was printed ${(stopAt - last).toFixed(2)} s before the stop`);
  await api(s, 'alice', 'DELETE', `/api/sessions/${sess.body.id}`);
});

// A runtime the hub has no record of (its database restored from a backup, say) is told
// to end when its agent dials in, instead of redialling for orphan_timeout_s.
test('an agent the restarted hub does not know is told to shut down', { skip }, async () => {
  const s = ctx.server;
  const k = await api(s, 'alice', 'POST', '/api/kernels', { name: 'python3' });
  assert.equal(k.status, 201, k.text);
  const agentOf = () => s.runtimeProcs().filter((pid) => {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv[1] === 'agent' && argv[2].includes(k.body.id);
    } catch { return false; }
  });
  await until(() => agentOf().length === 1, { what: 'its agent' });
  await s.kill('SIGKILL');
  execFileSync('/usr/bin/python3', ['-c',
    'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("DELETE FROM hub_state WHERE id = ?", (sys.argv[2],)); c.commit()',
    path.join(s.dataDir, 'labbook.db'), k.body.id]);
  await s.start();
  await until(() => agentOf().length === 0, { timeoutMs: 15000, what: 'the unknown agent to end' });
  assert.match(s.log(), /unknown runtime; telling it to shut down/);
});

// A runtime whose agent died (killed, crashed): requests to it are answered at once with
// an error, and "Restart kernel" starts a fresh runtime in its place, as JupyterLab expects.
test('a runtime whose agent died answers every request and restarts fresh', { skip }, async () => {
  const s = ctx.server;
  const k = await api(s, 'alice', 'POST', '/api/kernels', { name: 'python3' });
  assert.equal(k.status, 201, k.text);
  const id = k.body.id;
  const agentOf = () => s.runtimeProcs().filter((pid) => {
    try {
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return argv[1] === 'agent' && argv[2].includes(id);
    } catch { return false; }
  });
  const c = rawKernelSocket(s, 'alice', id);
  await c.opened;
  const before = c.execute('x = 41');
  await c.waitFor((m) => m.header.msg_type === 'execute_reply' && m.parent_header.msg_id === before.header.msg_id, { what: 'the first reply' });
  const [pid] = await until(() => { const p = agentOf(); return p.length === 1 ? p : null; }, { what: 'its agent' });
  process.kill(pid, 'SIGKILL');
  await until(async () => (await api(s, 'alice', 'GET', `/api/kernels/${id}`)).body.execution_state === 'dead', { what: 'the kernel shown dead' });

  // An execute on the dead runtime gets its answer: an error, then idle.
  const req = c.execute('x + 1');
  const reply = await c.waitFor((m) => m.header.msg_type === 'execute_reply' && m.parent_header.msg_id === req.header.msg_id, { what: 'a reply from the dead runtime', timeoutMs: 5000 });
  assert.equal(reply.content.status, 'error');
  assert.match(reply.content.evalue, /runtime is dead/);
  await c.waitFor((m) => m.header.msg_type === 'status' && m.parent_header.msg_id === req.header.msg_id && m.content.execution_state === 'idle', { what: 'idle', timeoutMs: 5000 });
  const err = c.msgs.find((m) => m.header.msg_type === 'error' && m.parent_header.msg_id === req.header.msg_id);
  assert.ok(err, 'the error is shown as an output');

  // Restart starts a fresh runtime: the same id works again, without the old variables.
  const r = await api(s, 'alice', 'POST', `/api/kernels/${id}/restart`);
  assert.equal(r.status, 200, r.text);
  assert.equal(r.body.id, id);
  const after = c.execute('print(1 + 1, "x" in dir())');
  await c.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === after.header.msg_id && m.content.text === '2 False\n', { what: 'the fresh runtime\'s answer', timeoutMs: 30000 });
  assert.equal(agentOf().length, 1);
  await c.close();
  await api(s, 'alice', 'DELETE', `/api/kernels/${id}`);
});

// Clients are told why their connection ends: the kernel's shutdown (1000) and a restart
// of the server (1012, "service restart": reconnect later) each with a close frame and a
// reason, never the bare drop a client sees as 1006.
test('a client that was connected across a hub restart is told that output may be missing from its view', { skip }, async () => {
  const file = 'gap-note.ipynb';
  const put = await api(ctx.server, 'alice', 'PUT', `/api/contents/${file}`, {
    type: 'notebook', format: 'json', content: notebook([['c-loop', code]]),
  });
  assert.ok(put.status === 201 || put.status === 200, JSON.stringify(put.body));
  const sess = await api(ctx.server, 'alice', 'POST', '/api/sessions', { path: file, name: file, type: 'notebook', kernel: { name: 'python3' } });
  assert.equal(sess.status, 201, JSON.stringify(sess.body));
  const kid = sess.body.kernel.id;
  const c = rawKernelSocket(ctx.server, 'alice', kid);
  await c.opened;
  const req = makeMsg('execute_request', { code, silent: false, store_history: true, user_expressions: {},
    allow_stdin: false, stop_on_error: true }, { session: c.sessionId });
  req.metadata = { cellId: 'c-loop' };
  c.send(req);
  const isNote = (m) => m.header.msg_type === 'stream' && m.parent_header?.msg_id === req.header.msg_id &&
    /server restarted/.test(m.content.text);
  await c.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === req.header.msg_id, { what: 'first line', timeoutMs: 60000 });
  await ctx.server.kill('SIGKILL');
  await sleep(1000); // lines printed while no hub runs: this client never sees them live
  await ctx.server.start();
  // The same client (JupyterLab keeps its session id) comes back.
  const back = rawKernelSocket(ctx.server, 'alice', kid, { sessionId: c.sessionId });
  await back.opened;
  const note = await back.waitFor(isNote, { what: 'the note on the running cell', timeoutMs: 15000 });
  assert.equal(note.content.name, 'stderr');
  // It still gets the rest live, and the run ends.
  await back.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header?.msg_id === req.header.msg_id &&
    m.content.text.includes(`line ${LINES - 1}\n`), { what: 'the last line live', timeoutMs: 30000 });
  assert.equal(back.msgs.filter(isNote).length, 1, 'told once');
  await back.close();
  await api(ctx.server, 'alice', 'DELETE', `/api/sessions/${sess.body.id}`);
});

test('kernel shutdown and server restart close channels with a code and a reason', { skip }, async () => {
  const s = ctx.server;
  const closed = (c) => until(() => c.closeInfo, { what: 'the close', timeoutMs: 15000 });
  const k1 = await api(s, 'alice', 'POST', '/api/kernels', { name: 'python3' });
  assert.equal(k1.status, 201, k1.text);
  const c1 = rawKernelSocket(s, 'alice', k1.body.id);
  await c1.opened;
  assert.equal((await api(s, 'alice', 'DELETE', `/api/kernels/${k1.body.id}`)).status, 204);
  assert.deepEqual(await closed(c1), { code: 1000, reason: 'the kernel was shut down' });

  const k2 = await api(s, 'alice', 'POST', '/api/kernels', { name: 'python3' });
  assert.equal(k2.status, 201, k2.text);
  const c2 = rawKernelSocket(s, 'alice', k2.body.id);
  await c2.opened;
  await s.kill('SIGTERM');
  assert.deepEqual(await closed(c2), { code: 1012, reason: 'the server is restarting' });
  await s.start();
  await api(s, 'alice', 'DELETE', `/api/kernels/${k2.body.id}`);
});

// A full disk is said as such: tus creation answers 507 Insufficient Storage, as a full
// write does, not 500.
test('tus creation on a full disk is 507', { skip }, async () => {
  const s = ctx.server;
  const dir = path.join(s.dataDir, 'uploads', 'alice');
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'labbook-full', dir]);
  try {
    // Fill it: the upload's record cannot be written.
    try { fs.writeFileSync(path.join(dir, 'filler'), Buffer.alloc(1 << 20)); } catch { /* full */ }
    const md = `filename ${Buffer.from('x.bin').toString('base64')}`;
    const r = await fetch(`${s.baseUrl}/api/uploads/`, {
      method: 'POST',
      headers: { Authorization: `token ${s.tokens.alice}`, 'Tus-Resumable': '1.0.0', 'Upload-Length': '10', 'Upload-Metadata': md },
    });
    const body = await r.text();
    assert.equal(r.status, 507, body);
    assert.match(body, /No space left on device/);
  } finally {
    execFileSync('umount', [dir]);
  }
});
