// Contents: the user's drive through /api/contents, as JupyterLab's file
// browser and notebook editor use it. All of it passes on jupyter_server too.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api } from './lib/clients.mjs';

const ctx = useServer({ name: 'contents' });
const onDisk = (p) => path.join(ctx.server.drive('alice'), p);

// jupyter_server adds metadata.trusted to code cells it returns (its notebook
// signing); labbook must give back exactly what was saved, so only the
// reference target is excused.
function cellsAsSeen(cells) {
  if (IS_LABBOOK) return cells;
  return cells.map((c) => {
    if (c.metadata?.trusted === undefined) return c;
    const { trusted, ...rest } = c.metadata;
    return { ...c, metadata: rest };
  });
}

function notebook() {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' },
      language_info: { name: 'python' },
      accelerator: 'GPU',
    },
    cells: [
      { cell_type: 'markdown', id: 'md-1', metadata: {}, source: '# Title\n\nSome *text* — ünïcode 世界' },
      {
        cell_type: 'code', id: 'code-1', metadata: { collapsed: false }, execution_count: 3,
        source: 'print("hi")\n1+1',
        outputs: [
          { output_type: 'stream', name: 'stdout', text: 'hi\n' },
          { output_type: 'execute_result', execution_count: 3, metadata: {}, data: { 'text/plain': '2' } },
          { output_type: 'display_data', metadata: { 'image/png': { width: 1 } },
            data: { 'image/png': 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==\n', 'text/plain': '<IPython.core.display.Image object>' } },
          { output_type: 'error', ename: 'ValueError', evalue: 'bad', traceback: ['\u001b[0;31mValueError\u001b[0m: bad'] },
        ],
      },
      { cell_type: 'raw', id: 'raw-1', metadata: {}, source: 'raw text' },
    ],
  };
}

test('directories: create and list', async () => {
  const m = ctx.managers();
  const mk = await api(ctx.server, 'alice', 'PUT', '/api/contents/projects', { type: 'directory' });
  assert.equal(mk.status, 201, mk.text);
  assert.equal(mk.body.type, 'directory');
  assert.ok(fs.statSync(onDisk('projects')).isDirectory());
  const sub = await api(ctx.server, 'alice', 'PUT', '/api/contents/projects/deep', { type: 'directory' });
  assert.equal(sub.status, 201);
  await m.contents.save('projects/a.txt', { type: 'file', format: 'text', content: 'A' });

  const untitled = await m.contents.newUntitled({ path: 'projects', type: 'directory' });
  assert.match(untitled.name, /^Untitled Folder/);

  const list = await m.contents.get('projects');
  assert.equal(list.type, 'directory');
  const names = list.content.map((x) => x.name).sort();
  assert.deepEqual(names, ['Untitled Folder', 'a.txt', 'deep'].sort());
  const a = list.content.find((x) => x.name === 'a.txt');
  assert.equal(a.type, 'file');
  assert.equal(a.path, 'projects/a.txt');
  assert.equal(a.content, null, 'a listing does not include file contents');
  const root = await api(ctx.server, 'alice', 'GET', '/api/contents');
  assert.equal(root.status, 200);
  assert.ok(root.body.content.some((x) => x.name === 'projects' && x.type === 'directory'));
});

test('notebooks round-trip cells and outputs exactly', async () => {
  const m = ctx.managers();
  const nb = notebook();
  const saved = await m.contents.save('round.ipynb', { type: 'notebook', format: 'json', content: nb });
  assert.equal(saved.type, 'notebook');
  const got = await m.contents.get('round.ipynb');
  assert.equal(got.type, 'notebook');
  assert.equal(got.format, 'json');
  assert.deepEqual(cellsAsSeen(got.content.cells), nb.cells);
  assert.deepEqual(got.content.metadata, nb.metadata);
  assert.equal(got.content.nbformat, 4);
  // On disk it is a valid .ipynb with the same outputs.
  const disk = JSON.parse(fs.readFileSync(onDisk('round.ipynb'), 'utf8'));
  assert.equal(disk.nbformat, 4);
  assert.equal(disk.cells[1].outputs.length, 4);
  const joined = (s) => (Array.isArray(s) ? s.join('') : s);
  assert.equal(joined(disk.cells[1].outputs[0].text), 'hi\n');
  assert.equal(joined(disk.cells[0].source), nb.cells[0].source);
});

