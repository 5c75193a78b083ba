// Extraction limits: archives over the size, entry, per-file and compression-ratio
// limits of [drive] are refused with a message naming the limit, leaving nothing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useServer, RUN_LABBOOK_ONLY } from './lib/server.mjs';
import { mkArchive, extract, walk } from './lib/drive.mjs';

const skip = RUN_LABBOOK_ONLY ? false : 'the [drive] limits are labbook config keys';
const ctx = useServer({
  name: 'drive-limits',
  config: '[drive]\nextract_max_mb = 2\nextract_max_entry_mb = 1\nextract_max_entries = 500\nextract_max_ratio = 100\n',
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
