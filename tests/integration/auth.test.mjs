// Authentication and isolation: tokens, path traversal and symlinks out of the
// drive, and one user (alice) reaching for another's (bob's) files, kernels
// and sessions.
//
// labbook-only tests (skipped on jupyter_server):
// - everything with two users: jupyter_server has a single user;
// - the symlink test: jupyter_server follows symlinks out of root_dir by design
//   (GET /api/contents/link-to-etc/passwd returns the file), whereas a labbook
//   drive must not lead outside itself.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { useServer, RUN_LABBOOK_ONLY, SINGLE_USER_REASON } from './lib/server.mjs';
import { api, rawRequest, rawKernelSocket, sleep } from './lib/clients.mjs';

const ctx = useServer({ name: 'auth', users: ['alice', 'bob'] });
const twoUsers = RUN_LABBOOK_ONLY ? {} : { skip: SINGLE_USER_REASON };

const refused = (status) => status === 401 || status === 403;

/** Resolves with the HTTP status a WebSocket upgrade is refused with, or fails if it opens. */
function wsRefusal(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('websocket neither opened nor was refused')); }, 10000);
    ws.on('unexpected-response', (req, res) => {
      clearTimeout(timer);
      resolve(res.statusCode);
      req.destroy();
    });
    ws.on('open', () => {
      // Some servers accept the upgrade and close at once; that must carry no data.
      const got = [];
      ws.on('message', (d) => got.push(d));
      ws.on('close', () => {
        clearTimeout(timer);
        if (got.length) reject(new Error(`websocket opened and delivered ${got.length} messages`));
        else resolve('closed');
      });
      setTimeout(() => {
        clearTimeout(timer);
        ws.terminate();
        reject(new Error('websocket was accepted and stayed open'));
      }, 2000);
    });
    ws.on('error', () => {});
  });
}