test('text and base64 files', async () => {
  const m = ctx.managers();
  const text = 'line 1\nlïne 2 — 世界 🚀\n';
  await m.contents.save('notes.txt', { type: 'file', format: 'text', content: text });
  const t = await m.contents.get('notes.txt', { type: 'file', format: 'text', content: true });
  assert.equal(t.content, text);
  assert.equal(t.format, 'text');
  assert.equal(fs.readFileSync(onDisk('notes.txt'), 'utf8'), text);

  const bytes = crypto.randomBytes(70000);
  bytes[0] = 0xff; bytes[1] = 0x00; // not UTF-8
  await m.contents.save('blob.bin', { type: 'file', format: 'base64', content: bytes.toString('base64') });
  const b = await m.contents.get('blob.bin', { type: 'file', format: 'base64', content: true });
  assert.equal(b.format, 'base64');
  assert.ok(Buffer.from(b.content, 'base64').equals(bytes));
  assert.ok(fs.readFileSync(onDisk('blob.bin')).equals(bytes));
  // Without a format the server picks base64 for binary data.
  const auto = await api(ctx.server, 'alice', 'GET', '/api/contents/blob.bin?type=file');
  assert.equal(auto.body.format, 'base64');
});

test('chunked upload of 5 MiB in 1 MiB chunks reads back byte-identical', async () => {
  const MiB = 1024 * 1024;
  const data = crypto.randomBytes(5 * MiB + 12345);
  const n = Math.ceil(data.length / MiB);
  const d = await api(ctx.server, 'alice', 'PUT', '/api/contents/upload', { type: 'directory' });
  assert.equal(d.status, 201);
  for (let i = 0; i < n; i++) {
    const chunk = i === n - 1 ? -1 : i + 1; // what JupyterLab's file browser sends
    const r = await api(ctx.server, 'alice', 'PUT', '/api/contents/upload/big.bin', {
      type: 'file', format: 'base64', name: 'big.bin', path: 'upload/big.bin',
      content: data.subarray(i * MiB, (i + 1) * MiB).toString('base64'), chunk,
    });
    assert.ok(r.status === 200 || r.status === 201, `chunk ${chunk}: ${r.status} ${r.text}`);
  }
  const got = await api(ctx.server, 'alice', 'GET', '/api/contents/upload/big.bin?type=file&format=base64');
  assert.equal(got.status, 200);
  assert.equal(got.body.size ?? data.length, data.length);
  const back = Buffer.from(got.body.content, 'base64');
  assert.equal(back.length, data.length);
  assert.ok(back.equals(data), 'same bytes');
  assert.ok(fs.readFileSync(onDisk('upload/big.bin')).equals(data));
});

test('large saves: what lands is the content, whatever its base64 looks like', async () => {
  // labbook decodes a large body's base64 while it arrives; these bodies must come
  // out as a full parse would have them.
  const data = crypto.randomBytes(300 * 1024);
  const b64 = data.toString('base64');
  const put = (body) => api(ctx.server, 'alice', 'PUT', '/api/contents/shapes.bin', body, { raw: true });
  // base64 in 76-character lines (MIME style)
  let r = await put(JSON.stringify({ type: 'file', format: 'base64', content: b64.replace(/.{76}/g, '$&\n') }));
  assert.ok(r.status === 200 || r.status === 201, r.text);
  assert.ok(fs.readFileSync(onDisk('shapes.bin')).equals(data), 'line-broken base64');
  // content before format, and a name repeated: the last "content" counts
  const other = crypto.randomBytes(200 * 1024);
  r = await put(`{"content": "${b64}", "type": "file", "content": "${other.toString('base64')}", "format": "base64"}`);
  assert.equal(r.status, 200, r.text);
  assert.ok(fs.readFileSync(onDisk('shapes.bin')).equals(other), 'the last content member');
  // text that looks like base64 is saved as text
  r = await put(JSON.stringify({ type: 'file', format: 'text', content: b64 }));
  assert.equal(r.status, 200, r.text);
  assert.equal(fs.readFileSync(onDisk('shapes.bin'), 'utf8'), b64);
  if (IS_LABBOOK) {
    // a character outside the alphabet half-way in: refused, the file unchanged
    // (jupyter_server's decoder skips such characters)
    const bad = b64.slice(0, 200000) + '!' + b64.slice(200000);
    r = await put(JSON.stringify({ type: 'file', format: 'base64', content: bad }));
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.message, /invalid base64/);
    assert.equal(fs.readFileSync(onDisk('shapes.bin'), 'utf8'), b64);
  }
});

