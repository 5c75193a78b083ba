// Kernel lifecycle as clients see it: a kernel that dies is restarted and
// every client is told; a kernelspec that cannot start fails fast with a
// reason; replies go to the client that asked while iopub goes to all;
// reconnect replay (across protocols, expiry, cap); and SIGTERM of the server
// stopping its kernels.
//
// On jupyter_server: the "reason" of the restarting status and the message of
// a failed start are labbook's own (checked only on labbook); the replay
// expiry and cap are set in labbook's config (labbook-only).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { useServer, startServer, IS_LABBOOK, RUN_LABBOOK_ONLY } from './lib/server.mjs';
import { api, managersFor, execute, rawKernelSocket, settingsFor, sleep, until, withTimeout } from './lib/clients.mjs';

const V1 = 'v1.kernel.websocket.jupyter.org';
const REPLAY_KEEP_S = 3;
const REPLAY_MB = 1;
const labbookOnly = RUN_LABBOOK_ONLY ? {} : { skip: 'replay_keep_s and replay_mb are labbook config keys' };
const ownMessages = RUN_LABBOOK_ONLY ? {} : { skip: 'what a failed start says is labbook\'s own' };

// A Jupyter data folder with one more kernelspec whose program does not exist.
const jupyterPath = fs.mkdtempSync(path.join(os.tmpdir(), 'labbook-it-jpath-'));
fs.mkdirSync(path.join(jupyterPath, 'kernels', 'broken'), { recursive: true });
fs.writeFileSync(path.join(jupyterPath, 'kernels', 'broken', 'kernel.json'), JSON.stringify({
  argv: ['/nonexistent/labbook-it-no-such-python', '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
  display_name: 'Broken (program missing)',
  language: 'python',
}));
after(() => fs.rmSync(jupyterPath, { recursive: true, force: true }));

const ctx = useServer({
  name: 'lifecycle',
  config: `[kernels]\nreplay_keep_s = ${REPLAY_KEEP_S}\nreplay_mb = ${REPLAY_MB}\n`,
  env: { JUPYTER_PATH: jupyterPath },
});

async function startKernel(server = ctx.server) {
  const r = await api(server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
  assert.equal(r.status, 201, r.text);
  return r.body.id;
}

// Host processes of a kernel, found by its id in their command line (the agent's
// runtime folder, the kernel's connection file): inside labbook's sandbox a kernel
// has its own PID namespace, so os.getpid() says nothing about the host.
const kernelProcs = (id, what = 'ipykernel') => fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
  try {
    const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'utf8');
    return cmd.includes(id) && cmd.includes(what) && !/\) Z /.test(fs.readFileSync(`/proc/${d}/stat`, 'utf8'));
  } catch { return false; }
}).map(Number);

