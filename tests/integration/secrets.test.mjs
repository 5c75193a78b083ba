// Secrets (google.colab.userdata, docs/colab.md): /api/secrets keeps each user's secrets
// encrypted at rest (the value's bytes are in no file of the data folder), one user never
// reaches another's; a kernel asks through its agent (a runtime cannot reach the hub's
// port) and gets the value once its notebook has access, NotebookAccessError before,
// SecretNotFoundError for a name that does not exist; over the plain Jupyter kernel
// WebSocket, as JupyterLab or VS Code connected to labbook use it. Sandboxed runtimes
// when the hub runs as root, and unsandboxed ones.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api, rawKernelSocket, until } from './lib/clients.mjs';

const skip = IS_LABBOOK ? false : 'secrets are labbook-only';

const isReply = (id) => (m) => m.header?.msg_type === 'execute_reply' && m.parent_header?.msg_id === id;
const isIdle = (id) => (m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' && m.parent_header?.msg_id === id;
const stdout = (c, id) => c.msgs.filter((m) => m.header?.msg_type === 'stream' && m.parent_header?.msg_id === id && m.content.name === 'stdout').map((m) => m.content.text).join('');

/** Runs code on raw kernel client c: {status, ename, evalue, stdout}. */
async function run(c, code) {
  const id = c.execute(code, { stop_on_error: false }).header.msg_id;
  const reply = await c.waitFor(isReply(id), { timeoutMs: 30000, what: `reply to ${code}` });
  await c.waitFor(isIdle(id), { timeoutMs: 30000, what: `idle after ${code}` });
  return { ...reply.content, stdout: stdout(c, id) };
}

/** Every regular file below dir. */
function filesBelow(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesBelow(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

function kit(ctx) {
  const s = () => ctx.server;
  return {
    put: (user, name, value, extra = {}) => api(s(), user, 'PUT', `/api/secrets/${name}`, { value, ...extra }),
    access: (user, name, notebook, on) => api(s(), user, 'PUT', `/api/secrets/${name}/access`, { notebook, access: on }),
    /** A notebook session's kernel, idle, and a raw WebSocket client of it. */
    async session(user, nbPath) {
      if (nbPath.includes('/')) await api(s(), user, 'PUT', `/api/contents/${path.dirname(nbPath)}`, { type: 'directory' });
      const put = await api(s(), user, 'PUT', `/api/contents/${nbPath}`, {
        type: 'notebook', format: 'json',
        content: { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] },
      });
      assert.ok(put.status === 201 || put.status === 200, put.text);
      const r = await api(s(), user, 'POST', '/api/sessions', { path: nbPath, name: nbPath, type: 'notebook', kernel: { name: 'python3' } });
      assert.equal(r.status, 201, r.text);
      const id = r.body.kernel.id;
      await until(async () => (await api(s(), user, 'GET', `/api/kernels/${id}`)).body?.execution_state === 'idle',
        { timeoutMs: 30000, what: 'kernel idle' });
      const c = rawKernelSocket(s(), user, id);
      await c.opened;
      return { id, c, session: r.body.id };
    },
    async end(user, k) {
      await k.c.close();
      await api(s(), user, 'DELETE', `/api/sessions/${k.session}`);
    },
  };
}

/** The kernel side, shared by the sandboxed and unsandboxed hubs. */
async function kernelFlow(ctx, k, nb) {
  const stamp = `v-${process.pid}-${Date.now()}`;
  assert.equal((await k.put('alice', 'HF_TOKEN', stamp)).status, 201);
  const s = await k.session('alice', nb);
  try {
    const before = await run(s.c, "from google.colab import userdata\nuserdata.get('HF_TOKEN')");
    assert.equal(before.status, 'error');
    assert.equal(before.ename, 'NotebookAccessError');
    assert.equal(before.evalue, 'Notebook does not have access to secret HF_TOKEN');
    const missing = await run(s.c, "userdata.get('NO_SUCH_SECRET')");
    assert.equal(missing.ename, 'SecretNotFoundError');
    assert.equal(missing.evalue, 'Secret NO_SUCH_SECRET does not exist.');
    const classes = await run(s.c, 'from google.colab import errors\n'
      + 'print(issubclass(userdata.SecretNotFoundError, errors.Error), issubclass(userdata.NotebookAccessError, Exception))');
    assert.equal(classes.stdout, 'True True\n');

    // The toggle, as the Secrets panel sets it for this notebook.
    const g = await k.access('alice', 'HF_TOKEN', nb, true);
    assert.equal(g.status, 200, g.text);
    assert.deepEqual(g.body.notebooks, [nb]);
    const got = await run(s.c, "print(userdata.get('HF_TOKEN'))");
    assert.equal(got.status, 'ok', `${got.ename}: ${got.evalue}`);
    assert.equal(got.stdout, `${stamp}\n`);

    // A new value is seen at once; access off again: refused again.
    assert.equal((await k.put('alice', 'HF_TOKEN', `${stamp}-2 é ✓`)).status, 200);
    assert.equal((await run(s.c, "print(userdata.get('HF_TOKEN'))")).stdout, `${stamp}-2 é ✓\n`);
    assert.equal((await k.access('alice', 'HF_TOKEN', nb, false)).status, 200);
    assert.equal((await run(s.c, "userdata.get('HF_TOKEN')")).ename, 'NotebookAccessError');

    // Access for another notebook is not access for this one.
    assert.equal((await k.access('alice', 'HF_TOKEN', `other-${nb}`, true)).status, 200);
    assert.equal((await run(s.c, "userdata.get('HF_TOKEN')")).ename, 'NotebookAccessError');
  } finally {
    await k.end('alice', s);
  }
}

describe('secrets API', { skip }, () => {
  const ctx = useServer({ name: 'secrets-api', users: ['alice', 'bob'] });
  const k = kit(ctx);

  test('create, list (names, never values), reveal, update, delete', async () => {
    const a = await k.put('alice', 'API_KEY', 'sk-first');
    assert.equal(a.status, 201, a.text);
    assert.equal(a.body.name, 'API_KEY');
    assert.equal(a.body.value, undefined);
    const list = await api(ctx.server, 'alice', 'GET', '/api/secrets');
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.map((x) => x.name), ['API_KEY']);
    assert.ok(!list.text.includes('sk-first'), list.text);
    const plain = await api(ctx.server, 'alice', 'GET', '/api/secrets/API_KEY');
    assert.equal(plain.body.value, undefined);
    const shown = await api(ctx.server, 'alice', 'GET', '/api/secrets/API_KEY?value=1');
    assert.equal(shown.body.value, 'sk-first');
    const upd = await k.put('alice', 'API_KEY', 'sk-second');
    assert.equal(upd.status, 200);
    assert.equal((await api(ctx.server, 'alice', 'GET', '/api/secrets/API_KEY?value=1')).body.value, 'sk-second');
    // With a notebook: whether it has access.
    await k.access('alice', 'API_KEY', 'dir/a.ipynb', true);
    const forNb = await api(ctx.server, 'alice', 'GET', '/api/secrets?notebook=dir/a.ipynb');
    assert.deepEqual(forNb.body.map((x) => [x.name, x.notebook_access]), [['API_KEY', true]]);
    const forOther = await api(ctx.server, 'alice', 'GET', '/api/secrets?notebook=b.ipynb');
    assert.deepEqual(forOther.body.map((x) => [x.name, x.notebook_access]), [['API_KEY', false]]);
    assert.equal((await api(ctx.server, 'alice', 'DELETE', '/api/secrets/API_KEY')).status, 204);
    assert.equal((await api(ctx.server, 'alice', 'GET', '/api/secrets/API_KEY')).status, 404);
    assert.equal((await api(ctx.server, 'alice', 'DELETE', '/api/secrets/API_KEY')).status, 404);
    // Created again: no access left over from before.
    await k.put('alice', 'API_KEY', 'x');
    const again = await api(ctx.server, 'alice', 'GET', '/api/secrets?notebook=dir/a.ipynb');
    assert.deepEqual(again.body.map((x) => x.notebook_access), [false]);
    await api(ctx.server, 'alice', 'DELETE', '/api/secrets/API_KEY');
  });

  test('bad names, values and bodies get clear errors', async () => {
    for (const bad of ['1ABC', 'A-B', 'A.B', 'Ä', 'x'.repeat(129)]) {
      const r = await k.put('alice', encodeURIComponent(bad), 'v');
      assert.equal(r.status, 400, `${bad}: ${r.text}`);
      assert.match(r.body.message, /letters, digits and underscores|at most 128/);
    }
    const big = await k.put('alice', 'BIG', 'x'.repeat(64 * 1024 + 1));
    assert.equal(big.status, 413);
    assert.match(big.body.message, /at most 64 KiB/);
    assert.equal((await k.put('alice', 'EXACT', 'x'.repeat(64 * 1024))).status, 201);
    await api(ctx.server, 'alice', 'DELETE', '/api/secrets/EXACT');
    const nobody = await api(ctx.server, 'alice', 'PUT', '/api/secrets/X', { nope: 1 });
    assert.equal(nobody.status, 400);
    const noSecret = await k.access('alice', 'NOT_THERE', 'a.ipynb', true);
    assert.equal(noSecret.status, 404);
    assert.match(noSecret.body.message, /No such secret: NOT_THERE/);
    const badAccess = await api(ctx.server, 'alice', 'PUT', '/api/secrets/X/access', { notebook: 'a.ipynb' });
    assert.equal(badAccess.status, 400);
    assert.equal((await api(ctx.server, null, 'GET', '/api/secrets')).status, 403);
  });

  test("one user never reaches another's secrets", async () => {
    assert.equal((await k.put('alice', 'SHARED_NAME', 'alice-value')).status, 201);
    const bl = await api(ctx.server, 'bob', 'GET', '/api/secrets');
    assert.deepEqual(bl.body, []);
    assert.equal((await api(ctx.server, 'bob', 'GET', '/api/secrets/SHARED_NAME?value=1')).status, 404);
    assert.equal((await api(ctx.server, 'bob', 'DELETE', '/api/secrets/SHARED_NAME')).status, 404);
    assert.equal((await k.access('bob', 'SHARED_NAME', 'a.ipynb', true)).status, 404);
    assert.equal((await k.put('bob', 'SHARED_NAME', 'bob-value')).status, 201);
    assert.equal((await api(ctx.server, 'alice', 'GET', '/api/secrets/SHARED_NAME?value=1')).body.value, 'alice-value');
    assert.equal((await api(ctx.server, 'bob', 'GET', '/api/secrets/SHARED_NAME?value=1')).body.value, 'bob-value');
  });

  test('values are encrypted at rest; the key is 0600 in the data folder', async () => {
    const value = `plain-${process.pid}-${Date.now()}-MARKER`;
    assert.equal((await k.put('alice', 'AT_REST', value)).status, 201);
    const keyFile = path.join(ctx.server.dataDir, 'secrets.key');
    const st = fs.statSync(keyFile);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.size, 32);
    const needle = Buffer.from(value);
    const files = filesBelow(ctx.server.dataDir);
    assert.ok(files.some((f) => f.endsWith('labbook.db')), files.join(' '));
    for (const f of files)
      assert.ok(!fs.readFileSync(f).includes(needle), `${f} holds the secret's value in plain text`);
    // And it is there, sealed: the name is in the database.
    const db = files.filter((f) => /labbook\.db/.test(f)).map((f) => fs.readFileSync(f));
    assert.ok(db.some((b) => b.includes(Buffer.from('AT_REST'))));
    assert.equal((await api(ctx.server, 'alice', 'GET', '/api/secrets/AT_REST?value=1')).body.value, value);
  });

  test('the values outlive a hub restart (the same key is read again)', async () => {
    assert.equal((await k.put('alice', 'KEEP', 'kept')).status, 201);
    await ctx.server.restart();
    assert.equal((await api(ctx.server, 'alice', 'GET', '/api/secrets/KEEP?value=1')).body.value, 'kept');
  });
});

