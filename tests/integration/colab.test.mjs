// google.colab in real kernels (docs/colab.md): drive.mount shows the user's drive at
// MOUNTPOINT/MyDrive and MOUNTPOINT/My Drive, so files written through the contents API
// are read in the kernel and files the kernel writes are seen through the API, Unicode
// names included; Colab's messages and errors; the seed cells of Colab tutorials run
// as they are; files.upload with this test playing the UI; files.download. Sandboxed
// runtimes (when the hub runs as root) and unsandboxed ones ([runtimes] sandbox = 0);
// PYTHONPATH and LABBOOK_DRIVE as the kernel sees them; [runtimes] python_path; a
// `python` command (Colab's `!python file.py`) where the system has only python3.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api, rawKernelSocket, until } from './lib/clients.mjs';

const skip = IS_LABBOOK ? false : 'google.colab is labbook-only';
const UPLOAD_MIME = 'application/vnd.labbook.upload+json';
const DOWNLOAD_MIME = 'application/vnd.labbook.download+json';

/** /api/contents URL of a drive path, each segment encoded. */
const contentsUrl = (p) => '/api/contents/' + p.split('/').map(encodeURIComponent).join('/');

const isReply = (id) => (m) => m.header?.msg_type === 'execute_reply' && m.parent_header?.msg_id === id;
const isIdle = (id) => (m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' && m.parent_header?.msg_id === id;
const ofCell = (c, id, type) => c.msgs.filter((m) => m.header?.msg_type === type && m.parent_header?.msg_id === id);
const streams = (c, id, name) => ofCell(c, id, 'stream').filter((m) => m.content.name === name).map((m) => m.content.text).join('');

/** Helpers bound to one server (ctx.server once it is up). */
function kit(ctx) {
  const put = async (user, p, body) => {
    const r = await api(ctx.server, user, 'PUT', contentsUrl(p), body);
    assert.ok(r.status === 201 || r.status === 200, `PUT ${p}: ${r.status} ${r.text}`);
    return r;
  };
  return {
    server: () => ctx.server,
    put,
    putText: (user, p, text) => put(user, p, { type: 'file', format: 'text', content: text }),
    putBytes: (user, p, buf) => put(user, p, { type: 'file', format: 'base64', content: Buffer.from(buf).toString('base64') }),
    mkdir: (user, p) => put(user, p, { type: 'directory' }),
    async get(user, p) {
      return api(ctx.server, user, 'GET', contentsUrl(p) + '?content=1');
    },
    async startKernel(user = 'alice') {
      const r = await api(ctx.server, user, 'POST', '/api/kernels', { name: 'python3' });
      assert.equal(r.status, 201, `start a kernel for ${user}: ${r.text}`);
      await until(async () => (await api(ctx.server, user, 'GET', `/api/kernels/${r.body.id}`)).body?.execution_state === 'idle',
        { timeoutMs: 30000, what: `kernel of ${user} idle` });
      return r.body.id;
    },
    /** A raw client of kernel `id`; close() it at the end. */
    async open(user, id) {
      const c = rawKernelSocket(ctx.server, user, id);
      await c.opened;
      return c;
    },
    async deleteKernel(user, id) {
      await api(ctx.server, user, 'DELETE', `/api/kernels/${id}`);
    },
  };
}

/**
 * Runs one cell on client `c`; resolves with {reply, stdout, stderr, displays} once
 * idle. `during(msgId)` runs concurrently (to play the UI while the cell waits).
 */
async function cell(c, code, { timeoutMs = 30000, during } = {}) {
  // stop_on_error off: after a cell that raised, ipykernel aborts what arrives for a
  // moment, and these tests send the next cell at once.
  const id = c.execute(code, { stop_on_error: false }).header.msg_id;
  const what = JSON.stringify(code.slice(0, 60));
  let sideError = null;
  const side = during ? during(id).catch((e) => { sideError = e; }) : null;
  const reply = await c.waitFor(isReply(id), { timeoutMs, what: `execute_reply to ${what}` });
  await c.waitFor(isIdle(id), { timeoutMs, what: `idle after ${what}` });
  if (side) await side;
  if (sideError) {
    const rc = reply.content;
    sideError.message += `\n(the cell ended ${rc.status}${rc.ename ? `: ${rc.ename}: ${rc.evalue}` : ''}; stdout ${JSON.stringify(streams(c, id, 'stdout'))}, stderr ${JSON.stringify(streams(c, id, 'stderr'))})`;
    throw sideError;
  }
  return {
    reply,
    stdout: streams(c, id, 'stdout'),
    stderr: streams(c, id, 'stderr'),
    displays: ofCell(c, id, 'display_data').map((m) => m.content),
  };
}

/** cell() that must succeed. */
async function ok(c, code, opts) {
  const r = await cell(c, code, opts);
  assert.equal(r.reply.content.status, 'ok', `cell raised: ${r.reply.content.ename}: ${r.reply.content.evalue}\n${r.stderr}\n${code}`);
  return r;
}

/** A version 1.0 .npy file of int32 values, shape (n,) (numpy's own format, written by hand). */
function npyInt32(values) {
  let header = `{'descr': '<i4', 'fortran_order': False, 'shape': (${values.length},), }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const h = Buffer.alloc(10);
  Buffer.from([0x93]).copy(h, 0);
  h.write('NUMPY', 1, 'latin1');
  h[6] = 1; h[7] = 0;
  h.writeUInt16LE(header.length, 8);
  const data = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => data.writeInt32LE(v, 4 * i));
  return Buffer.concat([h, Buffer.from(header, 'latin1'), data]);
}

/**
 * The drive through a mount point, both ways: a file PUT through the API is read in
 * the kernel under MP/MyDrive and MP/My Drive, a file the kernel writes there is
 * served by the API; Unicode names in folders and files.
 */
async function checkBothWays(k, c, user, mp) {
  const stamp = `${process.pid}-${Date.now()}`;
  await k.mkdir(user, 'données');
  await k.putText(user, 'données/été ☀.txt', `from the API ${stamp}`);
  const r = await ok(c, `
for name in ('MyDrive', 'My Drive'):
    print(name, '|', open(${JSON.stringify(mp)} + '/' + name + '/données/été ☀.txt', encoding='utf-8').read())
import os
os.makedirs(${JSON.stringify(mp)} + '/MyDrive/日本語', exist_ok=True)
with open(${JSON.stringify(mp)} + '/My Drive/日本語/файл.txt', 'w', encoding='utf-8') as f:
    f.write('from the kernel ${stamp}')
`);
  assert.match(r.stdout, new RegExp(`^MyDrive \\| from the API ${stamp}$`, 'm'));
  assert.match(r.stdout, new RegExp(`^My Drive \\| from the API ${stamp}$`, 'm'));
  const g = await k.get(user, '日本語/файл.txt');
  assert.equal(g.status, 200, g.text);
  assert.equal(g.body.content, `from the kernel ${stamp}`);
}

describe('sandboxed runtimes', { skip }, () => {
  const ctx = useServer({
    name: 'colab',
    users: ['alice', 'bob'],
    config: '[profile.cpu]\nmax_per_user = 4\nidle_timeout_s = 0\n',
  });
  const k = kit(ctx);
  const needSandbox = (t) => {
    if (ctx.server.log().includes('runtimes run in sandboxes')) return false;
    t.skip('the hub does not run runtimes in sandboxes (it must run as root on Linux >= 5.19)');
    return true;
  };

  test("drive.mount('/Drive'): Colab's messages, both names, the API and the kernel see the same files", async (t) => {
    if (needSandbox(t)) return;
    const id = await k.startKernel('alice');
    const c = await k.open('alice', id);
    try {
      const env = await ok(c, "import os, google.colab\nprint(os.environ['PYTHONPATH'], os.environ['LABBOOK_DRIVE'], google.colab.__file__)");
      assert.equal(env.stdout, '/run/labbook/python /content/drive/MyDrive /run/labbook/python/google/colab/__init__.py\n');
      const m = await ok(c, "from google.colab import drive\ndrive.mount('/Drive')");
      assert.equal(m.stdout, 'Mounted at /Drive\n');
      await checkBothWays(k, c, 'alice', '/Drive');
      const again = await ok(c, "drive.mount('/Drive')");
      assert.equal(again.stdout, 'Drive already mounted at /Drive; to attempt to forcibly remount, call drive.mount("/Drive", force_remount=True).\n');
      const forced = await ok(c, "drive.mount('/Drive', force_remount=True)");
      assert.equal(forced.stdout, 'Mounted at /Drive\n');
      // Reading is local: the link leads to the bind mount, not to a network filesystem.
      const fsType = await ok(c, "import os\nprint(os.path.realpath('/Drive/My Drive'))");
      assert.equal(fsType.stdout.trim(), '/content/drive/MyDrive');
      const un = await ok(c, "drive.flush_and_unmount()\nimport os\nprint(sorted(os.listdir('/Drive')))");
      assert.match(un.stdout, /should now be visible in Drive\.\n\[\]\n$/);
    } finally {
      await c.close();
      await k.deleteKernel('alice', id);
    }
  });

  test("unusable mount points raise Colab's ValueErrors; /content/drive mounts once, then is already mounted", async (t) => {
    if (needSandbox(t)) return;
    const id = await k.startKernel('alice');
    const c = await k.open('alice', id);
    try {
      await ok(c, "from google.colab import drive\nopen('/content/afile', 'w').close()");
      const full = await cell(c, "drive.mount('/usr')");
      assert.equal(full.reply.content.ename, 'ValueError');
      assert.equal(full.reply.content.evalue, 'Mountpoint must not already contain files');
      const file = await cell(c, "drive.mount('/content/afile')");
      assert.equal(file.reply.content.ename, 'ValueError');
      assert.equal(file.reply.content.evalue, 'Mountpoint must either be a directory or not exist');
      const first = await ok(c, "drive.mount('/content/drive')");
      assert.equal(first.stdout, 'Mounted at /content/drive\n');
      const second = await ok(c, "drive.mount('/content/drive')");
      assert.match(second.stdout, /^Drive already mounted at \/content\/drive; to attempt to forcibly remount/);
      await checkBothWays(k, c, 'alice', '/content/drive');
    } finally {
      await c.close();
      await k.deleteKernel('alice', id);
    }
  });

  test('the Colab seed example runs as is: mount /Drive, cd .., read Drive/My Drive/... with numpy and GDAL', async (t) => {
    if (needSandbox(t)) return;
    await seedExample(t, k, 'alice');
  });

  test('files.upload: the UI puts the chosen files into the drive folder; the kernel saves them in /content and returns their bytes', async (t) => {
    if (needSandbox(t)) return;
    await uploadCheck(k, 'alice', '/content');
  });

  test('files.download: a /content file is copied into the drive and announced; a missing one raises FileNotFoundError', async (t) => {
    if (needSandbox(t)) return;
    await downloadCheck(k, 'alice');
  });

  test("`!python -c ...` and `!python file.py` run the kernel's Python 3", async (t) => {
    if (needSandbox(t)) return;
    await pythonCommandCheck(k, 'alice');
  });
});

describe('unsandboxed runtimes ([runtimes] sandbox = 0)', { skip }, () => {
  // The hub's own PYTHONPATH reaches unsandboxed kernels after google.colab's folder.
  const extra = fs.mkdtempSync(path.join(os.tmpdir(), 'labbook-colab-pp-'));
  fs.writeFileSync(path.join(extra, 'lb_extra_module.py'), 'HERE = True\n');
  const ctx = useServer({
    name: 'colab-nosandbox',
    users: ['alice'],
    config: '[runtimes]\nsandbox = 0\n\n[profile.cpu]\nmax_per_user = 4\nidle_timeout_s = 0\n',
    // Debian's own PATH: this machine's may have a `python` of its own (pyenv).
    env: { PYTHONPATH: extra, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  const k = kit(ctx);
  after(() => fs.rmSync(extra, { recursive: true, force: true }));

  test("google.colab comes first on PYTHONPATH, the hub's own PYTHONPATH after it", async () => {
    const id = await k.startKernel('alice');
    const c = await k.open('alice', id);
    try {
      const r = await ok(c, `import os, google.colab, lb_extra_module
print(os.environ['PYTHONPATH'].split(':')[1] == ${JSON.stringify(extra)}, google.colab.__file__.endswith('python/google/colab/__init__.py'), lb_extra_module.HERE)
print(os.path.samefile(os.environ['LABBOOK_DRIVE'], ${JSON.stringify(ctx.server.drive('alice'))}))`);
      assert.equal(r.stdout, 'True True True\nTrue\n');
    } finally {
      await c.close();
      await k.deleteKernel('alice', id);
    }
  });

  test('drive.mount at a host folder: Colab messages, both names, the API and the kernel see the same files', async () => {
    // Host paths: a folder of this test's own (not /Drive, which other runs would share).
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'labbook-colab-'));
    const mp = path.join(base, 'Drive');
    const id = await k.startKernel('alice');
    const c = await k.open('alice', id);
    try {
      const m = await ok(c, `from google.colab import drive\ndrive.mount(${JSON.stringify(mp)})`);
      assert.equal(m.stdout, `Mounted at ${mp}\n`);
      await checkBothWays(k, c, 'alice', mp);
      assert.equal(fs.realpathSync(path.join(mp, 'My Drive')), fs.realpathSync(ctx.server.drive('alice')));
      const again = await ok(c, `drive.mount(${JSON.stringify(mp)})`);
      assert.match(again.stdout, /^Drive already mounted at /);
      await ok(c, 'drive.flush_and_unmount()');
      assert.deepEqual(fs.readdirSync(mp), []);
      if (process.getuid() !== 0) {
        const denied = await cell(c, "drive.mount('/Drive-labbook-test')");
        assert.equal(denied.reply.content.ename, 'ValueError');
        assert.match(denied.reply.content.evalue, /cannot be made/);
      }
    } finally {
      await c.close();
      await k.deleteKernel('alice', id);
      fs.rmSync(base, { recursive: true, force: true });
    }
  });

  test('files.upload saves into the working directory (the drive) and returns the bytes', async () => {
    await uploadCheck(k, 'alice', ctx.server.drive('alice'));
  });

  test("`!python -c ...` and `!python file.py` run the kernel's Python 3", async () => {
    await pythonCommandCheck(k, 'alice');
  });

  test('files.download of a file in the drive announces its own path', async () => {
    const id = await k.startKernel('alice');
    const c = await k.open('alice', id);
    try {
      const r = await ok(c, "open('report ü.txt', 'w').write('R')\nfrom google.colab import files\nfiles.download('report ü.txt')");
      const d = r.displays.find((x) => x.data[DOWNLOAD_MIME]);
      assert.ok(d, `a download output: ${JSON.stringify(r.displays)}`);
      assert.deepEqual(d.data[DOWNLOAD_MIME], { path: 'report ü.txt', name: 'report ü.txt' });
    } finally {
      await c.close();
      await k.deleteKernel('alice', id);
    }
  });
});

/** Colab's `!python -c ...` and `!python file.py` (runtimes have only python3): the
 * same interpreter as the kernel's, in the working directory. */
async function pythonCommandCheck(k, user) {
  const id = await k.startKernel(user);
  const c = await k.open(user, id);
  try {
    const r = await ok(c, `import sys
open('lb_hello.py', 'w').write('import sys\\nprint("hello from", sys.argv[1:], sys.version_info[0])\\n')
!python -c "import sys; print('python', sys.version_info[0])"
!python lb_hello.py a 'b c'
!python3 -c "print('python3 too')"`);
    // IPython runs `!` commands on a pty: lines end in \r\n.
    assert.equal(r.stdout.replace(/\r\n/g, "\n"), "python 3\nhello from ['a', 'b c'] 3\npython3 too\n", r.stderr);
  } finally {
    await c.close();
    await k.deleteKernel(user, id);
  }
}

/** The Colab seed example, cell by cell, exactly as tutorials have it. */
async function seedExample(t, k, user) {
  await k.mkdir(user, 'seed');
  await k.putBytes(user, 'seed/a.npy', npyInt32([1, 2, 3, 39]));
  // A tiny GeoTIFF, written by a first kernel with GDAL where the image has python3-gdal.
  const prep = await k.startKernel(user);
  let c = await k.open(user, prep);
  let gdal;
  try {
    const g = await ok(c, `
import os
try:
    from osgeo import gdal
    import numpy as np
except ImportError as e:
    print('GDAL no', e)
else:
    ds = gdal.GetDriverByName('GTiff').Create(os.environ['LABBOOK_DRIVE'] + '/seed/tiny.tif', 3, 2, 1, gdal.GDT_Int16)
    ds.SetGeoTransform((10.0, 1.0, 0.0, 50.0, 0.0, -1.0))
    ds.GetRasterBand(1).WriteArray(np.arange(6, dtype=np.int16).reshape(2, 3) * 7)
    ds = None
    print('GDAL yes')
`);
    gdal = g.stdout.includes('GDAL yes');
    if (!gdal) t.diagnostic(`python3-gdal is missing: the GeoTIFF half is skipped (${g.stdout.trim()})`);
  } finally {
    await c.close();
    await k.deleteKernel(user, prep);
  }
  // A fresh runtime runs the tutorial's cells, unchanged.
  const id = await k.startKernel(user);
  c = await k.open(user, id);
  try {
    const m = await ok(c, "from google.colab import drive\ndrive.mount('/Drive')");
    assert.equal(m.stdout, 'Mounted at /Drive\n');
    const cd = await ok(c, 'cd ..');
    assert.equal(cd.stdout.trim(), '/');
    const np = await ok(c, "import numpy as np\na = np.load('Drive/My Drive/seed/a.npy')\nprint(a.tolist(), a.sum())");
    assert.equal(np.stdout, '[1, 2, 3, 39] 45\n');
    if (gdal) {
      const g = await ok(c, "from osgeo import gdal\nds = gdal.Open('Drive/My Drive/seed/tiny.tif')\nprint(ds.RasterXSize, ds.RasterYSize, ds.GetGeoTransform()[0], ds.ReadAsArray().sum())");
      assert.equal(g.stdout, '3 2 10.0 105\n');
    }
  } finally {
    await c.close();
    await k.deleteKernel(user, id);
  }
}

/** files.upload with this test as the UI; `cwd` is the kernel's working directory. */
async function uploadCheck(k, user, cwd) {
  const id = await k.startKernel(user);
  const c = await k.open(user, id);
  try {
    await ok(c, `import os\nos.chdir(${JSON.stringify(cwd)})\nopen('dup.txt', 'w').write('old')`);
    const files = { 'café ☕.txt': 'bonjour', 'dup.txt': 'new', 'data.bin': Buffer.from([0, 1, 2, 255]) };
    let widget;
    const r = await ok(c, `
from google.colab import files
up = files.upload()
print(sorted((name, len(data)) for name, data in up.items()))
print(up['data.bin'] == bytes([0, 1, 2, 255]), open('café ☕.txt', encoding='utf-8').read(), open('dup (1).txt').read(), open('dup.txt').read())
`, {
      timeoutMs: 60000,
      during: async (msgId) => {
        // What the UI does: find the widget, upload the files into its folder, then .done.
        const d = await c.waitFor((m) => m.header?.msg_type === 'display_data' && m.parent_header?.msg_id === msgId,
          { what: 'the upload widget' });
        widget = d.content;
        const { folder } = d.content.data[UPLOAD_MIME];
        for (const [name, data] of Object.entries(files)) {
          if (typeof data === 'string') await k.putText(user, `${folder}/${name}`, data);
          else await k.putBytes(user, `${folder}/${name}`, data);
        }
        await k.putText(user, `${folder}/.done`, '');
      },
    });
    assert.ok(widget.data[UPLOAD_MIME].id, 'the widget has an id');
    assert.match(widget.data[UPLOAD_MIME].folder, /^\.labbook\/uploads\/[^/]+$/);
    assert.match(widget.data['text/plain'], /Upload widget/);
    assert.match(r.stdout, /Saving café ☕\.txt to café ☕\.txt\n/);
    assert.match(r.stdout, /Saving dup\.txt to dup \(1\)\.txt\n/);
    assert.match(r.stdout, /\[\('café ☕\.txt', 7\), \('data\.bin', 4\), \('dup\.txt', 3\)\]\nTrue bonjour new old\n$/);
    // The folder goes 2 s after the kernel saw .done (the UI's write of it may still be
    // answering).
    await until(async () => (await k.get(user, widget.data[UPLOAD_MIME].folder)).status === 404,
      { timeoutMs: 10000, what: 'the upload folder gone' });
    // Cancelled: an empty dict; timed out: TimeoutError; interrupted: KeyboardInterrupt
    // (and the folder is removed).
    const cancelled = await ok(c, 'print(files.upload())', {
      during: async (msgId) => {
        const d = await c.waitFor((m) => m.header?.msg_type === 'display_data' && m.parent_header?.msg_id === msgId,
          { what: 'the upload widget' });
        await k.putText(user, `${d.content.data[UPLOAD_MIME].folder}/.cancel`, '');
      },
    });
    assert.equal(cancelled.stdout, '{}\n');
    const timed = await cell(c, "os.environ['LABBOOK_UPLOAD_TIMEOUT_S'] = '0.3'\nfiles.upload()");
    assert.equal(timed.reply.content.ename, 'TimeoutError');
    let folder;
    const interrupted = await cell(c, "del os.environ['LABBOOK_UPLOAD_TIMEOUT_S']\nfiles.upload()", {
      during: async (msgId) => {
        const d = await c.waitFor((m) => m.header?.msg_type === 'display_data' && m.parent_header?.msg_id === msgId,
          { what: 'the upload widget' });
        folder = d.content.data[UPLOAD_MIME].folder;
        const r = await api(k.server(), user, 'POST', `/api/kernels/${id}/interrupt`);
        assert.equal(r.status, 204, r.text);
      },
    });
    assert.equal(interrupted.reply.content.ename, 'KeyboardInterrupt');
    assert.equal((await k.get(user, folder)).status, 404, 'an interrupted upload leaves no folder');
  } finally {
    await c.close();
    await k.deleteKernel(user, id);
  }
}

async function downloadCheck(k, user) {
  const id = await k.startKernel(user);
  const c = await k.open(user, id);
  try {
    const r = await ok(c, "open('/content/résultat.csv', 'w', encoding='utf-8').write('x,y\\n1,2\\n')\nfrom google.colab import files\nfiles.download('/content/résultat.csv')");
    const d = r.displays.find((x) => x.data[DOWNLOAD_MIME]);
    assert.ok(d, `a download output: ${JSON.stringify(r.displays)}`);
    const { path: p, name } = d.data[DOWNLOAD_MIME];
    assert.equal(name, 'résultat.csv');
    assert.match(p, /^\.labbook\/downloads\/[^/]+\/résultat\.csv$/);
    assert.match(d.data['text/plain'], /résultat\.csv/);
    const g = await k.get(user, p);
    assert.equal(g.status, 200, g.text);
    assert.equal(g.body.content, 'x,y\n1,2\n');
    // ...and to /files/, which the UI's download uses.
    const files = (q) => fetch(k.server().baseUrl + '/files/' + q.split('/').map(encodeURIComponent).join('/') + '?download=1',
      { headers: { Authorization: `token ${k.server().tokens[user]}` } });
    const f = await files(p);
    assert.equal(f.status, 200);
    assert.equal(await f.text(), 'x,y\n1,2\n');
    assert.match(f.headers.get('content-disposition'), /attachment/);
    fs.mkdirSync(path.join(k.server().drive(user), '.labbook', 'secret'), { recursive: true });
    fs.writeFileSync(path.join(k.server().drive(user), '.labbook', 'secret', 's.txt'), 's');
    assert.equal((await files('.labbook/secret/s.txt')).status, 404, 'the rest of .labbook is not served');
    // Only the transfer folders are open to the API: .labbook stays out of listings,
    // and the rest of it stays hidden.
    const root = await api(k.server(), user, 'GET', '/api/contents');
    assert.ok(!root.body.content.some((e) => e.name.startsWith('.')), 'the root listing shows no .labbook');
    const other = await api(k.server(), user, 'PUT', contentsUrl('.labbook/other.txt'), { type: 'file', format: 'text', content: 'x' });
    assert.equal(other.status, 400, 'other hidden paths stay unwritable');
    const missing = await cell(c, "files.download('/content/nope.txt')");
    assert.equal(missing.reply.content.ename, 'FileNotFoundError');
    assert.equal(missing.reply.content.evalue, 'Cannot find file: /content/nope.txt');
  } finally {
    await c.close();
    await k.deleteKernel(user, id);
  }
}

describe('[runtimes] python_path', { skip }, () => {
  // Another copy of the package, below /tmp: masked in a sandbox, so it must come in
  // through the sandbox's read-only bind.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'labbook-colab-py-'));
  fs.mkdirSync(path.join(dir, 'google', 'colab'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'google', 'colab', '__init__.py'), "MARK = 'custom copy'\n");
  const ctx = useServer({
    name: 'colab-pythonpath',
    users: ['alice'],
    config: `[runtimes]\npython_path = ${dir}\n\n[profile.cpu]\nidle_timeout_s = 0\n`,
  });
  const k = kit(ctx);
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('runtimes import google.colab from the configured folder', async () => {
    const id = await k.startKernel('alice');
    const c = await k.open('alice', id);
    try {
      const r = await ok(c, 'import google.colab\nprint(google.colab.MARK)');
      assert.equal(r.stdout, 'custom copy\n');
    } finally {
      await c.close();
      await k.deleteKernel('alice', id);
    }
  });
});
