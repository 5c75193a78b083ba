// The drive's trash (docs/drive.md, "Trash"): a Contents API DELETE still answers 204
// and the item leaves every listing, but it waits in the user's trash, from where it
// can be restored byte for byte, deleted forever, or emptied; it still counts against
// the quota, and goes by itself after [drive] trash_days.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { useServer, labbookCli, IS_LABBOOK, RUN_LABBOOK_ONLY } from './lib/server.mjs';
import { api, rawRequest, sleep } from './lib/clients.mjs';
import { walk } from './lib/drive.mjs';

const skip = RUN_LABBOOK_ONLY ? false : 'the trash is a labbook extension';
const KiB = 1024;

const put = async (server, user, p, bytes) => {
  const r = await api(server, user, 'PUT', `/api/contents/${p}`, { type: 'file', format: 'base64', content: Buffer.from(bytes).toString('base64') });
  assert.ok(r.status === 201 || r.status === 200, `${p}: ${r.status} ${r.text}`);
};
const mkdir = async (server, user, p) => {
  const r = await api(server, user, 'PUT', `/api/contents/${p}`, { type: 'directory' });
  assert.ok(r.status === 201 || r.status === 200, r.text);
};
const del = async (server, user, p) => {
  const r = await api(server, user, 'DELETE', `/api/contents/${p}`);
  assert.equal(r.status, 204, r.text);
  const loc = r.headers.get('location');
  assert.match(loc ?? '', /^\/api\/drive\/trash\/[0-9a-f]{32}$/, 'the 204 says where it went');
  return loc.split('/').pop();
};
const read = async (server, user, p) => {
  const r = await api(server, user, 'GET', `/api/contents/${p}?format=base64&type=file`);
  assert.equal(r.status, 200, r.text);
  return Buffer.from(r.body.content, 'base64');
};
const trash = async (server, user) => {
  const r = await api(server, user, 'GET', '/api/drive/trash');
  assert.equal(r.status, 200, r.text);
  return r.body.items;
};
const restore = (server, user, id) => api(server, user, 'POST', `/api/drive/trash/${id}/restore`);
const names = async (server, user, dir = '') =>
  (await api(server, user, 'GET', `/api/contents/${dir}`)).body.content.map((m) => m.name).sort();

