// The pool of pre-started runtimes ([runtimes] pool): a request for the default
// runtime type and kernel gets a ready runtime at once, bound to the user's own
// drive; the pool refills; other types start as usual; a pooled runtime is nobody's
// (no user sees it, idle culling leaves it) and the per-user cap still holds.
// labbook-only, and only when the hub sandboxes runtimes (as root).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api, until, probe } from './lib/clients.mjs';

const ctx = useServer({
  name: 'pool',
  users: ['alice', 'bob'],
  config: [
    '[runtimes]', 'pool = 1', '',
    '[profile.cpu]', 'max_per_user = 2', 'idle_timeout_s = 1', '',
    '[profile.other]', 'display_name = Other', 'idle_timeout_s = 0', '',
  ].join('\n') + '\n',
});

const skip = IS_LABBOOK ? false : 'the pool is labbook-only';

function needSandbox(t) {
  if (ctx.server.log().includes('runtimes run in sandboxes')) return false;
  t.skip('the hub does not run runtimes in sandboxes (it must run as root)');
  return true;
}

const readyCount = () => (ctx.server.log().match(/pool: runtime \S+ ready/g) || []).length;
/** The pooled runtime ready and not yet handed out, or null. */
function readyUnclaimed() {
  const log = ctx.server.log();
  const ready = [...log.matchAll(/pool: runtime (\S+) ready/g)].map((m) => m[1]);
  return ready.find((id) => !new RegExp(`kernel ${id} \\(\\w+\\): \\S+ from the pool`).test(log)) ?? null;
}
const fromPool = (id) => ctx.server.log().includes(`kernel ${id} `) && new RegExp(`kernel ${id} \\(\\w+\\): python3 from the pool`).test(ctx.server.log());

describe('pool', { skip }, () => {
  test("a start is served from the pool, with the user's own drive; the pool refills", async (t) => {
    if (needSandbox(t)) return;
    fs.mkdirSync(ctx.server.drive('alice'), { recursive: true });
    fs.writeFileSync(path.join(ctx.server.drive('alice'), 'alice-file.txt'), 'from alice');
    fs.mkdirSync(ctx.server.drive('bob'), { recursive: true });
    fs.writeFileSync(path.join(ctx.server.drive('bob'), 'bob-file.txt'), 'from bob');
    await until(() => readyCount() >= 1, { timeoutMs: 30000, what: 'a pooled runtime ready' });
    // Nobody sees the pooled runtime.
    assert.deepEqual((await api(ctx.server, 'alice', 'GET', '/api/kernels')).body, []);

    const a = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(a.status, 201, a.text);
    assert.ok(fromPool(a.body.id), 'served from the pool');
    assert.equal(a.body.execution_state, 'idle', 'ready when answered');
    const A = await probe(ctx.server, 'alice', a.body.id, "import os\nR['drive'] = sorted(os.listdir('/content/drive/MyDrive'))\nR['cwd'] = os.getcwd()\nopen('/content/drive/MyDrive/written-inside.txt', 'w').write('hi')");
    assert.deepEqual(A.drive, ['alice-file.txt']);
    assert.equal(A.cwd, '/content');
    assert.equal(fs.readFileSync(path.join(ctx.server.drive('alice'), 'written-inside.txt'), 'utf8'), 'hi');

    // It refills, and the next one is bob's with bob's drive only.
    await until(() => readyCount() >= 2, { timeoutMs: 30000, what: 'the pool refilled' });
    const b = await api(ctx.server, 'bob', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(b.status, 201, b.text);
    assert.ok(fromPool(b.body.id));
    const B = await probe(ctx.server, 'bob', b.body.id, "import os\nR['drive'] = sorted(os.listdir('/content/drive/MyDrive'))");
    assert.deepEqual(B.drive, ['bob-file.txt']);
    assert.equal((await api(ctx.server, 'alice', 'GET', `/api/kernels/${b.body.id}`)).status, 404, "bob's runtime is not alice's");
    for (const [u, id] of [['alice', a.body.id], ['bob', b.body.id]]) {
      assert.equal((await api(ctx.server, u, 'DELETE', `/api/kernels/${id}`)).status, 204);
    }
  });

  test('idle culling leaves the pooled runtime; other types start as usual; the cap holds', async (t) => {
    if (needSandbox(t)) return;
    const pooledId = await until(() => readyUnclaimed(), { timeoutMs: 30000, what: 'a pooled runtime ready' });
    await new Promise((r) => setTimeout(r, 2500)); // idle_timeout_s = 1
    assert.ok(!ctx.server.log().includes(`kernel ${pooledId} ((pool)): idle`), 'not culled');
    const o = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3-other' });
    assert.equal(o.status, 201, o.text);
    assert.ok(!fromPool(o.body.id), 'another type is not served from the pool');
    assert.notEqual(o.body.id, pooledId);
    // cpu allows alice 2: the pool serves one, a second starts fresh or from the refilled pool, a third is refused.
    const k1 = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    const k2 = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    const k3 = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(k1.status, 201, k1.text);
    assert.equal(k2.status, 201, k2.text);
    assert.equal(k3.status, 403, k3.text);
    assert.match(k3.body.message, /2/);
    for (const id of [o.body.id, k1.body.id, k2.body.id]) await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${id}`);
  });

  test('a hub crash orphans no pooled runtime: the next hub takes it into its pool', async (t) => {
    if (needSandbox(t)) return;
    const agents = () => ctx.server.runtimeProcs().filter((pid) => {
      try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[1] === 'agent'; } catch { return false; }
    });
    const pooledId = await until(() => readyUnclaimed(), { timeoutMs: 30000, what: 'a pooled runtime ready' });
    await until(() => agents().length === 1, { timeoutMs: 15000, what: 'one agent, the pooled one' });
    await ctx.server.kill('SIGKILL');
    await ctx.server.start();
    // The same runtime is ready again, and no second one is started beside it.
    await until(() => new RegExp(`pool: runtime ${pooledId} ready[\\s\\S]*`).test(ctx.server.log().split('=== ').pop()),
      { timeoutMs: 30000, what: 'the pooled runtime back in the new pool' });
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(agents().length, 1, 'one agent: the adopted pooled runtime');
    const a = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(a.status, 201, a.text);
    assert.equal(a.body.id, pooledId, 'served by the adopted runtime');
    const A = await probe(ctx.server, 'alice', a.body.id, "import os\nR['drive'] = os.path.isdir('/content/drive/MyDrive')");
    assert.equal(A.drive, true);
    await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${a.body.id}`);
  });
});