describe('tokens', () => {
  test('no token: 401/403 on /api/kernels, /api/contents, /api/sessions', async () => {
    for (const p of ['/api/kernels', '/api/contents', '/api/sessions', '/api/kernelspecs']) {
      const r = await api(ctx.server, null, 'GET', p);
      assert.ok(refused(r.status), `GET ${p} without token: ${r.status}`);
    }
    const before = (await api(ctx.server, 'alice', 'GET', '/api/kernels')).body.length;
    const post = await api(ctx.server, null, 'POST', '/api/kernels', { name: 'python3' });
    assert.ok(refused(post.status), `POST /api/kernels without token: ${post.status}`);
    const put = await api(ctx.server, null, 'PUT', '/api/contents/anon.txt', { type: 'file', format: 'text', content: 'x' });
    assert.ok(refused(put.status), `PUT without token: ${put.status}`);
    assert.ok(!fs.existsSync(path.join(ctx.server.drive('alice'), 'anon.txt')));
    assert.equal((await api(ctx.server, 'alice', 'GET', '/api/kernels')).body.length, before, 'no kernel started');
  });

  test('wrong token: 401/403, in the header and in ?token=', async () => {
    const bad = 'x'.repeat(ctx.server.tokens.alice.length);
    for (const p of ['/api/kernels', '/api/contents']) {
      const r = await api(ctx.server, null, 'GET', p, undefined, { headers: { Authorization: `token ${bad}` } });
      assert.ok(refused(r.status), `GET ${p} wrong header token: ${r.status}`);
      const q = await api(ctx.server, null, 'GET', `${p}?token=${bad}`);
      assert.ok(refused(q.status), `GET ${p}?token=wrong: ${q.status}`);
    }
    const empty = await api(ctx.server, null, 'GET', '/api/kernels', undefined, { headers: { Authorization: 'token ' } });
    assert.ok(refused(empty.status), `empty token: ${empty.status}`);
  });

  test('the right token works in the header and in ?token=', async () => {
    const h = await api(ctx.server, 'alice', 'GET', '/api/contents');
    assert.equal(h.status, 200);
    const q = await api(ctx.server, null, 'GET', `/api/contents?token=${ctx.server.tokens.alice}`);
    assert.equal(q.status, 200);
    assert.equal(q.body.type, 'directory');
  });

  test('a kernel websocket without a valid token is refused', async () => {
    const k = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(k.status, 201);
    try {
      const base = `${ctx.server.wsUrl}/api/kernels/${k.body.id}/channels?session_id=s1`;
      const none = await wsRefusal(base);
      assert.ok(none === 'closed' || refused(none), `no token: ${none}`);
      const wrong = await wsRefusal(`${base}&token=wrong`);
      assert.ok(wrong === 'closed' || refused(wrong), `wrong token: ${wrong}`);
    } finally {
      await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${k.body.id}`);
    }
  });
});

describe('path traversal', () => {
  const tok = () => ctx.server.tokens.alice;
  const reads = [
    '/api/contents/..%2F..%2Fetc%2Fpasswd',
    '/api/contents/../../etc/passwd',
    '/api/contents/%2e%2e/%2e%2e/etc/passwd',
    '/api/contents/%2e%2e%2f%2e%2e%2fetc%2fpasswd',
    '/api/contents/%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd',
    '/api/contents/sub/../../../../../etc/passwd',
    '/api/contents/..%5C..%5Cetc%5Cpasswd',
    '/api/contents/%252e%252e%252f%252e%252e%252fetc%252fpasswd',
  ];
  for (const p of reads) {
    test(`GET ${p} is refused`, async () => {
      const r = await rawRequest(ctx.server, 'GET', p, { token: tok() });
      assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}: ${r.text.slice(0, 200)}`);
      assert.ok(!r.text.includes('root:'), 'no /etc/passwd content');
    });
  }

  test('writes, renames and copies out of the drive are refused', async () => {
    const outside = path.join(ctx.server.dataDir, 'pwned.txt');
    const body = JSON.stringify({ type: 'file', format: 'text', content: 'pwned' });
    for (const p of ['/api/contents/..%2F..%2Fpwned.txt', '/api/contents/../../pwned.txt', '/api/contents/%2e%2e/%2e%2e/pwned.txt']) {
      const r = await rawRequest(ctx.server, 'PUT', p, { token: tok(), body });
      assert.ok(r.status >= 400 && r.status < 500, `PUT ${p}: ${r.status}`);
    }
    assert.ok(!fs.existsSync(outside), 'nothing written outside the drive');

    const mk = await api(ctx.server, 'alice', 'PUT', '/api/contents/mine.txt', { type: 'file', format: 'text', content: 'mine' });
    assert.equal(mk.status, 201);
    const mv = await api(ctx.server, 'alice', 'PATCH', '/api/contents/mine.txt', { path: '../../pwned.txt' });
    assert.ok(mv.status >= 400 && mv.status < 500, `rename out: ${mv.status}`);
    assert.ok(!fs.existsSync(outside));
    assert.ok(fs.existsSync(path.join(ctx.server.drive('alice'), 'mine.txt')), 'the file stays');

    const cp = await api(ctx.server, 'alice', 'POST', '/api/contents', { copy_from: '../../../../etc/passwd' });
    assert.ok(cp.status >= 400 && cp.status < 500, `copy from outside: ${cp.status}`);
    assert.ok(!fs.readdirSync(ctx.server.drive('alice')).some((n) => n.startsWith('passwd')));
  });

  test('a symlink out of the drive cannot be listed or read',
    RUN_LABBOOK_ONLY ? {} : { skip: 'jupyter_server follows symlinks out of root_dir by design' }, async () => {
      const drive = ctx.server.drive('alice');
      fs.mkdirSync(drive, { recursive: true });
      fs.symlinkSync('/etc', path.join(drive, 'etclink'));
      fs.symlinkSync('/etc/passwd', path.join(drive, 'passwd-link'));
      for (const p of ['/api/contents/etclink', '/api/contents/etclink/passwd', '/api/contents/passwd-link',
        '/api/contents/etclink/passwd?type=file&format=text']) {
        const r = await rawRequest(ctx.server, 'GET', p, { token: tok() });
        assert.ok(r.status >= 400 && r.status < 500, `GET ${p}: ${r.status}`);
        assert.ok(!r.text.includes('root:'), `${p} leaks /etc/passwd`);
        assert.ok(!r.text.includes('hostname'), `${p} lists /etc`);
      }
      const w = await rawRequest(ctx.server, 'PUT', '/api/contents/etclink/pwned', {
        token: tok(), body: JSON.stringify({ type: 'file', format: 'text', content: 'x' }),
      });
      assert.ok(w.status >= 400 && w.status < 500, `write through symlink: ${w.status}`);
      const root = await api(ctx.server, 'alice', 'GET', '/api/contents');
      assert.equal(root.status, 200, 'the drive itself still lists');
    });
});

