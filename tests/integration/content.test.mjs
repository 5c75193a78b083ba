// The runtime's /content through the hub (/api/runtimes/{id}/files/<path>): the hub
// cannot reach that folder (it may run unprivileged), so the runtime's agent lists,
// reads and writes there. Files the API writes are the kernel's to change; nothing
// leads out of /content (no "..", no symlink the kernel made); only the owner gets in;
// a request over 64 MiB is refused with a pointer to the drive. Also once under
// privilege separation ([server] user = labbook). labbook-only; needs sandboxes (root).

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, startServer, IS_LABBOOK } from './lib/server.mjs';
import { api, rawRequest, until, probe } from './lib/clients.mjs';

const skip = IS_LABBOOK ? false : 'the runtime files API is labbook-only';
const ctx = useServer({ name: 'content', users: ['alice', 'bob'] });

function needSandbox(t, server) {
  if (server.log().includes('runtimes run in sandboxes')) return false;
  t.skip('the hub does not run runtimes in sandboxes (it must run as root)');
  return true;
}

async function startKernel(server) {
  const r = await api(server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
  assert.equal(r.status, 201, r.text);
  await until(async () => (await api(server, 'alice', 'GET', `/api/kernels/${r.body.id}`)).body?.execution_state === 'idle',
    { timeoutMs: 30000, what: 'kernel idle' });
  return r.body.id;
}

const filesUrl = (id, p) => `/api/runtimes/${id}/files/${p.split('/').map(encodeURIComponent).join('/')}`;
const put = (server, id, p, data, user = 'alice') => api(server, user, 'PUT', filesUrl(id, p), data,
  { raw: true, headers: { 'Content-Type': 'application/octet-stream' } });

/** PUT + kernel read + kernel write + listing + GET: what both servers must do. */
async function roundTrip(server, id) {
  const name = 'héllo wörld ✓.txt';
  const w = await put(server, id, name, 'written through the API\n');
  assert.equal(w.status, 201, w.text);
  const R = await probe(server, 'alice', id, `p = '/content/${name}'\nR['text'] = open(p).read()\nR['uid'] = os.stat(p).st_uid\n` +
    "os.makedirs('/content/made/deeper', exist_ok=True)\nopen('/content/made/inner.txt', 'w').write('from the kernel')\n" +
    `open(p, 'a').write('and by the kernel\\n')`);
  assert.equal(R.text, 'written through the API\n');
  assert.equal(R.uid, 0, "the file is root's inside the sandbox (the kernel's)");
  const root = await api(server, 'alice', 'GET', `/api/runtimes/${id}/files/`);
  assert.equal(root.status, 200, root.text);
  assert.equal(root.body.path, '');
  const byName = Object.fromEntries(root.body.entries.map((e) => [e.name, e]));
  assert.equal(byName[name]?.type, 'file');
  assert.equal(byName[name].size, 'written through the API\nand by the kernel\n'.length);
  assert.equal(byName.made?.type, 'directory');
  const made = await api(server, 'alice', 'GET', filesUrl(id, 'made'));
  assert.deepEqual(made.body.entries.map((e) => [e.name, e.type]).sort(), [['deeper', 'directory'], ['inner.txt', 'file']]);
  const inner = await api(server, 'alice', 'GET', filesUrl(id, 'made/inner.txt') + '?download=1');
  assert.equal(inner.status, 200);
  assert.equal(inner.text, 'from the kernel');
  assert.match(inner.headers.get('content-disposition') ?? '', /attachment; filename="inner.txt"/);
  const back = await api(server, 'alice', 'GET', filesUrl(id, name));
  assert.equal(back.text, 'written through the API\nand by the kernel\n');
}

describe('runtime /content files', { skip }, () => {
  let id;
  test('PUT a file, read it in the kernel; files the kernel makes are listed and served', async (t) => {
    if (needSandbox(t, ctx.server)) return;
    id = await startKernel(ctx.server);
    await roundTrip(ctx.server, id);
  });

  test('the kernel may change and delete what the API wrote', async (t) => {
    if (!id) return t.skip('no runtime');
    assert.equal((await put(ctx.server, id, 'api.txt', 'v1')).status, 201);
    assert.equal((await put(ctx.server, id, 'api.txt', 'v2')).status, 201, 'replaced');
    const R = await probe(ctx.server, 'alice', id, "open('/content/api.txt', 'a').write('+k')\nR['t'] = open('/content/api.txt').read()\n" +
      "os.rename('/content/api.txt', '/content/api2.txt')\nos.remove('/content/api2.txt')\nR['gone'] = not os.path.exists('/content/api2.txt')\n" +
      "R['leftovers'] = [n for n in os.listdir('/content') if n.startswith('.labbook')]");
    assert.deepEqual(R, { t: 'v2+k', gone: true, leftovers: [] });
  });

  test('"..", absolute paths and symlinks the kernel made lead nowhere outside /content', async (t) => {
    if (!id) return t.skip('no runtime');
    const token = ctx.server.tokens.alice;
    for (const p of ['../../etc/passwd', '%2e%2e/%2e%2e/etc/passwd', 'made/../../x']) {
      const r = await rawRequest(ctx.server, 'GET', `/api/runtimes/${id}/files/${p}`, { token });
      assert.ok([400, 404, 405].includes(r.status), `${p}: ${r.status} ${r.text}`);
      assert.ok(!r.text.includes('root:x:0'), p);
    }
    const abs = await rawRequest(ctx.server, 'GET', `/api/runtimes/${id}/files//etc/passwd`, { token });
    assert.equal(abs.status, 404, 'an absolute path is taken relative to /content');
    await probe(ctx.server, 'alice', id, "os.symlink('/etc', '/content/out')\nos.symlink('/etc/passwd', '/content/pw')");
    for (const p of ['out/passwd', 'out', 'pw']) {
      const r = await api(ctx.server, 'alice', 'GET', filesUrl(id, p));
      assert.equal(r.status, 403, `${p}: ${r.text}`);
      assert.ok(!r.text.includes('root:x:0'));
    }
    // /content/drive is the drive's mount point: not listed, not reachable (removing it
    // on the host would unmount the drive from the running kernel).
    assert.ok(!(await api(ctx.server, 'alice', 'GET', `/api/runtimes/${id}/files/`)).body.entries.some((e) => e.name === 'drive'));
    assert.equal((await api(ctx.server, 'alice', 'DELETE', filesUrl(id, 'drive/MyDrive'))).status, 403);
    assert.equal((await put(ctx.server, id, 'drive/MyDrive/x.txt', 'x')).status, 403);
    const w = await put(ctx.server, id, 'out/evil', 'x');
    assert.equal(w.status, 403, w.text);
    const R = await probe(ctx.server, 'alice', id, "R['evil'] = os.path.exists('/etc/evil')");
    assert.equal(R.evil, false);
    const list = await api(ctx.server, 'alice', 'GET', `/api/runtimes/${id}/files`);
    assert.equal(list.body.entries.find((e) => e.name === 'out')?.type, 'symlink');
    // Replacing the symlink by a file replaces the link, not /etc/passwd.
    assert.equal((await put(ctx.server, id, 'pw', 'mine')).status, 201);
    const R2 = await probe(ctx.server, 'alice', id, "R['islink'] = os.path.islink('/content/pw')\nR['t'] = open('/content/pw').read()");
    assert.deepEqual(R2, { islink: false, t: 'mine' });
  });

  test("bob gets 404 for alice's runtime", async (t) => {
    if (!id) return t.skip('no runtime');
    assert.equal((await api(ctx.server, 'bob', 'GET', `/api/runtimes/${id}/files/`)).status, 404);
    assert.equal((await put(ctx.server, id, 'bob.txt', 'x', 'bob')).status, 404);
  });

  test('a 65 MiB upload is refused, pointing at the drive', async (t) => {
    if (!id) return t.skip('no runtime');
    const r = await put(ctx.server, id, 'big.bin', Buffer.alloc(65 << 20, 1));
    assert.equal(r.status, 413, r.text);
    assert.match(r.body.message, /64 MiB.*drive/);
  });

  test('mkdir and DELETE', async (t) => {
    if (!id) return t.skip('no runtime');
    const m = await api(ctx.server, 'alice', 'POST', filesUrl(id, 'newdir') + '?type=directory');
    assert.equal(m.status, 201, m.text);
    assert.equal((await api(ctx.server, 'alice', 'POST', filesUrl(id, 'newdir') + '?type=directory')).status, 409);
    assert.equal((await put(ctx.server, id, 'newdir/f.txt', 'f')).status, 201);
    const R = await probe(ctx.server, 'alice', id, "R['uid'] = os.stat('/content/newdir').st_uid\nopen('/content/newdir/k.txt', 'w').write('k')");
    assert.equal(R.uid, 0);
    assert.equal((await api(ctx.server, 'alice', 'DELETE', filesUrl(id, 'newdir'))).status, 409, 'not empty');
    assert.equal((await api(ctx.server, 'alice', 'DELETE', filesUrl(id, 'newdir/f.txt'))).status, 204);
    assert.equal((await api(ctx.server, 'alice', 'DELETE', filesUrl(id, 'newdir/k.txt'))).status, 204);
    assert.equal((await api(ctx.server, 'alice', 'DELETE', filesUrl(id, 'newdir'))).status, 204);
    assert.equal((await api(ctx.server, 'alice', 'GET', filesUrl(id, 'newdir'))).status, 404);
    const R2 = await probe(ctx.server, 'alice', id, "R['e'] = os.path.exists('/content/newdir')");
    assert.equal(R2.e, false);
  });
});

describe('runtime /content files under privilege separation', {
  skip: skip || (process.getuid?.() !== 0 ? 'needs root' : false),
}, () => {
  let server;
  before(async () => {
    server = await startServer({ name: 'content-privsep', users: ['alice'], config: '[server]\nuser = labbook\n' });
  });
  after(async () => { if (server) await server.stop(); });

  test('PUT, kernel read and write, GET', async (t) => {
    if (needSandbox(t, server)) return;
    const id = await startKernel(server);
    await roundTrip(server, id);
    await api(server, 'alice', 'DELETE', `/api/kernels/${id}`);
  });
});