test('two chunked uploads at once, with listings between chunks, both land whole', async () => {
  // The hub answers a middle chunk before its bytes are on disk (the write overlaps
  // the client's next chunk); the user's next request waits for that write.
  const MiB = 1024 * 1024;
  const files = ['a.bin', 'b.bin'].map((name) => ({ name, data: crypto.randomBytes(3 * MiB + 777) }));
  const d = await api(ctx.server, 'alice', 'PUT', '/api/contents/pair', { type: 'directory' });
  assert.equal(d.status, 201);
  await Promise.all(files.map(async ({ name, data }) => {
    const n = Math.ceil(data.length / MiB);
    for (let i = 0; i < n; i++) {
      const chunk = i === n - 1 ? -1 : i + 1;
      const r = await api(ctx.server, 'alice', 'PUT', `/api/contents/pair/${name}`, {
        type: 'file', format: 'base64', content: data.subarray(i * MiB, (i + 1) * MiB).toString('base64'), chunk,
      });
      assert.ok(r.status === 200 || r.status === 201, `${name} chunk ${chunk}: ${r.status} ${r.text}`);
      assert.equal(r.body.size, Math.min((i + 1) * MiB, data.length));
      const list = await api(ctx.server, 'alice', 'GET', '/api/contents/pair');
      assert.equal(list.status, 200);
    }
  }));
  for (const { name, data } of files) assert.ok(fs.readFileSync(onDisk(`pair/${name}`)).equals(data), name);
  assert.deepEqual(fs.readdirSync(onDisk('pair')).sort(), ['a.bin', 'b.bin']);
});

test('rename, copy and delete', async () => {
  const m = ctx.managers();
  await m.contents.save('orig.ipynb', { type: 'notebook', format: 'json', content: notebook() });
  const renamed = await m.contents.rename('orig.ipynb', 'moved.ipynb');
  assert.equal(renamed.path, 'moved.ipynb');
  assert.ok(!fs.existsSync(onDisk('orig.ipynb')));
  assert.ok(fs.existsSync(onDisk('moved.ipynb')));
  const old = await api(ctx.server, 'alice', 'GET', '/api/contents/orig.ipynb');
  assert.equal(old.status, 404);

  const copy = await m.contents.copy('moved.ipynb', '');
  assert.notEqual(copy.path, 'moved.ipynb');
  assert.match(copy.name, /^moved.*\.ipynb$/);
  const c = await m.contents.get(copy.path);
  assert.deepEqual(cellsAsSeen(c.content.cells), notebook().cells);

  // renaming onto an existing file is refused
  const clash = await api(ctx.server, 'alice', 'PATCH', '/api/contents/moved.ipynb', { path: copy.path });
  assert.ok(clash.status >= 400 && clash.status < 500, `rename onto existing: ${clash.status}`);

  await m.contents.delete(copy.path);
  const gone = await api(ctx.server, 'alice', 'GET', `/api/contents/${encodeURIComponent(copy.path)}`);
  assert.equal(gone.status, 404);
  const del = await api(ctx.server, 'alice', 'DELETE', '/api/contents/moved.ipynb');
  assert.equal(del.status, 204);
  assert.ok(!fs.existsSync(onDisk('moved.ipynb')));
});

