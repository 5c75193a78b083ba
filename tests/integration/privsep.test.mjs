// Privilege separation: a hub started as root becomes [server] user (labbook) and a
// small launcher keeps root to start runtimes. Runtimes work as usual through it:
// claims from the pool, files the kernel writes in the drive belong to the hub's user
// (so the API can change them), a deleted runtime's folder goes, a factory reset
// works (the old kernel ends before its files go), the CLI run as root keeps the
// database the hub's, and a restart adopts.
// labbook-only; needs root.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startServer, labbookCli, IS_LABBOOK } from './lib/server.mjs';
import { api, until, probe } from './lib/clients.mjs';

const skip = !IS_LABBOOK ? 'privilege separation is labbook-only'
  : (process.getuid?.() !== 0 ? 'needs root' : false);

let server;
before(async () => {
  if (skip) return;
  server = await startServer({
    name: 'privsep',
    users: ['alice'],
    config: '[server]\nuser = labbook\n\n[runtimes]\npool = 1\n\n[profile.cpu]\nidle_timeout_s = 0\n',
  });
});
after(async () => { if (server) await server.stop(); });

const status = (pid) => fs.readFileSync(`/proc/${pid}/status`, 'utf8');
const uidOf = (pid) => Number(status(pid).match(/^Uid:\s+(\d+)/m)[1]);
const ppidOf = (pid) => Number(status(pid).match(/^PPid:\s+(\d+)/m)[1]);

