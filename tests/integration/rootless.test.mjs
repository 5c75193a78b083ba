// Rootless: a hub started by an ordinary user (here nobody, switched to from root)
// still sandboxes its runtimes through an unprivileged user namespace: the kernel is
// root inside only, sees its own drive and not another's nor the hub's data, cannot
// read /etc/shadow or write the system, and sees none of the host's processes.
// labbook-only; skipped unless the suite runs as root (to switch) on a host that
// lets ordinary users make user namespaces.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { startServer, IS_LABBOOK } from './lib/server.mjs';
import { api, until, probe } from './lib/clients.mjs';

const NOBODY = 65534;

function whySkip() {
  if (!IS_LABBOOK) return 'rootless runtimes are labbook-only';
  if (!process.getuid || process.getuid() !== 0) return 'needs root, to run the hub as nobody';
  try {
    execFileSync('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups',
      'unshare', '--user', '--map-root-user', 'true'], { stdio: 'ignore' });
  } catch {
    return 'this host does not let ordinary users make user namespaces';
  }
  return false;
}
const skip = whySkip();

let server;
before(async () => {
  if (skip) return;
  server = await startServer({ name: 'rootless', users: ['alice', 'bob'], runAs: NOBODY });
});
after(async () => { if (server) await server.stop(); });

describe('rootless', { skip }, () => {
  test('a hub run by an ordinary user sandboxes its runtimes without root', async () => {
    assert.ok(server.log().includes('runtimes run in sandboxes'), server.log());
    for (const u of ['alice', 'bob']) {
      fs.mkdirSync(server.drive(u), { recursive: true });
      fs.chownSync(server.drive(u), NOBODY, NOBODY);
    }
    fs.writeFileSync(path.join(server.drive('alice'), 'mine.txt'), 'alice');
    fs.writeFileSync(path.join(server.drive('bob'), 'theirs.txt'), 'bob');
    const r = await api(server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(r.status, 201, r.text);
    const id = r.body.id;
    const R = await probe(server, 'alice', id, `
import os, errno
def attempt(f):
    try:
        return ['ok', f()]
    except OSError as e:
        return ['ERR', errno.errorcode.get(e.errno, str(e.errno))]
R['uid'] = os.getuid()
R['map'] = open('/proc/self/uid_map').read().split()
R['drive'] = sorted(os.listdir('/content/drive/MyDrive'))
R['drive_write'] = attempt(lambda: open('/content/drive/MyDrive/from-kernel.txt', 'w').write('k'))
R['content_write'] = attempt(lambda: open('/content/x.txt', 'w').write('x'))
R['tmp_write'] = attempt(lambda: open('/tmp/x.txt', 'w').write('x'))
R['shadow'] = attempt(lambda: open('/etc/shadow').read(10))
R['usr_write'] = attempt(lambda: open('/usr/labbook-rootless-probe', 'w').write('x'))
R['data'] = attempt(lambda: os.listdir(${JSON.stringify(server.dataDir)}))
R['bob'] = attempt(lambda: os.listdir(${JSON.stringify(server.drive('bob'))}))
R['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
`);
    assert.equal(R.uid, 0, 'root inside');
    assert.deepEqual(R.map, ['0', String(NOBODY), '1'], 'mapped to the hub\'s own user, nothing else');
    assert.deepEqual(R.drive, ['mine.txt']);
    assert.equal(R.drive_write[0], 'ok');
    assert.equal(fs.readFileSync(path.join(server.drive('alice'), 'from-kernel.txt'), 'utf8'), 'k');
    assert.equal(R.content_write[0], 'ok');
    assert.equal(R.tmp_write[0], 'ok');
    assert.ok(R.shadow[0] === 'ERR' || R.shadow[1] === '', `/etc/shadow unreadable (or masked): ${R.shadow}`);
    assert.equal(R.usr_write[1], 'EROFS', `the system is read-only: ${R.usr_write}`);
    assert.ok(!fs.existsSync('/usr/labbook-rootless-probe'));
    assert.ok(R.data[0] === 'ERR' || R.data[1].length === 0, `the hub's data is hidden: ${R.data}`);
    assert.ok(R.bob[0] === 'ERR' || R.bob[1].length === 0, `bob's drive is hidden: ${R.bob}`);
    assert.ok(R.pids.length < 10, `only the sandbox's processes: ${R.pids}`);
    assert.equal((await api(server, 'alice', 'DELETE', `/api/kernels/${id}`)).status, 204);
  });
});
