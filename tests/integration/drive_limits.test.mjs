// Extraction limits: archives over the size, entry, per-file and compression-ratio
// limits of [drive] are refused with a message naming the limit, leaving nothing.
// And tus bodies are streamed: max_body_mb does not cap them, and a big PATCH
// does not grow the hub's memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { useServer, RUN_LABBOOK_ONLY } from './lib/server.mjs';
import { mkArchive, extract, walk, tusRequest } from './lib/drive.mjs';

const skip = RUN_LABBOOK_ONLY ? false : 'the [drive] limits are labbook config keys';
const ctx = useServer({
  name: 'drive-limits',
  env: { ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=16'].filter(Boolean).join(':') },
  config: '[server]\nmax_body_mb = 1\n[drive]\nextract_max_mb = 2\nextract_max_entry_mb = 1\nextract_max_entries = 500\nextract_max_ratio = 100\n',
});
const onDisk = (p) => {
  fs.mkdirSync(ctx.server.drive('alice'), { recursive: true, mode: 0o700 });
  return path.join(ctx.server.drive('alice'), p);
};
const MiB = 1024 * 1024;

const cases = [
  ['one file over extract_max_entry_mb', 'zip-store', [{ name: 'big.bin', random: 1.5 * MiB }], {}, /extract_max_entry_mb/],
  ['in all over extract_max_mb', 'zip-store', [0, 1, 2].map((i) => ({ name: `p${i}.bin`, random: Math.round(0.9 * MiB) })), {}, /extract_max_mb/],
  ['a compression bomb over extract_max_ratio', 'tar.gz', [0, 1].map((i) => ({ name: `z${i}`, zeros: 0.75 * MiB })), {}, /extract_max_ratio/],
  ['a zip bomb over extract_max_ratio', 'zip', [0, 1].map((i) => ({ name: `z${i}`, zeros: 0.75 * MiB })), {}, /extract_max_ratio/],
  ['too many entries', 'tar', [], { many: { prefix: 'e', count: 600, size: 0 } }, /more than 500 entries.*extract_max_entries/],
];

for (const [label, fmt, entries, extra, why] of cases) {
  test(`refused: ${label}`, { skip }, async () => {
    const name = `a-${label.replace(/\W+/g, '-')}.${fmt === 'zip-store' ? 'zip' : fmt}`;
    mkArchive(onDisk(name), fmt, entries, extra);
    const before = walk(ctx.server.drive('alice')).sort();
    const res = await extract(ctx.server, 'alice', name, 'out');
    assert.equal(res.state, 'failed');
    assert.match(res.error, why);
    assert.deepEqual(walk(ctx.server.drive('alice')).sort(), before, 'nothing left behind');
  });
}

test('an archive within every limit is extracted', { skip }, async () => {
  mkArchive(onDisk('fine.tar.gz'), 'tar.gz', [{ name: 'a.bin', random: 0.5 * MiB }, { name: 'b.txt', text: 'b' }]);
  const res = await extract(ctx.server, 'alice', 'fine.tar.gz', 'fine');
  assert.equal(res.state, 'done', res.error);
  assert.equal(fs.statSync(onDisk('fine/a.bin')).size, 0.5 * MiB);
});

function memory(pid) {
  const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st)[1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

test('a 256 MiB PATCH is streamed to disk: over max_body_mb, and the hub stays small', { skip }, async () => {
  const size = 256 * MiB;
  const md = `filename ${Buffer.from('big.bin').toString('base64')}`;
  const c = await tusRequest(ctx.server, 'alice', 'POST', '/api/uploads/', { headers: { 'Upload-Length': String(size), 'Upload-Metadata': md } });
  assert.equal(c.status, 201, c.text);
  const url = new URL(c.headers.get('location'), ctx.server.baseUrl);
  // The peak counts from here (writing 5 to clear_refs resets VmHWM): an earlier test's
  // peak, with the memory given back since, is not this upload's.
  fs.writeFileSync(`/proc/${ctx.server.pid}/clear_refs`, '5');
  const before = memory(ctx.server.pid);
  const block = crypto.randomBytes(MiB);
  const hash = crypto.createHash('sha256');
  const res = await new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: ctx.server.port, method: 'PATCH', path: url.pathname,
      headers: {
        Authorization: `token ${ctx.server.tokens.alice}`, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0',
        'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(size),
        Expect: '100-continue',
      },
    }, (r) => { r.resume(); r.on('end', () => resolve(r)); });
    req.on('error', reject);
    req.on('continue', async () => {
      for (let i = 0; i < size / MiB; i++) {
        block[0] = i & 0xff;
        hash.update(block);
        if (!req.write(block)) await new Promise((r) => req.once('drain', r));
      }
      req.end();
    });
  });
  assert.equal(res.statusCode, 204);
  const after = memory(ctx.server.pid);
  const grew = (after.hwm - before.rss) / MiB;
  assert.ok(grew < 48, `the hub's peak memory grew by ${grew.toFixed(0)} MiB`);
  const got = crypto.createHash('sha256').update(fs.readFileSync(onDisk('big.bin'))).digest('hex');
  assert.equal(got, hash.digest('hex'));
  fs.rmSync(onDisk('big.bin'));
});
