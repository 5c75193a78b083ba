// Runtimes (issue 3): runtime types as kernelspec variants, whole GPUs allotted by
// the hub (four fake GPUs here), the fair queue, per-user caps, impossible types
// refused, idle culling and the maximum lifetime. labbook-only: jupyter_server has
// none of it.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api, rawKernelSocket, until, sleep } from './lib/clients.mjs';

const skip = IS_LABBOOK ? false : 'runtimes are labbook-only';

const ctx = useServer({
  name: 'runtimes',
  users: ['alice', 'bob', 'carol'],
  config: [
    '[runtimes]', 'gpus = fake:4', '',
    '[profile.cpu]', 'idle_timeout_s = 2', 'max_per_user = 3', '',
    '[profile.gpu]', 'display_name = GPU', 'gpus = 1', 'max_per_user = 5', 'idle_timeout_s = 0', '',
    '[profile.short]', 'display_name = Short', 'max_lifetime_s = 4', 'idle_timeout_s = 0', '',
    '[profile.huge]', 'gpus = 8', '',
    '[profile.capped]', 'max_per_user = 2', 'idle_timeout_s = 0', '',
  ].join('\n') + '\n',
});

async function start(user, name) {
  const r = await api(ctx.server, user, 'POST', '/api/kernels', { name });
  return r;
}

