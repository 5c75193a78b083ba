// Runtime figures (issue: resource figures): /api/runtimes with each runtime's memory,
// disk, CPU and GPUs, terminate and factory reset through it, /metrics in the Prometheus
// text format (administrators only), and `labbook status`. labbook-only.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, IS_LABBOOK, labbookCli } from './lib/server.mjs';
import { api, rawKernelSocket, until } from './lib/clients.mjs';

const skip = IS_LABBOOK ? false : 'runtime figures are labbook-only';
const MEMORY_MB = 1024;
const DISK_MB = 2048;
const MB = 1024 * 1024;

const ctx = useServer({
  name: 'figures',
  users: ['alice', 'bob'],
  config: [
    '[runtimes]', 'gpus = fake:2', '',
    '[profile.cpu]', `memory_mb = ${MEMORY_MB}`, `disk_mb = ${DISK_MB}`, 'idle_timeout_s = 0', 'max_per_user = 4', '',
  ].join('\n') + '\n',
});

let adminToken = null;
/** An administrator's token: a user added with --admin while the hub runs. */
function admin() {
  if (!adminToken) {
    labbookCli(['user', 'add', 'root', '--admin', '--data', ctx.server.dataDir]);
    adminToken = labbookCli(['user', 'token', 'root', '--data', ctx.server.dataDir]).trim();
    ctx.server.tokens.root = adminToken;
  }
  return 'root';
}

const sandboxed = () => ctx.server.log().includes('runtimes run in sandboxes');

async function startKernel(user) {
  const r = await api(ctx.server, user, 'POST', '/api/kernels', { name: 'python3' });
  assert.equal(r.status, 201, r.text);
  await until(async () => (await api(ctx.server, user, 'GET', `/api/kernels/${r.body.id}`)).body?.execution_state === 'idle',
    { timeoutMs: 30000, what: 'kernel idle' });
  return r.body.id;
}