describe('userdata.get() in sandboxed runtimes', { skip }, () => {
  const ctx = useServer({
    name: 'secrets-kernel',
    users: ['alice', 'bob'],
    config: '[profile.cpu]\nmax_per_user = 4\nidle_timeout_s = 0\n',
  });
  const k = kit(ctx);
  const needSandbox = (t) => {
    if (ctx.server.log().includes('runtimes run in sandboxes')) return false;
    t.skip('the hub does not run runtimes in sandboxes (it must run as root on Linux >= 5.19)');
    return true;
  };

  test('access per notebook over the plain kernel WebSocket: NotebookAccessError, SecretNotFoundError, the value', async (t) => {
    if (needSandbox(t)) return;
    await kernelFlow(ctx, k, 'work/secret-nb.ipynb');
  });

  test("another user's runtime finds none of alice's secrets; the socket is the runtime's own", async (t) => {
    if (needSandbox(t)) return;
    assert.ok([200, 201].includes((await k.put('alice', 'ALICE_ONLY', 'a-value')).status));
    await k.access('alice', 'ALICE_ONLY', 'b.ipynb', true);
    const s = await k.session('bob', 'b.ipynb');
    try {
      const r = await run(s.c, "from google.colab import userdata\nuserdata.get('ALICE_ONLY')");
      assert.equal(r.ename, 'SecretNotFoundError');
      // The kernel sees only its own agent's socket, owned by its root; the hub's key is
      // nowhere in its view.
      const v = await run(s.c, "import os, stat\np = os.environ['LABBOOK_USERDATA_SOCKET']\n"
        + "st = os.stat(p)\nprint(p, stat.S_ISSOCK(st.st_mode), st.st_uid, oct(st.st_mode & 0o777))");
      assert.equal(v.stdout, '/run/labbook/userdata.sock True 0 0o700\n');
      const key = await run(s.c, `import os\nprint(os.path.exists(${JSON.stringify(path.join(ctx.server.dataDir, 'secrets.key'))}))`);
      assert.equal(key.stdout, 'False\n');
      // A request the agent cannot parse, and a long one, get an error, not a hang.
      const raw = await run(s.c, "import socket, json\n"
        + "def ask(b):\n  s = socket.socket(socket.AF_UNIX)\n  s.connect(os.environ['LABBOOK_USERDATA_SOCKET'])\n"
        + "  s.sendall(b)\n  r = s.makefile().readline()\n  s.close()\n  return json.loads(r)['status']\n"
        + "print(ask(b'nonsense\\n'), ask(b'x' * 5000))");
      assert.equal(raw.stdout, 'error error\n');
    } finally {
      await k.end('bob', s);
    }
  });

  test('a kernel bound to no notebook gets NotebookAccessError', async (t) => {
    if (needSandbox(t)) return;
    assert.ok([200, 201].includes((await k.put('alice', 'LONE', 'v')).status));
    const r = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(r.status, 201);
    await until(async () => (await api(ctx.server, 'alice', 'GET', `/api/kernels/${r.body.id}`)).body?.execution_state === 'idle',
      { timeoutMs: 30000, what: 'kernel idle' });
    const c = rawKernelSocket(ctx.server, 'alice', r.body.id);
    await c.opened;
    try {
      const got = await run(c, "from google.colab import userdata\nuserdata.get('LONE')");
      assert.equal(got.ename, 'NotebookAccessError');
    } finally {
      await c.close();
      await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${r.body.id}`);
    }
  });
});

describe('userdata.get() in unsandboxed runtimes ([runtimes] sandbox = 0)', { skip }, () => {
  const ctx = useServer({
    name: 'secrets-nosandbox',
    users: ['alice'],
    config: '[runtimes]\nsandbox = 0\n\n[profile.cpu]\nmax_per_user = 4\nidle_timeout_s = 0\n',
  });
  const k = kit(ctx);

  test('the same flow through the agent socket in the runtime folder', async () => {
    await kernelFlow(ctx, k, 'plain.ipynb');
  });

  test('requests are rate-limited per runtime: a burst of 20, then 10 a second', async () => {
    assert.ok([200, 201].includes((await k.put('alice', 'RATE', 'r')).status));
    await k.access('alice', 'RATE', 'rate.ipynb', true);
    const s = await k.session('alice', 'rate.ipynb');
    try {
      const r = await run(s.c, "from google.colab import userdata\nok = limited = 0\nfor i in range(40):\n"
        + "    try:\n        userdata.get('RATE'); ok += 1\n    except RuntimeError as e:\n"
        + "        assert 'too many secret requests' in str(e), e; limited += 1\nprint(ok >= 20, limited > 0)");
      assert.equal(r.status, 'ok', `${r.ename}: ${r.evalue}`);
      assert.equal(r.stdout, 'True True\n');
      // A moment later it answers again.
      await new Promise((res) => setTimeout(res, 1200));
      assert.equal((await run(s.c, "print(userdata.get('RATE'))")).stdout, 'r\n');
    } finally {
      await k.end('alice', s);
    }
  });
});