describe('trash', { skip }, () => {
  const ctx = useServer({ name: 'trash' });

  test('DELETE moves a file to the trash; it is hidden and restores byte-identical', async () => {
    const s = ctx.server;
    const data = crypto.randomBytes(100 * KiB);
    await put(s, 'alice', 'keep.bin', data);
    const before = Date.now();
    const id = await del(s, 'alice', 'keep.bin');
    assert.equal((await api(s, 'alice', 'GET', '/api/contents/keep.bin')).status, 404);
    assert.deepEqual(await names(s, 'alice'), [], 'the listing shows neither it nor the trash');
    // nothing of the trash is reachable as a file
    for (const p of [`.labbook/trash/${id}/item`, `.labbook/trash/${id}/info.json`, '.labbook/trash']) {
      assert.equal((await api(s, 'alice', 'GET', `/api/contents/${p}`)).status, 404, p);
      assert.equal((await api(s, 'alice', 'GET', `/files/${p}`)).status, 404, p);
    }
    const items = await trash(s, 'alice');
    assert.equal(items.length, 1);
    const [it] = items;
    assert.equal(it.id, id);
    assert.equal(it.name, 'keep.bin');
    assert.equal(it.path, 'keep.bin');
    assert.equal(it.type, 'file');
    assert.equal(it.size, data.length);
    const when = Date.parse(it.deleted);
    assert.ok(when >= before - 2000 && when <= Date.now() + 2000, `deleted ${it.deleted}`);

    const r = await restore(s, 'alice', id);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body, { path: 'keep.bin', name: 'keep.bin' });
    assert.ok((await read(s, 'alice', 'keep.bin')).equals(data), 'byte-identical');
    assert.deepEqual(await trash(s, 'alice'), [], 'no longer in the trash');
    assert.equal((await restore(s, 'alice', id)).status, 404, 'restored once');
    fs.rmSync(path.join(s.drive('alice'), 'keep.bin'));
  });

  test('a folder goes and comes back whole', async () => {
    const s = ctx.server;
    await mkdir(s, 'alice', 'proj');
    await mkdir(s, 'alice', 'proj/data');
    const a = crypto.randomBytes(3000), b = crypto.randomBytes(5000);
    await put(s, 'alice', 'proj/a.bin', a);
    await put(s, 'alice', 'proj/data/b.bin', b);
    const tree = walk(path.join(s.drive('alice'), 'proj')).sort();
    const id = await del(s, 'alice', 'proj');
    assert.ok(!fs.existsSync(path.join(s.drive('alice'), 'proj')));
    const [it] = await trash(s, 'alice');
    assert.equal(it.type, 'directory');
    assert.equal(it.size, a.length + b.length);
    assert.equal((await restore(s, 'alice', id)).status, 200);
    assert.deepEqual(walk(path.join(s.drive('alice'), 'proj')).sort(), tree);
    assert.ok((await read(s, 'alice', 'proj/data/b.bin')).equals(b));
    fs.rmSync(path.join(s.drive('alice'), 'proj'), { recursive: true });
  });

  test('restoring onto a taken name keeps both; a gone folder restores to the root', async () => {
    const s = ctx.server;
    await put(s, 'alice', 'x.txt', 'old one');
    const id1 = await del(s, 'alice', 'x.txt');
    await put(s, 'alice', 'x.txt', 'second');
    const id2 = await del(s, 'alice', 'x.txt');
    await put(s, 'alice', 'x.txt', 'current');
    const r1 = await restore(s, 'alice', id1);
    assert.equal(r1.status, 200, r1.text);
    assert.equal(r1.body.path, 'x (restored).txt');
    const r2 = await restore(s, 'alice', id2);
    assert.equal(r2.body.path, 'x (restored 2).txt');
    assert.equal((await read(s, 'alice', 'x.txt')).toString(), 'current', 'the newer file is untouched');
    assert.equal((await read(s, 'alice', 'x (restored).txt')).toString(), 'old one');
    assert.equal((await read(s, 'alice', 'x (restored 2).txt')).toString(), 'second');

    await mkdir(s, 'alice', 'd');
    await put(s, 'alice', 'd/f.txt', 'inner');
    const idf = await del(s, 'alice', 'd/f.txt');
    const idd = await del(s, 'alice', 'd');
    const items = await trash(s, 'alice');
    assert.deepEqual(items.map((i) => i.id), [idd, idf], 'newest first');
    assert.equal(items[1].path, 'd/f.txt');
    const rf = await restore(s, 'alice', idf);
    assert.equal(rf.body.path, 'f.txt', 'its folder is in the trash: to the root, as Drive does');
    assert.equal((await read(s, 'alice', 'f.txt')).toString(), 'inner');
    const rd = await restore(s, 'alice', idd);
    assert.equal(rd.body.path, 'd');
    assert.deepEqual(await names(s, 'alice', 'd'), []);
    for (const n of ['x.txt', 'x (restored).txt', 'x (restored 2).txt', 'f.txt', 'd'])
      fs.rmSync(path.join(s.drive('alice'), n), { recursive: true });
  });

  test('delete forever and empty trash', async () => {
    const s = ctx.server;
    await put(s, 'alice', 'one.txt', '1');
    await put(s, 'alice', 'two.txt', '2');
    await put(s, 'alice', 'three.txt', '3');
    const id1 = await del(s, 'alice', 'one.txt');
    await del(s, 'alice', 'two.txt');
    await del(s, 'alice', 'three.txt');
    const d = await api(s, 'alice', 'DELETE', `/api/drive/trash/${id1}`);
    assert.equal(d.status, 204, d.text);
    assert.equal((await api(s, 'alice', 'DELETE', `/api/drive/trash/${id1}`)).status, 404);
    assert.equal((await restore(s, 'alice', id1)).status, 404);
    assert.deepEqual((await trash(s, 'alice')).map((i) => i.name).sort(), ['three.txt', 'two.txt']);
    const e = await api(s, 'alice', 'DELETE', '/api/drive/trash');
    assert.equal(e.status, 200, e.text);
    assert.deepEqual(e.body, { deleted: 2 });
    assert.deepEqual(await trash(s, 'alice'), []);
    assert.deepEqual(fs.readdirSync(path.join(s.drive('alice'), '.labbook/trash')), [], 'gone from the disk');
  });

  test("one user's trash is theirs alone", async () => {
    const s = ctx.server;
    await put(s, 'alice', 'secret.txt', 'alice only');
    const id = await del(s, 'alice', 'secret.txt');
    assert.deepEqual(await trash(s, 'bob'), []);
    assert.equal((await restore(s, 'bob', id)).status, 404);
    assert.equal((await api(s, 'bob', 'DELETE', `/api/drive/trash/${id}`)).status, 404);
    assert.equal((await api(s, 'bob', 'DELETE', '/api/drive/trash')).body.deleted, 0);
    assert.deepEqual((await trash(s, 'alice')).map((i) => i.id), [id], "bob's calls changed nothing");
    assert.equal((await api(s, null, 'GET', '/api/drive/trash')).status, 403, 'not signed in');
    await api(s, 'alice', 'DELETE', '/api/drive/trash');
  });

  test('hostile ids, links and sidecars are refused', async () => {
    const s = ctx.server;
    await put(s, 'bob', 'bobs.txt', 'bob');
    const bobId = await del(s, 'bob', 'bobs.txt');
    const tok = s.tokens.alice;
    for (const p of [
      '/api/drive/trash/..%2F..%2Fbob%2F.labbook%2Ftrash%2F' + bobId + '/restore',
      '/api/drive/trash/../../bob/restore',
      '/api/drive/trash/abc/restore',
      '/api/drive/trash/' + bobId.toUpperCase() + '/restore',
      '/api/drive/trash/' + bobId + 'x/restore',
    ]) {
      const r = await rawRequest(s, 'POST', p, { token: tok });
      assert.ok([400, 404].includes(r.status), `${p}: ${r.status}`);
    }
    assert.ok([400, 404].includes((await rawRequest(s, 'DELETE', '/api/drive/trash/%2e%2e', { token: tok })).status));
    // Things a kernel could plant in alice's trash (it sees the drive): a link to
    // bob's entry, an entry whose sidecar points out of the drive or is a link.
    const at = path.join(s.drive('alice'), '.labbook/trash');
    fs.mkdirSync(at, { recursive: true });
    const linkId = 'a'.repeat(32);
    fs.symlinkSync(path.join(s.drive('bob'), '.labbook/trash', bobId), path.join(at, linkId));
    const evilId = 'b'.repeat(32);
    fs.mkdirSync(path.join(at, evilId));
    fs.writeFileSync(path.join(at, evilId, 'info.json'), JSON.stringify({ path: '../bob/stolen.txt', deleted: Date.now() / 1000, type: 'file' }));
    fs.writeFileSync(path.join(at, evilId, 'item'), 'x');
    const hidId = 'c'.repeat(32);
    fs.mkdirSync(path.join(at, hidId));
    fs.writeFileSync(path.join(at, hidId, 'info.json'), JSON.stringify({ path: '.labbook/trash/x', deleted: Date.now() / 1000, type: 'file' }));
    fs.writeFileSync(path.join(at, hidId, 'item'), 'x');
    const lnkInfo = 'd'.repeat(32);
    fs.mkdirSync(path.join(at, lnkInfo));
    fs.symlinkSync(path.join(s.drive('bob'), '.labbook/trash', bobId, 'info.json'), path.join(at, lnkInfo, 'info.json'));
    fs.writeFileSync(path.join(at, lnkInfo, 'item'), 'x');
    assert.deepEqual(await trash(s, 'alice'), [], 'none of them is listed');
    for (const id of [linkId, evilId, hidId, lnkInfo]) {
      assert.equal((await restore(s, 'alice', id)).status, 404, id);
      assert.equal((await api(s, 'alice', 'DELETE', `/api/drive/trash/${id}`)).status, 404, id);
    }
    assert.ok(!fs.existsSync(path.join(s.drive('bob'), 'stolen.txt')));
    assert.deepEqual((await trash(s, 'bob')).map((i) => i.id), [bobId], "bob's entry is intact");
    assert.equal((await restore(s, 'bob', bobId)).status, 200);
    fs.rmSync(at, { recursive: true });
  });
});

