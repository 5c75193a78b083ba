// Sessions: what JupyterLab does when it opens a notebook (POST /api/sessions),
// re-opens it, renames it, switches its kernel, lists and closes it.
// All of it passes on jupyter_server too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer } from './lib/server.mjs';
import { api, execute, until } from './lib/clients.mjs';

const ctx = useServer({ name: 'sessions' });

async function kernelIds() {
  const r = await api(ctx.server, 'alice', 'GET', '/api/kernels');
  assert.equal(r.status, 200);
  return r.body.map((k) => k.id);
}

test('POST /api/sessions starts a kernel; the same path twice gives the same session', async () => {
  const body = { path: 'twice.ipynb', name: 'twice.ipynb', type: 'notebook', kernel: { name: 'python3' } };
  const a = await api(ctx.server, 'alice', 'POST', '/api/sessions', body);
  assert.equal(a.status, 201, a.text);
  assert.equal(typeof a.body.id, 'string');
  assert.equal(a.body.path, 'twice.ipynb');
  assert.equal(a.body.type, 'notebook');
  assert.equal(a.body.kernel.name, 'python3');
  assert.ok((await kernelIds()).includes(a.body.kernel.id), 'its kernel is running');

  const b = await api(ctx.server, 'alice', 'POST', '/api/sessions', body);
  assert.ok(b.status === 200 || b.status === 201, `${b.status} ${b.text}`);
  assert.equal(b.body.id, a.body.id);
  assert.equal(b.body.kernel.id, a.body.kernel.id);

  const list = await api(ctx.server, 'alice', 'GET', '/api/sessions');
  assert.equal(list.body.filter((s) => s.path === 'twice.ipynb').length, 1);

  const del = await api(ctx.server, 'alice', 'DELETE', `/api/sessions/${a.body.id}`);
  assert.equal(del.status, 204);
});

test('SessionManager: start, list, get, rename, change kernel, shut down', async () => {
  const m = ctx.managers();
  const session = await m.sessions.startNew({
    path: 'work/analysis.ipynb', name: 'analysis.ipynb', type: 'notebook', kernel: { name: 'python3' },
  });
  try {
    assert.equal(session.path, 'work/analysis.ipynb');
    assert.ok(session.kernel, 'session has a kernel');
    const firstKernel = session.kernel.id;
    const r = await execute(session.kernel, 'session_var = 7\nsession_var * 6');
    assert.equal(r.outputs.find((o) => o.output_type === 'execute_result').data['text/plain'], '42');

    // list and get
    const list = await api(ctx.server, 'alice', 'GET', '/api/sessions');
    assert.equal(list.status, 200);
    assert.ok(list.body.some((s) => s.id === session.id && s.path === 'work/analysis.ipynb'));
    const got = await api(ctx.server, 'alice', 'GET', `/api/sessions/${session.id}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.kernel.id, firstKernel);
    const found = await m.sessions.findByPath('work/analysis.ipynb');
    assert.equal(found?.id, session.id);

    // rename (what JupyterLab does when the file is renamed)
    await session.setPath('work/renamed.ipynb');
    const renamed = await api(ctx.server, 'alice', 'GET', `/api/sessions/${session.id}`);
    assert.equal(renamed.body.path, 'work/renamed.ipynb');
    assert.equal(renamed.body.kernel.id, firstKernel, 'renaming keeps the kernel');
    const patched = await api(ctx.server, 'alice', 'PATCH', `/api/sessions/${session.id}`, { path: 'work/renamed2.ipynb' });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.path, 'work/renamed2.ipynb');

    // change kernel: a new kernel, the old one goes away, state is fresh
    await session.changeKernel({ name: 'python3' });
    await until(() => session.kernel && session.kernel.id !== firstKernel, { what: 'new kernel' });
    const changed = await api(ctx.server, 'alice', 'GET', `/api/sessions/${session.id}`);
    assert.notEqual(changed.body.kernel.id, firstKernel);
    assert.equal(changed.body.kernel.id, session.kernel.id);
    await until(async () => !(await kernelIds()).includes(firstKernel), { what: 'old kernel gone' });
    const r2 = await execute(session.kernel, 'session_var');
    assert.equal(r2.reply.content.ename, 'NameError');

    // shut down: the session and its kernel go away
    const kid = session.kernel.id;
    await m.sessions.shutdown(session.id);
    const gone = await api(ctx.server, 'alice', 'GET', `/api/sessions/${session.id}`);
    assert.equal(gone.status, 404);
    const list2 = await api(ctx.server, 'alice', 'GET', '/api/sessions');
    assert.ok(!list2.body.some((s) => s.id === session.id));
    assert.ok(!(await kernelIds()).includes(kid), 'the kernel went away with the session');
    const k = await api(ctx.server, 'alice', 'GET', `/api/kernels/${kid}`);
    assert.equal(k.status, 404);
  } finally {
    if (!session.isDisposed) session.dispose();
  }
});

test('PATCH kernel by REST replaces the kernel', async () => {
  const a = await api(ctx.server, 'alice', 'POST', '/api/sessions',
    { path: 'patch.ipynb', name: 'patch.ipynb', type: 'notebook', kernel: { name: 'python3' } });
  assert.equal(a.status, 201);
  const old = a.body.kernel.id;
  const p = await api(ctx.server, 'alice', 'PATCH', `/api/sessions/${a.body.id}`, { kernel: { name: 'python3' } });
  assert.equal(p.status, 200, p.text);
  assert.notEqual(p.body.kernel.id, old);
  assert.equal(p.body.kernel.name, 'python3');
  const del = await api(ctx.server, 'alice', 'DELETE', `/api/sessions/${a.body.id}`);
  assert.equal(del.status, 204);
  const ids = await kernelIds();
  assert.ok(!ids.includes(old) && !ids.includes(p.body.kernel.id));
});

test('unknown session id gives 404', async () => {
  const r = await api(ctx.server, 'alice', 'GET', '/api/sessions/00000000-0000-0000-0000-000000000000');
  assert.equal(r.status, 404);
  const d = await api(ctx.server, 'alice', 'DELETE', '/api/sessions/00000000-0000-0000-0000-000000000000');
  assert.equal(d.status, 404);
});