async function run(user, id, code) {
  const c = rawKernelSocket(ctx.server, user, id);
  await c.opened;
  try {
    const req = c.execute(code);
    const mid = req.header.msg_id;
    await c.waitFor((m) => m.header.msg_type === 'status' && m.content.execution_state === 'idle' &&
      m.parent_header.msg_id === mid, { timeoutMs: 30000, what: `idle after ${code}` });
    return c.msgs.filter((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === mid)
      .map((m) => m.content.text).join('');
  } finally {
    await c.close();
  }
}

const gone = async (user, id) => (await api(ctx.server, user, 'GET', `/api/kernels/${id}`)).status === 404;

describe('runtime types', { skip }, () => {
  test('each runtime type is a kernelspec variant', async () => {
    const r = await api(ctx.server, 'alice', 'GET', '/api/kernelspecs');
    assert.equal(r.status, 200);
    const gpu = r.body.kernelspecs['python3-gpu'];
    assert.ok(gpu, `python3-gpu listed among ${Object.keys(r.body.kernelspecs)}`);
    assert.match(gpu.spec.display_name, /\(GPU\)$/);
    assert.equal(gpu.spec.metadata.labbook_gpus, 1);
    assert.ok(r.body.kernelspecs.python3, 'the default type keeps the plain name');
  });

  test('a type needing more GPUs than the host has is refused with a clear message', async () => {
    const r = await start('alice', 'python3-huge');
    assert.equal(r.status, 400);
    assert.match(r.body.message, /8 GPUs.*4/);
  });

  test('/api/runtimes/types describes each type in people\'s words: GPUs, memory, limits, what is free', async () => {
    const types = async (u) => {
      const r = await api(ctx.server, u, 'GET', '/api/runtimes/types');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return Object.fromEntries(r.body.map((t) => [t.name, t]));
    };
    let t = await types('alice');
    assert.deepEqual(Object.keys(t), ['cpu', 'gpu', 'short', 'huge', 'capped'], 'every profile, in config order');
    assert.equal(t.cpu.default, true);
    assert.equal(t.cpu.kernel_suffix, '');
    assert.equal(t.gpu.kernel_suffix, '-gpu');
    assert.equal(t.cpu.gpus, 0);
    assert.deepEqual(t.cpu.gpu_models, [], 'a CPU type has no GPU model');
    assert.equal(t.gpu.display_name, 'GPU');
    assert.deepEqual(t.gpu.gpu_models.map((m) => [m.name, m.memory_mb, m.count]),
      [0, 1, 2, 3].map((i) => [`Fake GPU ${i}`, 16384, 1]), 'the provider\'s models and memory');
    assert.equal(t.gpu.gpus_total, 4);
    assert.equal(t.gpu.gpus_free, 4);
    assert.equal(t.gpu.queued, 0);
    assert.equal(t.cpu.idle_timeout_s, 2);
    assert.equal(t.short.max_lifetime_s, 4);
    assert.equal(t.gpu.max_per_user, 5);
    assert.ok(t.cpu.memory_mb > 0, 'a RAM limit');
    assert.ok(t.cpu.host_cpus >= 1);
    assert.equal(t.gpu.note, null);
    assert.match(t.huge.note, /needs 8 GPUs; this server has 4/);

    const r = await start('alice', 'python3-gpu');
    assert.equal(r.status, 201, JSON.stringify(r.body));
    try {
      t = await types('alice');
      assert.equal(t.gpu.yours, 1, 'her runtime counts against her limit');
      assert.equal(t.gpu.gpus_free, 3);
      assert.equal(t.cpu.yours, 0);
      assert.equal((await types('bob')).gpu.yours, 0, 'not against anyone else\'s');
    } finally {
      await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${r.body.id}`);
    }
    assert.equal((await api(ctx.server, 'alice', 'POST', '/api/runtimes/types')).status, 405);
  });
});

describe('GPUs and the queue', { skip }, () => {
  test('GPU runtimes never share a GPU; the fifth waits; users are served in turn', async () => {
    // alice takes three GPUs, bob one: all four are busy.
    const held = [];
    for (const u of ['alice', 'alice', 'alice', 'bob']) {
      const r = await start(u, 'python3-gpu');
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.queue_position, undefined, 'granted at once');
      held.push({ user: u, id: r.body.id });
    }
    const seen = new Set();
    for (const k of held) {
      const dev = (await run(k.user, k.id, 'import os; print(os.environ["CUDA_VISIBLE_DEVICES"])')).trim();
      assert.ok(dev.length > 0, 'the runtime sees a GPU');
      assert.ok(!dev.includes(','), `exactly one GPU: ${dev}`);
      assert.ok(!seen.has(dev), `GPU ${dev} given twice`);
      seen.add(dev);
    }
    assert.equal(seen.size, 4);

    // alice asks for two more, then carol for one: they wait, alice first.
    const a1 = await start('alice', 'python3-gpu');
    const a2 = await start('alice', 'python3-gpu');
    const c1 = await start('carol', 'python3-gpu');
    for (const r of [a1, a2, c1]) assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(a1.body.queue_position, 1);
    assert.equal(a2.body.queue_position, 2);
    // carol has had nothing yet: she goes before both of alice's (the user served
    // least recently goes first; alice, with three, waits behind her).
    const pos = async (u, r) => (await api(ctx.server, u, 'GET', `/api/kernels/${r.body.id}`)).body.queue_position;
    assert.equal(await pos('carol', c1), 1);
    assert.equal(await pos('alice', a1), 2);
    assert.equal(await pos('alice', a2), 3);

    // bob gives his GPU back: carol's waiting runtime gets it and starts.
    assert.equal((await api(ctx.server, 'bob', 'DELETE', `/api/kernels/${held[3].id}`)).status, 204);
    await until(async () => (await api(ctx.server, 'carol', 'GET', `/api/kernels/${c1.body.id}`)).body.execution_state === 'idle',
      { timeoutMs: 30000, what: "carol's queued runtime to start" });
    assert.equal((await run('carol', c1.body.id, 'print(6*7)')).trim(), '42');
    assert.equal(await pos('alice', a1), 1);
    // Then alice's first; her second is next.
    assert.equal((await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${held[0].id}`)).status, 204);
    await until(async () => (await api(ctx.server, 'alice', 'GET', `/api/kernels/${a1.body.id}`)).body.execution_state === 'idle',
      { timeoutMs: 30000, what: "alice's queued runtime to start" });
    assert.equal(await pos('alice', a2), 1, "alice's second is next, not served yet");
    // A waiting runtime can be given up.
    assert.equal((await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${a2.body.id}`)).status, 204);
    for (const k of [held[1], held[2], { user: 'alice', id: a1.body.id }, { user: 'carol', id: c1.body.id }]) {
      await api(ctx.server, k.user, 'DELETE', `/api/kernels/${k.id}`);
    }
  });

  test("a user's limit of runtimes of one type is enforced with a clear message", async () => {
    const ids = [];
    try {
      for (let i = 0; i < 2; i++) {
        const r = await start('bob', 'python3-capped');
        assert.equal(r.status, 201);
        ids.push(r.body.id);
      }
      const over = await start('bob', 'python3-capped');
      assert.equal(over.status, 403);
      assert.match(over.body.message, /2/);
      // Another user is not held back by bob's runtimes.
      const other = await start('carol', 'python3-capped');
      assert.equal(other.status, 201);
      ids.push(other.body.id);
    } finally {
      for (const id of ids) {
        await api(ctx.server, 'bob', 'DELETE', `/api/kernels/${id}`);
        await api(ctx.server, 'carol', 'DELETE', `/api/kernels/${id}`);
      }
    }
  });
});

describe('notebooks that ask for a GPU', { skip }, () => {
  test("a notebook whose metadata.accelerator is \"GPU\" (Colab's field) gets the GPU type", async () => {
    const nb = (accelerator) => ({ nbformat: 4, nbformat_minor: 5, cells: [],
      metadata: accelerator ? { accelerator, kernelspec: { name: 'python3', display_name: 'Python 3' } } : {} });
    for (const [file, acc] of [['colab.ipynb', 'GPU'], ['plain.ipynb', null]]) {
      const put = await api(ctx.server, 'bob', 'PUT', `/api/contents/${file}`, { type: 'notebook', format: 'json', content: nb(acc) });
      assert.ok(put.status === 201 || put.status === 200);
    }
    const gpu = await api(ctx.server, 'bob', 'POST', '/api/sessions', { path: 'colab.ipynb', type: 'notebook', name: '', kernel: { name: 'python3' } });
    assert.equal(gpu.status, 201, JSON.stringify(gpu.body));
    assert.equal(gpu.body.kernel.name, 'python3-gpu');
    const dev = (await run('bob', gpu.body.kernel.id, 'import os; print(os.environ.get("CUDA_VISIBLE_DEVICES", ""))')).trim();
    assert.ok(dev.length > 0, 'the runtime has a GPU');
    const cpu = await api(ctx.server, 'bob', 'POST', '/api/sessions', { path: 'plain.ipynb', type: 'notebook', name: '', kernel: { name: 'python3' } });
    assert.equal(cpu.status, 201);
    assert.equal(cpu.body.kernel.name, 'python3', 'a notebook without the field keeps the default type');
    for (const s of [gpu, cpu]) await api(ctx.server, 'bob', 'DELETE', `/api/sessions/${s.body.id}`);
  });
});

describe('reclaiming runtimes', { skip }, () => {
  test('an idle runtime is reclaimed; one running a loop that prints nothing is kept', async () => {
    const idle = await start('carol', 'python3');
    const busy = await start('carol', 'python3');
    assert.equal(idle.status, 201);
    assert.equal(busy.status, 201);
    // A silent training loop, left running with no client connected.
    const c = rawKernelSocket(ctx.server, 'carol', busy.body.id);
    await c.opened;
    c.execute('import time\nwhile True:\n    time.sleep(0.2)');
    await c.waitFor((m) => m.header.msg_type === 'status' && m.content.execution_state === 'busy', { what: 'busy' });
    await c.close();
    await until(() => gone('carol', idle.body.id), { timeoutMs: 15000, what: 'the idle runtime to be reclaimed' });
    await sleep(3000); // well past the 2 s idle timeout
    const b = await api(ctx.server, 'carol', 'GET', `/api/kernels/${busy.body.id}`);
    assert.equal(b.status, 200, 'the busy runtime is kept');
    assert.equal(b.body.execution_state, 'busy');
    await api(ctx.server, 'carol', 'POST', `/api/kernels/${busy.body.id}/interrupt`);
    await api(ctx.server, 'carol', 'DELETE', `/api/kernels/${busy.body.id}`);
  });

  test('a runtime past its maximum lifetime is shut down, with a warning first', async () => {
    const r = await start('alice', 'python3-short');
    assert.equal(r.status, 201);
    const c = rawKernelSocket(ctx.server, 'alice', r.body.id);
    await c.opened;
    const warn = await c.waitFor((m) => m.header.msg_type === 'labbook_notice', { timeoutMs: 10000, what: 'the lifetime warning' });
    assert.match(warn.content.text, /maximum lifetime/);
    await until(() => gone('alice', r.body.id), { timeoutMs: 15000, what: 'the runtime to be shut down' });
    await c.close();
  });
});
