// Per-user drive quota ([drive] quota_mb) and the cap on unfinished uploads: tus
// creation, contents saves and extractions that would not fit are refused before
// they write, with a message saying how much is free.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { useServer, RUN_LABBOOK_ONLY } from './lib/server.mjs';
import { api, sleep } from './lib/clients.mjs';
import { mkArchive, extract, tusRequest, tusUpload, walk } from './lib/drive.mjs';

const skip = RUN_LABBOOK_ONLY ? false : 'quotas are labbook config keys';
const ctx = useServer({ name: 'drive-quota', config: '[drive]\nquota_mb = 4\nmax_uploads_per_user = 2\n' });
const MiB = 1024 * 1024;
const onDisk = (p, user = 'alice') => {
  fs.mkdirSync(ctx.server.drive(user), { recursive: true, mode: 0o700 });
  return path.join(ctx.server.drive(user), p);
};
const b64 = (s) => Buffer.from(s).toString('base64');
const create = (user, length, name) => tusRequest(ctx.server, user, 'POST', '/api/uploads/', {
  headers: { 'Upload-Length': String(length), 'Upload-Metadata': `filename ${b64(name)}` },
});

test('usage and quota are reported', { skip }, async () => {
  const r = await api(ctx.server, 'alice', 'GET', '/api/drive/usage');
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, { used: 0, quota: 4 * MiB, free: 4 * MiB });
});

test('a tus upload larger than the free space is refused at creation', { skip }, async () => {
  const r = await create('alice', 5 * MiB, 'big.bin');
  assert.equal(r.status, 413);
  const body = JSON.parse(r.text);
  assert.equal(body.reason, 'quota');
  assert.match(body.message, /4\.0 MiB free of your 4\.0 MiB quota/);
  // one that fits goes through; unfinished uploads hold their space
  const data = crypto.randomBytes(3 * MiB);
  const { done } = tusUpload(ctx.server, 'alice', data, { filename: 'three.bin' });
  await done;
  const u = await api(ctx.server, 'alice', 'GET', '/api/drive/usage');
  assert.equal(u.body.used, 3 * MiB);
  assert.equal(u.body.free, 1 * MiB);
  const held = await create('alice', 0.75 * MiB, 'held.bin');
  assert.equal(held.status, 201);
  const over = await create('alice', 0.5 * MiB, 'over.bin');
  assert.equal(over.status, 413, 'the unfinished upload holds 0.75 MiB of the 1 MiB left');
  await tusRequest(ctx.server, 'alice', 'DELETE', new URL(held.headers.get('location'), ctx.server.baseUrl).pathname);
});

test('a contents save larger than the free space is refused', { skip }, async () => {
  const r = await api(ctx.server, 'alice', 'PUT', '/api/contents/big.bin', {
    type: 'file', format: 'base64', content: crypto.randomBytes(2 * MiB).toString('base64'),
  });
  assert.equal(r.status, 413);
  assert.equal(r.body.reason, 'quota');
  assert.match(r.body.message, /free of your 4\.0 MiB quota/);
  assert.ok(!fs.existsSync(onDisk('big.bin')));
  const small = await api(ctx.server, 'alice', 'PUT', '/api/contents/small.txt', { type: 'file', format: 'text', content: 'ok' });
  assert.equal(small.status, 201);
});

test('an extraction that would pass the quota fails and leaves nothing', { skip }, async () => {
  mkArchive(onDisk('fill.zip', 'bob'), 'zip-store', [{ name: 'a.bin', random: 1.5 * MiB }, { name: 'b.bin', random: 1.5 * MiB }]);
  await sleep(5100); // the usage figure is cached for 5 s
  const before = walk(ctx.server.drive('bob')).sort();
  const res = await extract(ctx.server, 'bob', 'fill.zip', 'out');
  assert.equal(res.state, 'failed');
  assert.match(res.error, /does not fit in your drive's quota: [\d.]+ (KiB|MiB) free/);
  assert.deepEqual(walk(ctx.server.drive('bob')).sort(), before);
});

test('at most max_uploads_per_user unfinished uploads', { skip }, async () => {
  const a = await create('bob', 10, 'a.txt');
  const b = await create('bob', 10, 'b.txt');
  assert.equal(a.status, 201);
  assert.equal(b.status, 201);
  const c = await create('bob', 10, 'c.txt');
  assert.equal(c.status, 429);
  assert.match(JSON.parse(c.text).message, /limit 2/);
  await tusRequest(ctx.server, 'bob', 'DELETE', new URL(a.headers.get('location'), ctx.server.baseUrl).pathname);
  assert.equal((await create('bob', 10, 'c.txt')).status, 201);
});