async function run(user, id, code) {
  const c = rawKernelSocket(ctx.server, user, id);
  await c.opened;
  try {
    const mid = c.execute(code).header.msg_id;
    const reply = await c.waitFor((m) => m.header?.msg_type === 'execute_reply' && m.parent_header?.msg_id === mid,
      { timeoutMs: 60000, what: `reply to ${code.slice(0, 40)}` });
    await c.waitFor((m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' &&
      m.parent_header?.msg_id === mid, { timeoutMs: 30000, what: 'idle' });
    assert.equal(reply.content.status, 'ok', JSON.stringify(reply.content));
    return c.msgs.filter((m) => m.header?.msg_type === 'stream' && m.parent_header?.msg_id === mid)
      .map((m) => m.content.text).join('');
  } finally {
    await c.close();
  }
}

const runtime = async (user, id) => (await api(ctx.server, user, 'GET', `/api/runtimes/${id}`)).body;

describe('runtime figures', { skip }, () => {
  let id;

  test('a runtime holding ~200 MB shows its memory used above that and under its limit', async () => {
    id = await startKernel('alice');
    const r0 = await api(ctx.server, 'alice', 'GET', '/api/runtimes');
    assert.equal(r0.status, 200);
    const mine = r0.body.find((x) => x.id === id);
    assert.ok(mine, 'listed');
    assert.equal(mine.owner, 'alice');
    assert.equal(mine.profile, 'cpu');
    assert.equal(mine.name, 'python3');
    assert.equal(mine.state, 'running');
    assert.equal(mine.disk.quota, DISK_MB * MB);
    assert.deepEqual(mine.gpus, []);
    await run('alice', id, 'hog = b"x" * (200 << 20)');
    const rt = await until(async () => {
      const x = await runtime('alice', id);
      return x?.memory?.used > 200 * MB ? x : null;
    }, { timeoutMs: 15000, what: 'memory used over 200 MB' });
    assert.ok(rt.memory.limit, 'a limit is reported');
    assert.ok(rt.memory.used < rt.memory.limit, `${rt.memory.used} < ${rt.memory.limit}`);
    if (sandboxed()) assert.equal(rt.memory.limit, MEMORY_MB * MB);
    assert.ok(rt.memory.used < 600 * MB, `plausible: ${rt.memory.used}`);
    assert.ok(typeof rt.cpu.seconds === 'number' && rt.cpu.seconds > 0, JSON.stringify(rt.cpu));
  });

  test('disk used grows by what the runtime writes to /content', async (t) => {
    if (!sandboxed()) return t.skip('no /content without the sandbox');
    const before = await until(async () => {
      const x = await runtime('alice', id);
      return typeof x?.disk?.used === 'number' ? x.disk.used : null;
    }, { what: 'a disk figure' });
    await run('alice', id, 'import os\nwith open("/content/big.bin", "wb") as f: f.write(os.urandom(50 << 20))\nos.sync()');
    const after = await until(async () => {
      const x = await runtime('alice', id);
      return x.disk.used >= before + 50 * MB ? x.disk.used : null;
    }, { timeoutMs: 20000, what: `disk used past ${before} + 50 MB` });
    assert.ok(after < before + 80 * MB, `no more than written: ${after - before}`);
  });

  test('/metrics has the runtime\'s series, for administrators only', async () => {
    const anon = await api(ctx.server, null, 'GET', '/metrics');
    assert.equal(anon.status, 403);
    const user = await api(ctx.server, 'alice', 'GET', '/metrics');
    assert.equal(user.status, 403);
    const r = await api(ctx.server, admin(), 'GET', '/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const text = r.text;
    const labels = `{id="${id}",user="alice",profile="cpu"}`;
    const mem = text.match(new RegExp(`^labbook_runtime_memory_bytes${labels.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm'));
    assert.ok(mem, `memory series in:\n${text}`);
    assert.ok(Number(mem[1]) > 200 * MB);
    assert.ok(text.includes(`labbook_runtime_memory_limit_bytes${labels} `));
    assert.ok(text.includes(`labbook_runtime_cpu_seconds_total${labels} `));
    assert.match(text, /^# TYPE labbook_runtime_cpu_seconds_total counter$/m);
    assert.match(text, /^labbook_runtimes\{profile="cpu",state="running"\} 1$/m);
    assert.match(text, /^labbook_gpus_free 2$/m);
    assert.match(text, /^labbook_queue_length 0$/m);
    assert.match(text, /^labbook_gpu_utilization_ratio\{gpu="0",uuid="GPU-[0-9a-f-]+"\} 0$/m);
    assert.match(text, /^labbook_http_connections \d+$/m);
  });

  test('another user\'s runtime is neither listed nor reachable; admins see all with ?all=1', async () => {
    const list = await api(ctx.server, 'bob', 'GET', '/api/runtimes');
    assert.equal(list.status, 200);
    assert.ok(!list.body.some((x) => x.id === id), 'bob does not see alice\'s runtime');
    assert.equal((await api(ctx.server, 'bob', 'GET', `/api/runtimes/${id}`)).status, 404);
    assert.equal((await api(ctx.server, 'bob', 'DELETE', `/api/runtimes/${id}`)).status, 404);
    assert.equal((await api(ctx.server, 'bob', 'GET', '/api/runtimes?all=1')).status, 403);
    const all = await api(ctx.server, admin(), 'GET', '/api/runtimes?all=1');
    assert.equal(all.status, 200);
    assert.ok(all.body.some((x) => x.id === id && x.owner === 'alice'));
    assert.equal((await runtime('alice', id)).state, 'running', 'bob\'s DELETE did nothing');
  });

  test('`labbook status` prints the runtime and its owner', async () => {
    const out = await until(() => {
      const o = labbookCli(['status', '--data', ctx.server.dataDir]);
      return o.includes(id.slice(0, 8)) ? o : null;
    }, { timeoutMs: 8000, what: 'the runtime in labbook status' });
    const line = out.split('\n').find((l) => l.includes(id.slice(0, 8)));
    assert.match(line, /alice\s+cpu\s+(idle|busy)/);
    assert.match(line, /MiB \/ 1\.0 GiB/);
    assert.match(out, /Fake GPU 0/);
  });

  test('factory reset gives the runtime an empty /content and keeps its id', async (t) => {
    if (!sandboxed()) return t.skip('no overlay to reset without the sandbox');
    await run('alice', id, 'open("/content/marker", "w").write("x")\nopen("/usr/local/marker", "w").write("x")');
    const r = await api(ctx.server, 'alice', 'POST', `/api/runtimes/${id}/reset`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.id, id);
    const out = await run('alice', id, 'import os; print(os.path.exists("/content/marker"), os.path.exists("/usr/local/marker"), "hog" in globals())');
    assert.equal(out.trim(), 'False False False');
    await until(async () => (await runtime('alice', id)).disk.used < 40 * MB, { timeoutMs: 15000, what: 'disk figure back down' });
  });

  test('DELETE /api/runtimes/{id} terminates the runtime', async () => {
    const r = await api(ctx.server, 'alice', 'DELETE', `/api/runtimes/${id}`);
    assert.equal(r.status, 204);
    assert.equal((await api(ctx.server, 'alice', 'GET', `/api/kernels/${id}`)).status, 404);
    assert.equal((await api(ctx.server, 'alice', 'GET', `/api/runtimes/${id}`)).status, 404);
    await until(() => !labbookCli(['status', '--data', ctx.server.dataDir]).includes(id.slice(0, 8)),
      { timeoutMs: 8000, what: 'the runtime gone from labbook status' });
  });
});