async function startKernel() {
  const r = await api(server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
  assert.equal(r.status, 201, r.text);
  await until(async () => (await api(server, 'alice', 'GET', `/api/kernels/${r.body.id}`)).body?.execution_state === 'idle',
    { timeoutMs: 30000, what: 'kernel idle' });
  return r.body.id;
}

describe('privilege separation', { skip }, () => {
  test('the hub runs as its own user; a root launcher, its child, starts the runtimes', () => {
    const labbookUid = Number(execFileSync('id', ['-u', 'labbook'], { encoding: 'utf8' }).trim());
    assert.notEqual(labbookUid, 0);
    assert.equal(uidOf(server.pid), labbookUid, 'the network-facing hub is not root');
    assert.match(server.log(), /running as labbook/);
    const launchers = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
      try { return ppidOf(d) === server.pid && fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').startsWith('labbook launcher'); } catch { return false; }
    });
    assert.equal(launchers.length, 1, 'one launcher');
    assert.equal(uidOf(launchers[0]), 0, 'the launcher keeps root');
    const st = fs.statSync(path.join(server.dataDir, 'labbook.db'));
    assert.equal(st.uid, labbookUid, "the database is the hub's");
    // The data folder stays root's (sticky, the hub's group may write): the hub's user can
    // make its own files there but cannot rename runtimes/ away to put its own in place.
    const data = fs.statSync(server.dataDir);
    assert.equal(data.uid, 0);
    assert.equal(data.mode & 0o7777, 0o1770);
    const asHub = (cmd) => { try { execFileSync('runuser', ['-u', 'labbook', '--', 'sh', '-c', cmd], { stdio: 'pipe' }); return true; } catch { return false; } };
    assert.ok(asHub(`touch '${server.dataDir}/made-by-hub' && rm '${server.dataDir}/made-by-hub'`), 'the hub can make and remove its files');
    assert.ok(!asHub(`mv '${server.dataDir}/runtimes' '${server.dataDir}/elsewhere'`), 'but not move runtimes/');
    assert.ok(fs.statSync(path.join(server.dataDir, 'runtimes')).isDirectory());
  });

  test("runtimes start through the launcher; the kernel's files in the drive are the hub user's; deleting removes the folder", async () => {
    await until(() => /pool: runtime \S+ ready/.test(server.log()), { timeoutMs: 30000, what: 'pool ready' });
    const id = await startKernel();
    assert.match(server.log(), new RegExp(`kernel ${id} \\(alice\\): python3 from the pool`));
    const R = await probe(server, 'alice', id, `
import os
os.makedirs('/content/drive/MyDrive/made-inside', exist_ok=True)
open('/content/drive/MyDrive/made-inside/a.txt', 'w').write('inside')
R['uid'] = os.getuid()
R['owner'] = os.stat('/content/drive/MyDrive/made-inside').st_uid
`);
    assert.equal(R.uid, 0);
    assert.equal(R.owner, 0, "the drive's files are root's inside");
    const labbookUid = uidOf(server.pid);
    const dir = path.join(server.drive('alice'), 'made-inside');
    assert.equal(fs.statSync(dir).uid, labbookUid, "and the hub user's outside");
    assert.equal(fs.statSync(path.join(dir, 'a.txt')).uid, labbookUid);
    // So the API (the hub, unprivileged) can write into what the kernel made.
    const put = await api(server, 'alice', 'PUT', '/api/contents/made-inside/b.txt', { type: 'file', format: 'text', content: 'api' });
    assert.equal(put.status, 201, put.text);
    const del = await api(server, 'alice', 'DELETE', '/api/contents/made-inside/a.txt');
    assert.equal(del.status, 204, del.text);
    // Factory reset: the agent ends the old kernel first (its atexit handlers still see
    // its files: no FileNotFoundError from a dying kernel), then moves the files away.
    await probe(server, 'alice', id, `
import atexit, os, time
open('/content/scratch.txt', 'w').write('x')
def bye():
    time.sleep(0.5)
    open('/content/drive/MyDrive/atexit.txt', 'w').write(str(os.path.exists('/content/scratch.txt')))
atexit.register(bye)
`);
    const reset = await api(server, 'alice', 'POST', `/api/runtimes/${id}/reset`);
    assert.equal(reset.status, 200, reset.text);
    await until(async () => (await api(server, 'alice', 'GET', `/api/kernels/${id}`)).body?.execution_state === 'idle',
      { timeoutMs: 30000, what: 'idle after the reset' });
    const after = await probe(server, 'alice', id, "import os\nR['scratch'] = os.path.exists('/content/scratch.txt')");
    assert.equal(after.scratch, false, 'reset threw the files away');
    assert.equal(fs.readFileSync(path.join(server.drive('alice'), 'atexit.txt'), 'utf8'), 'True',
      'the old kernel had its files until it ended');
    // Deleted: its folder and disk go (the launcher removes them).
    assert.equal((await api(server, 'alice', 'DELETE', `/api/kernels/${id}`)).status, 204);
    await until(() => !fs.existsSync(path.join(server.dataDir, 'runtimes', id)), { timeoutMs: 15000, what: 'runtime folder removed' });
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(`/runtimes/${id}/`), 'its disk is unmounted');
  });

  test("secrets: the key is the hub user's, 0600; a runtime from the pool reads a granted secret through its agent", async () => {
    const labbookUid = Number(execFileSync('id', ['-u', 'labbook'], { encoding: 'utf8' }).trim());
    const key = fs.statSync(path.join(server.dataDir, 'secrets.key'));
    assert.equal(key.uid, labbookUid);
    assert.equal(key.mode & 0o777, 0o600);
    assert.equal((await api(server, 'alice', 'PUT', '/api/secrets/PRIV', { value: 'through-the-launcher' })).status, 201);
    assert.equal((await api(server, 'alice', 'PUT', '/api/secrets/PRIV/access', { notebook: 'priv.ipynb', access: true })).status, 200);
    const s = await api(server, 'alice', 'POST', '/api/sessions', { path: 'priv.ipynb', name: 'priv.ipynb', type: 'notebook', kernel: { name: 'python3' } });
    assert.equal(s.status, 201, s.text);
    try {
      await until(async () => (await api(server, 'alice', 'GET', `/api/kernels/${s.body.kernel.id}`)).body?.execution_state === 'idle',
        { timeoutMs: 30000, what: 'kernel idle' });
      const r = await probe(server, 'alice', s.body.kernel.id, "from google.colab import userdata\nR['v'] = userdata.get('PRIV')");
      assert.equal(r.v, 'through-the-launcher');
    } finally {
      await api(server, 'alice', 'DELETE', `/api/sessions/${s.body.id}`);
    }
  });

  test('the CLI run as root keeps the database usable by the hub; a restart adopts runtimes', async () => {
    labbookCli(['user', 'add', 'carol', '--data', server.dataDir]);
    const tok = labbookCli(['user', 'token', 'carol', '--data', server.dataDir]).trim();
    server.tokens.carol = tok;
    const me = await api(server, 'carol', 'GET', '/api/me');
    assert.equal(me.status, 200, me.text);
    const sess = await api(server, 'carol', 'POST', '/api/sessions', { path: 'c.ipynb', type: 'notebook', name: 'c', kernel: { name: 'python3' } });
    assert.equal(sess.status, 201, sess.text);
    const kid = sess.body.kernel.id;
    await until(async () => (await api(server, 'carol', 'GET', `/api/kernels/${kid}`)).body?.execution_state === 'idle',
      { timeoutMs: 30000, what: "carol's kernel idle" });
    await server.restart();
    await until(() => server.log().includes(`kernel ${kid} (carol): its agent is back`), { timeoutMs: 20000, what: 'adopted' });
    assert.equal((await api(server, 'carol', 'GET', `/api/kernels/${kid}`)).status, 200);
    assert.equal((await api(server, 'carol', 'DELETE', `/api/sessions/${sess.body.id}`)).status, 204);
  });
});
