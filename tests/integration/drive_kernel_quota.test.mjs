// The drive quota holds for a kernel's writes through its mount of the drive
// (docs/drive.md, "Quotas and usage"): with quota_mb = 5, a kernel writing a big
// file into /content/drive/MyDrive is stopped (EPERM for the open file, then
// "Read-only file system" for anything opened later) soon after
// the drive passes the quota (not after 15 MiB, as before), its drive still reads,
// and once space is freed through the hub the kernel may write again. Root only (the
// runtime must be sandboxed); the first kernel comes from the pool (its drive is bound
// later), the second is started for the user.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api, until, probe } from './lib/clients.mjs';

const QUOTA_MB = 5;
const skip = !IS_LABBOOK ? 'the drive quota is labbook\'s' : process.getuid?.() !== 0 ? 'needs root (a sandboxed runtime)' : false;

const ctx = useServer({
  name: 'drive-kernel-quota',
  users: ['alice'],
  config: `[runtimes]\npool = 1\n\n[drive]\nquota_mb = ${QUOTA_MB}\n\n[profile.cpu]\nmax_per_user = 4\nidle_timeout_s = 0\n`,
});

async function startKernel() {
  const r = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
  assert.equal(r.status, 201, r.text);
  await until(async () => (await api(ctx.server, 'alice', 'GET', `/api/kernels/${r.body.id}`)).body?.execution_state === 'idle',
    { timeoutMs: 30000, what: 'kernel idle' });
  return r.body.id;
}

const FILL = `
import errno, time
def fill(p, mb, pause):
    n = 0
    try:
        with open(p, 'wb') as f:
            for _ in range(mb):
                f.write(b'x' * (1 << 20)); f.flush(); os.fsync(f.fileno())
                n += 1
                time.sleep(pause)
        return [n, None, None]
    except OSError as e:
        return [n, errno.errorcode.get(e.errno, str(e.errno)), str(e)]
`;

describe('drive quota inside a runtime', { skip }, () => {
  for (const which of ['pooled', 'cold']) {
    test(`${which}: writes past quota_mb = ${QUOTA_MB} stop with "Read-only file system"; freed space makes the drive writable again`, async (t) => {
      if (!ctx.server.log().includes('runtimes run in sandboxes')) { t.skip('the hub does not sandbox runtimes'); return; }
      const drive = ctx.server.drive('alice');
      if (which === 'pooled') {
        await until(() => /pool: runtime \S+ ready/.test(ctx.server.log()), { timeoutMs: 30000, what: 'a pooled runtime' });
      }
      const id = await startKernel();
      const R = await probe(ctx.server, 'alice', id, `${FILL}
D = '/content/drive/MyDrive'
R['small'] = fill(D + '/small.bin', 2, 0)
R['big'] = fill(D + '/big-${which}.bin', 64, 0.02)
time.sleep(0.5)
R['after'] = fill(D + '/after.bin', 1, 0)
R['read'] = len(open(D + '/small.bin', 'rb').read())
`, { timeoutMs: 60000 });
      assert.deepEqual(R.small, [2, null, null], 'under the quota a kernel writes');
      // The file being written is stopped with EPERM (it kept the mount from turning
      // read-only), a write opened afterwards with EROFS.
      assert.ok(['EPERM', 'EROFS'].includes(R.big[1]), `writing past the quota stops: ${JSON.stringify(R.big)}`);
      assert.match(R.big[2], /Operation not permitted|Read-only file system/);
      t.diagnostic(`stopped after ${R.big[0]} MiB (${R.big[1]})`);
      assert.ok(R.big[0] < 15, `stopped well before 15 MiB (${R.big[0]} MiB written)`);
      assert.equal(R.after[1], 'EROFS', 'a new file cannot be written either');
      assert.equal(R.read, 2 << 20, 'the drive still reads');
      const usage = (await api(ctx.server, 'alice', 'GET', '/api/drive/usage')).body;
      assert.ok(usage.used > QUOTA_MB << 20, `over the quota: ${JSON.stringify(usage)}`);
      // Free space through the hub: the kernel may write again soon.
      const del = await api(ctx.server, 'alice', 'DELETE', `/api/contents/big-${which}.bin`);
      assert.equal(del.status, 204, del.text);
      // The trash still counts against the quota (docs/drive.md, "Trash"): delete it forever.
      const forever = await api(ctx.server, 'alice', 'DELETE', del.headers.get('location'));
      assert.equal(forever.status, 204, forever.text);
      const A = await probe(ctx.server, 'alice', id, `${FILL}
for _ in range(50):
    R['again'] = fill('/content/drive/MyDrive/again.bin', 1, 0)
    if R['again'][1] is None:
        break
    time.sleep(0.1)
`, { timeoutMs: 30000 });
      assert.deepEqual(A.again, [1, null, null], 'writable again once under the quota');
      for (const f of ['small.bin', 'again.bin', 'after.bin']) fs.rmSync(path.join(drive, f), { force: true });
      await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${id}`);
    });
  }
});