test('checkpoints: create, list, restore, delete', async () => {
  const m = ctx.managers();
  await m.contents.save('cp.txt', { type: 'file', format: 'text', content: 'version 1' });
  const cp = await m.contents.createCheckpoint('cp.txt');
  assert.equal(typeof cp.id, 'string');
  assert.ok(cp.last_modified);
  const list = await m.contents.listCheckpoints('cp.txt');
  assert.deepEqual(list.map((x) => x.id), [cp.id]);

  await m.contents.save('cp.txt', { type: 'file', format: 'text', content: 'version 2' });
  assert.equal((await m.contents.get('cp.txt', { format: 'text', type: 'file', content: true })).content, 'version 2');
  await m.contents.restoreCheckpoint('cp.txt', cp.id);
  assert.equal((await m.contents.get('cp.txt', { format: 'text', type: 'file', content: true })).content, 'version 1');
  assert.equal(fs.readFileSync(onDisk('cp.txt'), 'utf8'), 'version 1');

  await m.contents.deleteCheckpoint('cp.txt', cp.id);
  assert.deepEqual(await m.contents.listCheckpoints('cp.txt'), []);
  const r = await api(ctx.server, 'alice', 'POST', `/api/contents/cp.txt/checkpoints/${cp.id}`);
  if (IS_LABBOOK) {
    assert.equal(r.status, 404, 'restoring a deleted checkpoint is a 404');
  } else {
    // jupyter_server 1.23 answers 500 (FileNotFoundError escapes); only require a refusal.
    assert.ok(r.status >= 400, `restoring a deleted checkpoint is refused, got ${r.status}`);
  }
  assert.equal(fs.readFileSync(onDisk('cp.txt'), 'utf8'), 'version 1', 'the file is untouched');
});

test('a missing file is a 404 with a JSON message', async () => {
  const r = await api(ctx.server, 'alice', 'GET', '/api/contents/no/such/file.txt');
  assert.equal(r.status, 404);
  assert.ok(r.body, `JSON body, got ${r.text}`);
  assert.equal(typeof r.body.message, 'string');
  assert.ok(r.body.message.length > 0);
  const d = await api(ctx.server, 'alice', 'DELETE', '/api/contents/no-such-file.txt');
  assert.equal(d.status, 404);
});

test('POST makes a new untitled notebook, each with its own name', async () => {
  const a = await api(ctx.server, 'alice', 'POST', '/api/contents', { type: 'notebook' });
  assert.equal(a.status, 201, a.text);
  assert.match(a.body.name, /^Untitled.*\.ipynb$/);
  assert.equal(a.body.type, 'notebook');
  const b = await api(ctx.server, 'alice', 'POST', '/api/contents', { type: 'notebook' });
  assert.equal(b.status, 201);
  assert.notEqual(b.body.name, a.body.name);
  const got = await api(ctx.server, 'alice', 'GET', `/api/contents/${encodeURIComponent(a.body.path)}`);
  assert.equal(got.body.content.nbformat, 4);
  assert.deepEqual(got.body.content.cells, []);
  const f = await ctx.managers().contents.newUntitled({ type: 'file', ext: '.py' });
  assert.match(f.name, /^untitled.*\.py$/);
});

test('files survive a server restart and the tokens still work', async () => {
  const m = ctx.managers();
  await m.contents.save('keep.txt', { type: 'file', format: 'text', content: 'kept' });
  await ctx.server.restart();
  const r = await api(ctx.server, 'alice', 'GET', '/api/contents/keep.txt?type=file&format=text');
  assert.equal(r.status, 200);
  assert.equal(r.body.content, 'kept');
  const nb = await api(ctx.server, 'alice', 'GET', '/api/contents/round.ipynb');
  assert.equal(nb.status, 200);
  assert.deepEqual(cellsAsSeen(nb.body.content.cells), notebook().cells);
});