describe('trash and the quota', { skip }, () => {
  const ctx = useServer({ name: 'trash-quota', config: '[drive]\nquota_mb = 1\n' });

  test('the trash counts against the quota until it is emptied', async () => {
    const s = ctx.server;
    await put(s, 'alice', 'big.bin', crypto.randomBytes(600 * KiB));
    await del(s, 'alice', 'big.bin');
    const u = (await api(s, 'alice', 'GET', '/api/drive/usage')).body;
    assert.ok(u.used >= 600 * KiB, `trashed bytes still count: ${JSON.stringify(u)}`);
    const over = await api(s, 'alice', 'PUT', '/api/contents/big2.bin', { type: 'file', format: 'base64', content: crypto.randomBytes(600 * KiB).toString('base64') });
    assert.equal(over.status, 413);
    assert.equal(over.body.reason, 'quota');
    assert.equal((await api(s, 'alice', 'DELETE', '/api/drive/trash')).body.deleted, 1);
    assert.ok((await api(s, 'alice', 'GET', '/api/drive/usage')).body.used < 1 * KiB, 'emptied: freed');
    await put(s, 'alice', 'big2.bin', crypto.randomBytes(600 * KiB));
  });
});

describe('trash expiry', { skip }, () => {
  // 0.00005 days is 4.3 s; the sweep then runs every second.
  const ctx = useServer({ name: 'trash-expiry', config: '[drive]\ntrash_days = 0.00005\n' });

  test('items older than trash_days are deleted, listed or not', async () => {
    const s = ctx.server;
    const at = path.join(s.drive('alice'), '.labbook/trash');
    await put(s, 'alice', 'soon.txt', 'gone soon');
    const id = await del(s, 'alice', 'soon.txt');
    assert.deepEqual((await trash(s, 'alice')).map((i) => i.id), [id]);
    const r = await api(s, 'alice', 'GET', '/api/drive/trash');
    assert.ok(Math.abs(r.body.days * 86400 - 4.32) < 1, `days: ${r.body.days}`);
    // the periodic sweep, without any request
    const deadline = Date.now() + 15000;
    while (fs.existsSync(path.join(at, id)) && Date.now() < deadline) await sleep(200);
    assert.ok(!fs.existsSync(path.join(at, id)), 'swept by itself');
    assert.deepEqual(await trash(s, 'alice'), []);
    assert.match(s.log(), /deleted 1 expired items? from the drives' trash/);
  });

  test('trash_days = 0: the trash is emptied at start and DELETE removes at once', async () => {
    const s = ctx.server;
    const at = path.join(s.drive('alice'), '.labbook/trash');
    const ini = path.join(s.dataDir, 'labbook.ini');
    const text = fs.readFileSync(ini, 'utf8');
    fs.writeFileSync(ini, text.replace(/trash_days = .*/, 'trash_days = 30'));
    await s.restart();
    await put(s, 'alice', 'kept.txt', 'kept');
    const id = await del(s, 'alice', 'kept.txt');
    await sleep(1500);
    assert.ok(fs.existsSync(path.join(at, id)), '30 days: still there');
    fs.writeFileSync(ini, text.replace(/trash_days = .*/, 'trash_days = 0'));
    await s.restart();
    const deadline = Date.now() + 10000;
    while (fs.existsSync(path.join(at, id)) && Date.now() < deadline) await sleep(100);
    assert.ok(!fs.existsSync(path.join(at, id)), 'emptied at start');
    await put(s, 'alice', 'now.txt', 'now');
    const d = await api(s, 'alice', 'DELETE', '/api/contents/now.txt');
    assert.equal(d.status, 204);
    assert.equal(d.headers.get('location'), null);
    assert.ok(!fs.existsSync(path.join(s.drive('alice'), 'now.txt')));
    assert.deepEqual(fs.readdirSync(at), [], 'nothing kept');
  });
});

test('trash_days is validated', { skip: IS_LABBOOK ? false : 'a labbook config key' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'labbook-trash-cfg-'));
  for (const v of ['-1', 'abc', '3651', 'nan', '1e9']) {
    fs.writeFileSync(path.join(dir, 'bad.ini'), `[drive]\ntrash_days = ${v}\n`);
    let err = null;
    try { labbookCli(['serve', '--config', path.join(dir, 'bad.ini'), '--data', path.join(dir, 'data'), '--port', '1']); } catch (e) { err = e; }
    assert.ok(err, `trash_days = ${v} is refused`);
    assert.match(String(err.stderr), new RegExp(`\\[drive\\] trash_days: impossible value "${v}"`));
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
