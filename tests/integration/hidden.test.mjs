// A runtime sees what an unprivileged host user sees, no more (docs/sandbox.md,
// "What an unprivileged user could not read"): root-only files and folders planted
// on the host in several places give a kernel not one byte, while what any user may
// read still reads and root inside may write where they were. Root only.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api, until, probe } from './lib/clients.mjs';

const ROOT = process.getuid?.() === 0;
const skip = !IS_LABBOOK ? 'the sandbox is labbook-only' : !ROOT ? 'needs root (files only root may read)' : false;
const TAG = `lbit${process.pid}`;
const SECRET = `SECRET-${TAG}`;

// Planted before the hub starts: the list of hidden entries is made at the first
// runtime's start and cached (refreshed in the background every 5 minutes).
const planted = [];
const dirs = [`/opt/${TAG}`, `/var/lib/${TAG}`, `/etc/${TAG}.d`, `/usr/local/${TAG}`];
const files = {};
let sockServer = null;
if (!skip) {
  const mk = (p, mode) => { fs.mkdirSync(p, { recursive: true }); fs.chmodSync(p, mode); planted.push(p); };
  const put = (p, mode) => { fs.writeFileSync(p, `${SECRET} ${p}\n`); fs.chmodSync(p, mode); files[p] = mode; };
  mk(dirs[0], 0o700); put(`${dirs[0]}/readable-inside-0700.txt`, 0o644);
  mk(dirs[1], 0o755); put(`${dirs[1]}/key.pem`, 0o600); fs.writeFileSync(`${dirs[1]}/public.txt`, 'public\n');
  mk(dirs[2], 0o711); put(`${dirs[2]}/by-name`, 0o644);
  mk(dirs[3], 0o755); mk(`${dirs[3]}/private`, 0o750); put(`${dirs[3]}/private/deep.key`, 0o644);
  put(`/etc/${TAG}-group.conf`, 0o640); planted.push(`/etc/${TAG}-group.conf`);
  sockServer = net.createServer((c) => c.end(SECRET)).listen(`${dirs[1]}/daemon.sock`, () => fs.chmodSync(`${dirs[1]}/daemon.sock`, 0o600));
}

const ctx = useServer({ name: 'hidden', users: ['alice'], config: '[profile.cpu]\nidle_timeout_s = 0\n' });

after(() => {
  sockServer?.close();
  for (const p of planted) fs.rmSync(p, { recursive: true, force: true });
});

describe('root-only host files', { skip }, () => {
  test('a kernel reads no byte of what only root may read, and may still write there', async (t) => {
    if (!ctx.server.log().includes('runtimes run in sandboxes')) { t.skip('the hub does not sandbox runtimes'); return; }
    const r = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(r.status, 201, r.text);
    const id = r.body.id;
    await until(async () => (await api(ctx.server, 'alice', 'GET', `/api/kernels/${id}`)).body?.execution_state === 'idle',
      { timeoutMs: 30000, what: 'kernel idle' });
    const R = await probe(ctx.server, 'alice', id, `
import socket
got = {}
for p in ${JSON.stringify(Object.keys(files))} + ['/etc/shadow', '/etc/gshadow']:
    try:
        with open(p, 'rb') as f:
            got[p] = f.read().decode('latin-1')
    except OSError as e:
        got[p] = 'ERR %d' % e.errno
R['read'] = got
R['ls'] = {d: sorted(os.listdir(d)) if os.path.isdir(d) else None for d in ${JSON.stringify(dirs)}}
s = socket.socket(socket.AF_UNIX)
try:
    s.connect('${dirs[1]}/daemon.sock'); R['sock'] = s.recv(64).decode()
except OSError as e:
    R['sock'] = 'ERR %d' % e.errno
R['public'] = open('${dirs[1]}/public.txt').read()
with open('${dirs[0]}/mine.txt', 'w') as f:
    f.write('mine')
R['mine'] = open('${dirs[0]}/mine.txt').read()
`);
    for (const [p, v] of Object.entries(R.read)) {
      assert.ok(!v.includes('SECRET') && !v.includes(':$'), `${p} gives nothing: ${JSON.stringify(v)}`);
    }
    assert.ok(fs.statSync('/etc/shadow').size > 0, "the host's /etc/shadow is not empty");
    assert.deepEqual(R.ls[dirs[0]], [], 'a 0700 folder is empty inside');
    assert.deepEqual(R.ls[dirs[2]], [], 'a 0711 folder is empty inside');
    assert.ok(!R.sock.includes('SECRET'), `a root-only socket does not answer: ${R.sock}`);
    assert.equal(R.public, 'public\n', 'what any user may read still reads');
    assert.equal(R.mine, 'mine', 'root inside writes in its own layer where the folder was');
    assert.ok(!fs.existsSync(`${dirs[0]}/mine.txt`), 'not on the host');
    await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${id}`);
  });
});