const isReply = (id, type = 'execute_reply') => (m) => m.header?.msg_type === type && m.parent_header?.msg_id === id;
const isIdle = (id) => (m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' && m.parent_header?.msg_id === id;
const streamOf = (c, id) => c.msgs.filter((m) => m.header?.msg_type === 'stream' && m.parent_header?.msg_id === id)
  .map((m) => m.content.text).join('');

/** Waits until the server reports the kernel busy, then idle (by REST: no WebSocket needed). */
async function busyThenIdle(kernelId) {
  const state = async () => (await api(ctx.server, 'alice', 'GET', `/api/kernels/${kernelId}`)).body.execution_state;
  await until(async () => (await state()) === 'busy', { timeoutMs: 10000, intervalMs: 50, what: 'kernel busy' });
  await until(async () => (await state()) === 'idle', { timeoutMs: 30000, what: 'kernel idle again' });
}

/** Runs code on a raw client; resolves with {reply, stdout} once idle. */
async function run(c, code, timeoutMs = 30000) {
  const id = c.execute(code).header.msg_id;
  const reply = await c.waitFor(isReply(id), { what: `execute_reply to ${JSON.stringify(code.slice(0, 40))}`, timeoutMs });
  await c.waitFor(isIdle(id), { what: 'idle', timeoutMs });
  return { reply, stdout: streamOf(c, id) };
}

describe('a kernel that dies', () => {
  test('every client is told it is restarting (with the reason); then it works again, without the old variables', async () => {
    const m = managersFor(ctx.server, 'alice');
    let kernel;
    const a = [];
    try {
      kernel = await m.kernels.startNew({ name: 'python3' });
      await until(() => kernel.connectionStatus === 'connected', { what: 'kernel connected' });
      await kernel.info;
      const statuses = [];
      kernel.statusChanged.connect((_, s) => statuses.push(s));
      const traffic = [];
      kernel.anyMessage.connect((_, { msg, direction }) => traffic.push(`${direction === 'send' ? '>' : '<'}${msg.channel}:${msg.header.msg_type}${msg.content?.execution_state ? '/' + msg.content.execution_state : ''}`));
      await execute(kernel, 'x_before_death = 41');
      const before = kernelProcs(kernel.id);
      assert.equal(before.length, 1, `one kernel process: ${before}`);
      const pid1 = before[0];

      a.push(rawKernelSocket(ctx.server, 'alice', kernel.id), rawKernelSocket(ctx.server, 'alice', kernel.id));
      await Promise.all(a.map((c) => c.opened));
      const from = a.map((c) => c.msgs.length);
      a[0].execute('import os\nos._exit(1)');
      const isRestarting = (msg) => msg.channel === 'iopub' && msg.header?.msg_type === 'status' &&
        msg.content?.execution_state === 'restarting';
      const seen = await Promise.all(a.map((c, i) => c.waitFor(isRestarting,
        { from: from[i], timeoutMs: 20000, what: `client ${i}: status restarting` })));
      if (IS_LABBOOK) {
        for (const s of seen) assert.match(s.content.reason ?? '', /died/i, `reason: ${JSON.stringify(s.content)}`);
      }
      // The @jupyterlab/services client shows it, comes back, and runs cells again.
      await until(() => statuses.includes('autorestarting') || statuses.includes('restarting'),
        { timeoutMs: 20000, what: 'JupyterLab client saw the restart' });
      // JupyterLab reconnects and at once sends kernel_info and the next cell,
      // while the new kernel is still starting: their iopub (status, output)
      // must not be lost, or the cell never ends.
      await until(() => kernel.connectionStatus === 'connected' && statuses.lastIndexOf('autorestarting') < statuses.length - 1,
        { timeoutMs: 30000, what: 'JupyterLab client reconnected' });
      // The first cell run once the client is back: its reply and its output.
      const first = await execute(kernel, 'print("first after restart", "x_before_death" in globals())', { timeoutMs: 15000 }).catch((e) => {
        const raw = a[1].msgs.slice(from[1]).map((x) => `${x.channel}:${x.header?.msg_type}${x.content?.execution_state ? '/' + x.content.execution_state : ''}`);
        throw new Error(`${e.message}; JupyterLab traffic: ${traffic.join(' ')}; statuses ${statuses.join(' ')}; raw client: ${raw.join(' ')}`);
      });
      assert.equal(first.reply.content.status, 'ok');
      assert.equal(first.stdout, 'first after restart False\n', 'the old variables are gone, and the output is shown');
      const p = await execute(kernel, '6 * 7');
      const res = p.outputs.find((o) => o.output_type === 'execute_result');
      assert.ok(res, `an execute_result for the second cell (iopub: ${p.iopub.map((x) => x.header.msg_type).join(' ')})`);
      const after = kernelProcs(kernel.id);
      assert.equal(after.length, 1, `one kernel process: ${after}`);
      assert.notEqual(after[0], pid1, 'a new kernel process');
      assert.equal(kernel.status, 'idle', 'JupyterLab shows the kernel idle after a cell');
      assert.ok(!fs.existsSync(`/proc/${pid1}`), 'the old kernel process is gone');
      // A client that connects now runs cells; on labbook one that stayed
      // connected through the restart does too (jupyter_server's clients
      // reconnect after "restarting", as JupyterLab does).
      const fresh = rawKernelSocket(ctx.server, 'alice', kernel.id);
      a.push(fresh);
      await fresh.opened;
      assert.equal((await run(fresh, 'print("alive again")')).stdout, 'alive again\n');
      if (IS_LABBOOK) assert.equal((await run(a[1], 'print("still connected")')).stdout, 'still connected\n');
      const one = await api(ctx.server, 'alice', 'GET', `/api/kernels/${kernel.id}`);
      assert.equal(one.body.execution_state, 'idle');
    } finally {
      for (const c of a) await c.close();
      if (kernel) await kernel.shutdown().catch(() => {});
      await m.dispose();
    }
  });
});

describe('kernels that cannot start', () => {
  test('a kernelspec whose program does not exist: 5xx with the reason, quickly; the server carries on', async () => {
    const specs = await api(ctx.server, 'alice', 'GET', '/api/kernelspecs');
    assert.ok(specs.body.kernelspecs.broken, 'the broken kernelspec from JUPYTER_PATH is listed');
    const t0 = Date.now();
    const r = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'broken' });
    const took = Date.now() - t0;
    assert.ok(r.status >= 500 && r.status < 600, `status ${r.status} ${r.text.slice(0, 200)}`);
    assert.ok(took < 10000, `answered in ${took} ms`);
    assert.equal(typeof r.body?.message, 'string', `a JSON message: ${r.text.slice(0, 200)}`);
    if (IS_LABBOOK) {
      assert.match(r.body.message, /failed to start/i);
      assert.match(r.body.message, /labbook-it-no-such-python|No such file/);
    }
    await until(async () => (await api(ctx.server, 'alice', 'GET', '/api/kernels')).body.length === 0,
      { timeoutMs: 10000, what: 'the failed kernel to leave the list' });
    // The same through a session.
    const s = await api(ctx.server, 'alice', 'POST', '/api/sessions',
      { path: 'broken.ipynb', name: 'broken.ipynb', type: 'notebook', kernel: { name: 'broken' } });
    assert.ok(s.status >= 500 && s.status < 600, `session: status ${s.status} ${s.text.slice(0, 200)}`);
    assert.deepEqual((await api(ctx.server, 'alice', 'GET', '/api/sessions')).body, []);
    // A good kernel still starts and runs.
    const id = await startKernel();
    const c = rawKernelSocket(ctx.server, 'alice', id);
    try {
      await c.opened;
      assert.equal((await run(c, 'print(6*7)')).stdout, '42\n');
    } finally {
      await c.close();
      await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${id}`);
    }
  });

  test('a failed start tells the reason without the server\'s own paths, and logs them', ownMessages, async () => {
    // A kernelspec whose program was in the server's data folder and is gone (a
    // runtime's environment removed, say). Installed while the server runs: an
    // unknown name makes it look at the Jupyter paths again.
    const gone = path.join(ctx.server.dataDir, 'runtimes', 'labbook-it-gone-env', 'bin', 'python');
    fs.mkdirSync(path.join(jupyterPath, 'kernels', 'gone'), { recursive: true });
    fs.writeFileSync(path.join(jupyterPath, 'kernels', 'gone', 'kernel.json'), JSON.stringify({
      argv: [gone, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
      display_name: 'Gone (program removed)',
      language: 'python',
    }));
    const noServerPath = (what, message) => {
      assert.equal(typeof message, 'string', `${what}: a message`);
      assert.match(message, /failed to start/i, what);
      assert.ok(!message.includes(ctx.server.dataDir), `${what} names the data folder: ${message}`);
      assert.doesNotMatch(message, /\/runtimes\/|\/proc\/|\/sys\//, `${what} names a server path: ${message}`);
      assert.match(message, /python|No such file/, `${what} still says what failed: ${message}`);
    };
    const r = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'gone' });
    assert.ok(r.status >= 500 && r.status < 600, `status ${r.status} ${r.text.slice(0, 300)}`);
    noServerPath('POST /api/kernels', r.body?.message);
    const s = await api(ctx.server, 'alice', 'POST', '/api/sessions',
      { path: 'gone.ipynb', name: 'gone.ipynb', type: 'notebook', kernel: { name: 'gone' } });
    assert.ok(s.status >= 500 && s.status < 600, `session: status ${s.status} ${s.text.slice(0, 300)}`);
    noServerPath('POST /api/sessions', s.body?.message);
    // The administrator finds the whole reason in the server's log.
    assert.ok(ctx.server.log().includes(gone), 'the log names the missing program');
    await until(async () => (await api(ctx.server, 'alice', 'GET', '/api/kernels')).body.length === 0,
      { timeoutMs: 10000, what: 'the failed kernels to leave the list' });
  });

  test('an unknown kernelspec name is a 404 naming it', async () => {
    const r = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'no-such-spec' });
    if (IS_LABBOOK) {
      assert.equal(r.status, 404, r.text);
      assert.match(r.body.message, /no-such-spec/);
    } else {
      assert.ok(r.status >= 400, `status ${r.status}`); // jupyter_server 1.23: 500
    }
  });
});

describe('two clients on one kernel', () => {
  let kernelId;
  before(async () => { kernelId = await startKernel(); });
  after(async () => { await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${kernelId}`); });

  test('replies go only to the client (session_id) that asked; iopub goes to both', async () => {
    const a = rawKernelSocket(ctx.server, 'alice', kernelId, { sessionId: `sa-${crypto.randomUUID()}` });
    const b = rawKernelSocket(ctx.server, 'alice', kernelId, { sessionId: `sb-${crypto.randomUUID()}` });
    try {
      await a.opened;
      await b.opened;
      const ra = await run(a, 'print("from a")\n1+1');
      const ida = ra.reply.parent_header.msg_id;
      await b.waitFor(isIdle(ida), { what: 'b sees a\'s idle' });
      assert.equal(streamOf(b, ida), 'from a\n', 'b sees a\'s output');
      assert.ok(b.msgs.some((m) => m.header?.msg_type === 'execute_result' && m.parent_header?.msg_id === ida));
      // b asks for kernel_info; a asks to complete: each reply to its asker only.
      const info = makeRequest(b, 'kernel_info_request', {});
      const comp = makeRequest(a, 'complete_request', { code: 'pri', cursor_pos: 3 });
      await b.waitFor(isReply(info, 'kernel_info_reply'), { what: 'b: kernel_info_reply' });
      await a.waitFor(isReply(comp, 'complete_reply'), { what: 'a: complete_reply' });
      await sleep(500); // time for a stray copy to arrive
      const shellOf = (c, id) => c.msgs.filter((m) => m.channel === 'shell' && m.parent_header?.msg_id === id);
      assert.equal(shellOf(a, ida).length, 1, 'a got its execute_reply once');
      assert.deepEqual(shellOf(b, ida), [], 'b did not get a\'s execute_reply');
      assert.deepEqual(shellOf(a, info), [], 'a did not get b\'s kernel_info_reply');
      assert.deepEqual(shellOf(b, comp), [], 'b did not get a\'s complete_reply');
      assert.equal(shellOf(b, info).length, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  /** Sends a shell request from client c; returns its msg_id. */
  function makeRequest(c, type, content) {
    const msg = {
      header: { msg_id: crypto.randomUUID(), msg_type: type, username: 'it', session: c.sessionId,
        date: new Date().toISOString(), version: '5.3' },
      parent_header: {}, metadata: {}, content, buffers: [], channel: 'shell',
    };
    c.send(msg);
    return msg.header.msg_id;
  }
});

describe('reconnect replay', () => {
  let kernelId;
  before(async () => { kernelId = await startKernel(); });
  after(async () => { await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${kernelId}`); });

  const SLOW_CELL = 'import time\ntime.sleep(0.3)\nfor i in range(4):\n    print(i, flush=True)\n    time.sleep(0.3)';

  /** Starts SLOW_CELL on a client of session `session` and drops it after its first output. */
  async function startAndDrop(session, protocols) {
    const a = rawKernelSocket(ctx.server, 'alice', kernelId, { sessionId: session, protocols });
    await a.opened;
    const id = a.execute(SLOW_CELL).header.msg_id;
    await a.waitFor((m) => m.header?.msg_type === 'stream' && m.parent_header?.msg_id === id, { what: 'first output' });
    a.ws.close();
    await until(() => a.closed, { what: 'first client closed' });
    return id;
  }

  test('another session_id gets nothing of what the first one missed', async () => {
    const s1 = crypto.randomUUID();
    const id = await startAndDrop(s1);
    const other = rawKernelSocket(ctx.server, 'alice', kernelId);
    try {
      await other.opened;
      await busyThenIdle(kernelId);
      await sleep(300);
      assert.deepEqual(other.msgs.filter((m) => m.channel !== 'iopub' && m.parent_header?.msg_id === id), [],
        'no reply meant for the other session');
    } finally {
      await other.close();
    }
    // On labbook the first session still gets its replay (jupyter_server 1.23
    // drops its buffer once another session connects).
    if (!RUN_LABBOOK_ONLY) return;
    const back = rawKernelSocket(ctx.server, 'alice', kernelId, { sessionId: s1 });
    try {
      await back.opened;
      await back.waitFor(isReply(id), { what: 'replayed execute_reply', timeoutMs: 10000 });
    } finally {
      await back.close();
    }
  });

  test('a binary v1 client that drops gets its replay as JSON when it comes back on the JSON protocol', async () => {
    const session = crypto.randomUUID();
    const { serializer } = settingsFor(ctx.server);
    const ws = new WebSocket(`${ctx.server.wsUrl}/api/kernels/${kernelId}/channels?session_id=${session}&token=${ctx.server.tokens.alice}`, [V1]);
    const got = [];
    ws.on('message', (d) => {
      const buf = Buffer.from(d);
      got.push(serializer.deserialize(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength), V1));
    });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    assert.equal(ws.protocol, V1);
    const msg = {
      header: { msg_id: crypto.randomUUID(), msg_type: 'execute_request', username: 'it', session, date: new Date().toISOString(), version: '5.3' },
      parent_header: {}, metadata: {}, channel: 'shell', buffers: [],
      content: { code: SLOW_CELL, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
    };
    ws.send(serializer.serialize(msg, V1));
    const id = msg.header.msg_id;
    await until(() => got.some((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === id), { what: 'first output' });
    await new Promise((resolve) => { ws.once('close', resolve); ws.close(); });
    const before = got.filter((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === id).map((m) => m.content.text).join('');
    await sleep(1500);
    const b = rawKernelSocket(ctx.server, 'alice', kernelId, { sessionId: session });
    try {
      await b.opened;
      await b.waitFor(isReply(id), { what: 'replayed execute_reply (JSON)', timeoutMs: 10000 });
      await sleep(300);
      assert.equal(before + streamOf(b, id), '0\n1\n2\n3\n');
    } finally {
      await b.close();
    }
  });

  test(`what a session missed is kept only replay_keep_s (${REPLAY_KEEP_S} s)`, labbookOnly, async () => {
    const session = crypto.randomUUID();
    const id = await startAndDrop(session);
    await sleep((REPLAY_KEEP_S + 2.5) * 1000);
    const b = rawKernelSocket(ctx.server, 'alice', kernelId, { sessionId: session });
    try {
      await b.opened;
      await sleep(800);
      assert.deepEqual(b.msgs.filter((m) => m.parent_header?.msg_id === id).map((m) => m.header.msg_type), [],
        'nothing replayed after replay_keep_s');
      assert.equal((await run(b, 'print("fresh")')).stdout, 'fresh\n');
    } finally {
      await b.close();
    }
  });

  test(`more than replay_mb (${REPLAY_MB} MiB) missed: the replay stays under the cap and still ends the cell`, labbookOnly, async () => {
    const session = crypto.randomUUID();
    const a = rawKernelSocket(ctx.server, 'alice', kernelId, { sessionId: session });
    await a.opened;
    const id = a.execute('import time, sys\ntime.sleep(0.5)\nfor i in range(6):\n    sys.stdout.write("r" * 1048575 + "\\n")\n    sys.stdout.flush()\nprint("end")').header.msg_id;
    await a.close();
    await busyThenIdle(kernelId);
    const b = rawKernelSocket(ctx.server, 'alice', kernelId, { sessionId: session });
    try {
      await b.opened;
      await sleep(1000);
      const replayed = streamOf(b, id).length;
      assert.ok(replayed <= REPLAY_MB * 1024 * 1024, `replayed ${replayed} bytes of output`);
      // Whatever output was dropped, the reconnected client must learn the cell ended,
      // or a notebook shows it running for ever.
      assert.ok(b.msgs.some(isReply(id)), 'the execute_reply is replayed');
    } finally {
      await b.close();
    }
  });
});

test('SIGTERM: the server exits 0 within 10 s; its runtimes live on and are taken back at the next start', async () => {
  const server = await startServer({ name: 'lifecycle-sigterm', users: ['alice'] });
  const p = server.proc;
  try {
    const id = await startKernel(server);
    const c = rawKernelSocket(server, 'alice', id);
    await c.opened;
    assert.equal((await run(c, 'x = 41 + 1\nprint(x)')).stdout, '42\n');
    const procs = kernelProcs(id, '');
    assert.ok(procs.length >= 1, 'the kernel (and its agent) are there before');
    const exited = new Promise((resolve) => p.once('exit', (code, sig) => resolve({ code, sig })));
    const t0 = Date.now();
    p.kill('SIGTERM');
    let timer;
    const res = await Promise.race([exited, new Promise((resolve) => { timer = setTimeout(() => resolve(null), 10000); })]);
    clearTimeout(timer);
    server.proc = null;
    assert.ok(res, 'the server exited within 10 s of SIGTERM');
    assert.deepEqual(res, { code: 0, sig: null }, `exit ${JSON.stringify(res)}`);
    assert.ok(Date.now() - t0 < 10000);
    await until(() => c.closed, { timeoutMs: 5000, what: 'the client\'s WebSocket to close' });
    if (!IS_LABBOOK) return; // jupyter_server's kernels end with it
    // Closing the server left the runtime running...
    await sleep(1000);
    assert.deepEqual(kernelProcs(id, '').sort(), procs.sort(), 'the runtime keeps running without the hub');
    // ...and the next start takes it back: same kernel id, same variables.
    await server.restart();
    await until(async () => (await api(server, 'alice', 'GET', `/api/kernels/${id}`)).body?.execution_state === 'idle',
      { timeoutMs: 15000, what: 'the kernel to be back and idle' });
    const c2 = rawKernelSocket(server, 'alice', id);
    await c2.opened;
    assert.equal((await run(c2, 'print(x)')).stdout, '42\n', 'the variable survived the hub restart');
    await c2.close();
    // Shutting it down now ends its processes.
    assert.equal((await api(server, 'alice', 'DELETE', `/api/kernels/${id}`)).status, 204);
    await until(() => kernelProcs(id, '').length === 0, { timeoutMs: 8000, what: 'the runtime\'s processes to end' });
  } finally {
    await server.stop().catch(() => {});
    fs.rmSync(server.dataDir, { recursive: true, force: true });
    if (!process.exitCode) fs.rmSync(server.logFile, { force: true });
  }
});