describe('isolation between users', () => {
  test('alice cannot list, read or write bob\'s files', twoUsers, async () => {
    const put = await api(ctx.server, 'bob', 'PUT', '/api/contents/secret.txt', { type: 'file', format: 'text', content: 'bob only' });
    assert.equal(put.status, 201);
    const bobFile = path.join(ctx.server.drive('bob'), 'secret.txt');
    assert.equal(fs.readFileSync(bobFile, 'utf8'), 'bob only');

    const list = await api(ctx.server, 'alice', 'GET', '/api/contents');
    assert.equal(list.status, 200);
    assert.ok(!list.body.content.some((x) => x.name === 'secret.txt'));
    const get = await api(ctx.server, 'alice', 'GET', '/api/contents/secret.txt');
    assert.equal(get.status, 404);
    for (const p of ['/api/contents/..%2Fbob%2Fsecret.txt', '/api/contents/../bob/secret.txt',
      '/api/contents/%2e%2e/bob/secret.txt', '/api/contents/..%2Fbob', '/api/contents/bob/secret.txt']) {
      const r = await rawRequest(ctx.server, 'GET', p, { token: ctx.server.tokens.alice });
      assert.ok(r.status >= 400 && r.status < 500, `GET ${p}: ${r.status}`);
      assert.ok(!r.text.includes('bob only'));
    }
    // alice writing "secret.txt" writes her own file, not bob's
    const w = await api(ctx.server, 'alice', 'PUT', '/api/contents/secret.txt', { type: 'file', format: 'text', content: 'alice' });
    assert.equal(w.status, 201);
    const w2 = await rawRequest(ctx.server, 'PUT', '/api/contents/..%2Fbob%2Fsecret.txt', {
      token: ctx.server.tokens.alice, body: JSON.stringify({ type: 'file', format: 'text', content: 'overwritten' }),
    });
    assert.ok(w2.status >= 400 && w2.status < 500, `PUT into bob's drive: ${w2.status}`);
    const d = await rawRequest(ctx.server, 'DELETE', '/api/contents/..%2Fbob%2Fsecret.txt', { token: ctx.server.tokens.alice });
    assert.ok(d.status >= 400 && d.status < 500, `DELETE in bob's drive: ${d.status}`);
    assert.equal(fs.readFileSync(bobFile, 'utf8'), 'bob only');
    const mine = await api(ctx.server, 'bob', 'GET', '/api/contents/secret.txt');
    assert.equal(mine.body.content, 'bob only');
  });

  test('alice cannot see, get, interrupt, restart or delete bob\'s kernel, nor connect to it', twoUsers, async () => {
    const k = await api(ctx.server, 'bob', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(k.status, 201);
    const id = k.body.id;
    try {
      const list = await api(ctx.server, 'alice', 'GET', '/api/kernels');
      assert.ok(!list.body.some((x) => x.id === id), 'bob\'s kernel not listed for alice');
      assert.equal((await api(ctx.server, 'alice', 'GET', `/api/kernels/${id}`)).status, 404);
      assert.equal((await api(ctx.server, 'alice', 'POST', `/api/kernels/${id}/interrupt`)).status, 404);
      assert.equal((await api(ctx.server, 'alice', 'POST', `/api/kernels/${id}/restart`)).status, 404);
      assert.equal((await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${id}`)).status, 404);

      const status = await wsRefusal(`${ctx.server.wsUrl}/api/kernels/${id}/channels?session_id=x&token=${ctx.server.tokens.alice}`);
      assert.ok(status === 'closed' || (status >= 400 && status < 500), `websocket as alice: ${status}`);

      // bob's kernel is alive and untouched
      const mine = await api(ctx.server, 'bob', 'GET', `/api/kernels/${id}`);
      assert.equal(mine.status, 200);
      const c = rawKernelSocket(ctx.server, 'bob', id);
      try {
        await c.opened;
        const req = c.execute('40+2');
        const res = await c.waitFor((x) => x.header?.msg_type === 'execute_result' && x.parent_header?.msg_id === req.header.msg_id,
          { what: 'bob\'s result', timeoutMs: 30000 });
        assert.equal(res.content.data['text/plain'], '42');
        assert.equal(res.content.execution_count, 1, 'nobody else ran code in it');
      } finally {
        await c.close();
      }
    } finally {
      await api(ctx.server, 'bob', 'DELETE', `/api/kernels/${id}`);
    }
  });

  test('alice cannot see or touch bob\'s sessions', twoUsers, async () => {
    const s = await api(ctx.server, 'bob', 'POST', '/api/sessions',
      { path: 'bob.ipynb', name: 'bob.ipynb', type: 'notebook', kernel: { name: 'python3' } });
    assert.equal(s.status, 201);
    try {
      const list = await api(ctx.server, 'alice', 'GET', '/api/sessions');
      assert.equal(list.status, 200);
      assert.ok(!list.body.some((x) => x.id === s.body.id || x.kernel?.id === s.body.kernel.id));
      assert.equal((await api(ctx.server, 'alice', 'GET', `/api/sessions/${s.body.id}`)).status, 404);
      assert.equal((await api(ctx.server, 'alice', 'PATCH', `/api/sessions/${s.body.id}`, { path: 'x.ipynb' })).status, 404);
      assert.equal((await api(ctx.server, 'alice', 'DELETE', `/api/sessions/${s.body.id}`)).status, 404);
      // alice opening the same path gets her own session and kernel
      const a = await api(ctx.server, 'alice', 'POST', '/api/sessions',
        { path: 'bob.ipynb', name: 'bob.ipynb', type: 'notebook', kernel: { name: 'python3' } });
      assert.equal(a.status, 201);
      assert.notEqual(a.body.id, s.body.id);
      assert.notEqual(a.body.kernel.id, s.body.kernel.id);
      await api(ctx.server, 'alice', 'DELETE', `/api/sessions/${a.body.id}`);
      const still = await api(ctx.server, 'bob', 'GET', `/api/sessions/${s.body.id}`);
      assert.equal(still.status, 200);
      assert.equal(still.body.path, 'bob.ipynb');
    } finally {
      await api(ctx.server, 'bob', 'DELETE', `/api/sessions/${s.body.id}`);
    }
  });
});

test('the server still answers normally afterwards', async () => {
  await sleep(10);
  const r = await api(ctx.server, 'alice', 'GET', '/api/contents');
  assert.equal(r.status, 200);
});
