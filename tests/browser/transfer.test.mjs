// Moving files in and out through the UI: resumable (tus) uploads with progress,
// extract on arrival, the extract action, downloads of files and folders (zips),
// and google.colab's files.upload() / files.download() widgets in a notebook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { useBrowser, notebookJson, typeInCell, waitRun, outputText, TMP, PASSWORD } from './lib/browser.mjs';

// A quota, so that a refusal can be seen; the uploads here stay well below it.
const ctx = useBrowser({ config: '[drive]\nquota_mb = 64\n' });

const row = (page, name) => page.locator(`tr.item[data-name="${name}"]`);
const onDisk = (...p) => path.join(ctx.server.drive('alice'), ...p);

/** Every tus request the page makes: [method, url, status]. */
function watchTus(page) {
  const seen = [];
  page.on('response', (r) => {
    if (new URL(r.url()).pathname.startsWith('/api/uploads/')) seen.push([r.request().method(), r.url(), r.status()]);
  });
  return seen;
}

/** A tar.gz of `files` ({name: text}) made with tar(1); returns its path. */
function tarGz(name, files) {
  const dir = fs.mkdtempSync(path.join(TMP, 'arc-'));
  for (const [n, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, n)), { recursive: true });
    fs.writeFileSync(path.join(dir, n), text);
  }
  const out = path.join(TMP, name);
  execFileSync('tar', ['-czf', out, '-C', dir, ...Object.keys(files)]);
  fs.rmSync(dir, { recursive: true, force: true });
  return out;
}

/** The names in a zip file, from its central directory. */
function zipNames(buf) {
  const names = [];
  let eocd = buf.length - 22;
  while (eocd >= 0 && buf.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  assert.ok(eocd >= 0, 'a zip end record');
  const count = buf.readUInt16LE(eocd + 10);
  let at = buf.readUInt32LE(eocd + 16);
  for (let i = 0; i < count; i++) {
    assert.equal(buf.readUInt32LE(at), 0x02014b50);
    const n = buf.readUInt16LE(at + 28), m = buf.readUInt16LE(at + 30), k = buf.readUInt16LE(at + 32);
    names.push(buf.subarray(at + 46, at + 46 + n).toString('utf8'));
    at += 46 + n + m + k;
  }
  return names;
}

test('upload with the button goes through tus, with per-file and total progress', async () => {
  const page = await ctx.newPage();
  const tus = watchTus(page);
  const a = path.join(TMP, 'données é.bin');
  const b = path.join(TMP, 'second.csv');
  const bytes = Buffer.alloc(3 << 20);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) % 253;
  fs.writeFileSync(a, bytes);
  fs.writeFileSync(b, 'x,y\n1,2\n');
  await page.setInputFiles('[data-testid=upload-input]', [a, b]);
  await page.locator('.upload-total progress').waitFor();
  await row(page, 'données é.bin').waitFor();
  await row(page, 'second.csv').waitFor();
  assert.ok(fs.readFileSync(onDisk('données é.bin')).equals(bytes), 'the bytes on disk are the file');
  assert.equal(fs.readFileSync(onDisk('second.csv'), 'utf8'), 'x,y\n1,2\n');
  assert.ok(tus.some(([m, , s]) => m === 'POST' && s === 201), `a tus creation: ${JSON.stringify(tus)}`);
  assert.ok(tus.some(([m, , s]) => m === 'PATCH' && s === 204), 'a tus PATCH');
  // The fingerprints are gone from localStorage once the uploads are done.
  assert.equal(await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('tus::')).length), 0);
});

/** A TCP proxy in front of the hub that logs the tus requests going through it
 * (method and Upload-Offset) and can cut the connection of a PATCH after `cutAfter`
 * bytes of it: a real dropped connection, the hub holding part of the body. */
async function cuttingProxy() {
  const px = { log: [], cutAfter: 0, cuts: 0, sockets: new Set() };
  const target = new URL(ctx.server.baseUrl);
  px.server = net.createServer((client) => {
    const up = net.connect(Number(target.port), target.hostname);
    px.sockets.add(client).add(up);
    let patchBytes = -1;
    client.on('data', (chunk) => {
      const text = chunk.toString('latin1');
      const m = /(POST|PATCH|HEAD) \/api\/uploads\/\S* HTTP\/1\.1\r\n[\s\S]*?\r\n\r\n/.exec(text);
      if (m) {
        const off = /\r\nupload-offset: *(\d+)/i.exec(m[0]);
        px.log.push([m[1], off ? Number(off[1]) : null]);
        patchBytes = m[1] === 'PATCH' ? 0 : -1;
      }
      if (patchBytes >= 0) {
        patchBytes += chunk.length;
        if (px.cutAfter && patchBytes > px.cutAfter) {
          px.cutAfter = 0;
          px.cuts++;
          up.write(chunk.subarray(0, chunk.length >> 1), () => { client.destroy(); up.destroy(); });
          return;
        }
      }
      up.write(chunk);
    });
    up.on('data', (d) => client.write(d));
    const end = () => { client.destroy(); up.destroy(); px.sockets.delete(client); px.sockets.delete(up); };
    client.on('close', end).on('error', end);
    up.on('close', end).on('error', end);
  });
  await new Promise((r) => px.server.listen(0, '127.0.0.1', r));
  px.url = `http://127.0.0.1:${px.server.address().port}`;
  px.close = () => { for (const s of px.sockets) s.destroy(); px.server.close(); };
  return px;
}

test('a dropped connection mid-upload resumes from the hub\'s offset, and so does a reload', async () => {
  const px = await cuttingProxy();
  try {
    const page = await ctx.newPage({ signIn: false });
    await page.goto(px.url + '/');
    await page.fill('input[name=username]', 'alice');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForSelector('header.top');
    const size = 24 << 20;
    const local = path.join(TMP, 'resume.bin');
    const bytes = Buffer.alloc(size);
    for (let i = 0; i < size; i += 512) bytes[i] = (i >> 9) & 0xff;
    fs.writeFileSync(local, bytes);

    // The connection drops 6 MiB into the PATCH: tus-js-client asks the hub where it
    // is (HEAD) and sends the rest from there.
    px.cutAfter = 6 << 20;
    await page.setInputFiles('[data-testid=upload-input]', local);
    await row(page, 'resume.bin').waitFor({ timeout: 60000 });
    assert.equal(px.cuts, 1, 'the connection was cut');
    assert.ok(fs.readFileSync(onDisk('resume.bin')).equals(bytes), 'the file is whole');
    const patches = px.log.filter(([m]) => m === 'PATCH');
    assert.ok(px.log.some(([m]) => m === 'HEAD'), JSON.stringify(px.log));
    assert.ok(patches.length >= 2 && patches.at(-1)[1] > 0, `the last PATCH resumed past 0: ${JSON.stringify(px.log)}`);

    // A reload in the middle: choosing the same file again resumes the same upload
    // (its URL was kept in localStorage), without a new creation.
    fs.rmSync(onDisk('resume.bin'));
    px.log.length = 0;
    px.cutAfter = 6 << 20;
    await page.setInputFiles('[data-testid=upload-input]', local);
    await page.waitForFunction(() => Object.keys(localStorage).some((k) => k.startsWith('tus::')));
    while (!px.cuts || px.cuts < 2) await new Promise((r) => setTimeout(r, 20));
    await page.reload();
    await page.waitForSelector('header.top');
    const mark = px.log.length;
    await page.setInputFiles('[data-testid=upload-input]', local);
    await row(page, 'resume.bin').waitFor({ timeout: 60000 });
    assert.ok(fs.readFileSync(onDisk('resume.bin')).equals(bytes), 'the file is whole');
    const after = px.log.slice(mark);
    assert.ok(!after.some(([m]) => m === 'POST'), `no new upload after the reload: ${JSON.stringify(px.log)}`);
    assert.equal(after[0][0], 'HEAD', JSON.stringify(px.log));
    assert.ok(after.some(([m, off]) => m === 'PATCH' && off > 0), `resumed past 0: ${JSON.stringify(px.log)}`);
  } finally {
    px.close();
  }
});

test('a refused upload says why (quota)', async () => {
  const page = await ctx.newPage();
  await page.evaluate(() => {
    // A File larger than the 64 MiB quota, without the bytes: only the creation
    // (Upload-Length) is sent before the refusal.
    const big = new File([new Uint8Array(8)], 'huge.bin');
    Object.defineProperty(big, 'size', { value: 100 << 20 });
    const dt = new DataTransfer();
    dt.items.add(big);
    const drive = document.querySelector('section.drive');
    drive.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await page.locator('.upload-row.failed').waitFor();
  const msg = await page.locator('.upload-row.failed').innerText();
  assert.match(msg, /free of your 64\.0 MiB quota/, msg);
  await page.locator('.toast').filter({ hasText: 'huge.bin' }).waitFor();
});

test('extract on arrival: an archive uploaded with the box ticked is unpacked, not stored', async () => {
  const page = await ctx.newPage();
  await ctx.api('PUT', '/api/contents/arrive', { type: 'directory' });
  await page.goto(`${ctx.server.baseUrl}/tree/arrive`);
  await page.check('[data-testid=extract-on-arrival]');
  const arc = tarGz('set.tar.gz', { 'set/a.txt': 'alpha', 'set/sub/b.txt': 'beta', 'top.txt': 'top' });
  await page.setInputFiles('[data-testid=upload-input]', arc);
  await row(page, 'set').waitFor({ timeout: 30000 });
  await row(page, 'top.txt').waitFor();
  assert.equal(await row(page, 'set.tar.gz').count(), 0, 'the archive itself is not stored');
  assert.equal(fs.readFileSync(onDisk('arrive', 'set', 'sub', 'b.txt'), 'utf8'), 'beta');
  assert.ok(!fs.existsSync(onDisk('arrive', 'set.tar.gz')));
  // The choice is remembered; untick it for the other tests.
  await page.reload();
  assert.ok(await page.isChecked('[data-testid=extract-on-arrival]'));
  await page.uncheck('[data-testid=extract-on-arrival]');
});

test('extract action on an archive in the drive: progress, then its files', async () => {
  const page = await ctx.newPage();
  const files = {};
  for (let i = 0; i < 300; i++) files[`many/f${String(i).padStart(3, '0')}.txt`] = `file ${i}\n`.repeat(200);
  const arc = tarGz('many.tgz', files);
  fs.copyFileSync(arc, onDisk('many.tgz'));
  await page.reload();
  await row(page, 'many.tgz').hover();
  await row(page, 'many.tgz').locator('button[title=Extract]').click();
  await page.fill('.modal input', 'unpacked');
  await page.click('.modal button:has-text("OK")');
  await page.locator('.extract-row').waitFor();
  await row(page, 'unpacked').waitFor({ timeout: 30000 });
  await page.locator('.extract-row.done').waitFor();
  assert.match(await page.locator('.extract-row.done').innerText(), /300 entries/);
  assert.equal(fs.readdirSync(onDisk('unpacked', 'many')).length, 300);

  // A failure shows the hub's message.
  fs.writeFileSync(onDisk('broken.zip'), 'this is not a zip');
  await page.reload();
  await row(page, 'broken.zip').locator('button[title=Extract]').click();
  await page.click('.modal button:has-text("OK")');
  await page.locator('.extract-row.failed, .toast').first().waitFor();
  assert.match(await page.locator('.toast').last().innerText(), /broken\.zip/);
});

test('downloads: a file from /files/, a folder as a zip', async () => {
  fs.mkdirSync(onDisk('dl', 'inner'), { recursive: true });
  fs.writeFileSync(onDisk('dl', 'report ü.txt'), 'report body');
  fs.writeFileSync(onDisk('dl', 'inner', 'n.txt'), 'nested');
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/tree/dl`);
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));
  const [d1] = await Promise.all([page.waitForEvent('download'), row(page, 'report ü.txt').locator('button[title=Download]').click()]);
  assert.equal(d1.suggestedFilename(), 'report ü.txt');
  assert.equal(fs.readFileSync(await d1.path(), 'utf8'), 'report body');
  assert.match(d1.url(), /\/files\/dl\/report%20%C3%BC\.txt\?download=1$/);
  assert.ok(!urls.some((u) => /\/api\/contents\/dl\/report/.test(u)), 'not through the contents API');

  await page.goto(`${ctx.server.baseUrl}/tree`);
  const [d2] = await Promise.all([page.waitForEvent('download'), row(page, 'dl').locator('button[title="Download as zip"]').click()]);
  assert.equal(d2.suggestedFilename(), 'dl.zip');
  assert.match(d2.url(), /\/api\/drive\/zip\/dl$/);
  const names = zipNames(fs.readFileSync(await d2.path()));
  assert.ok(names.includes('dl/report ü.txt') && names.includes('dl/inner/n.txt'), names.join(', '));
});

test('google.colab files.upload(): the widget uploads the chosen files and the cell gets them', async () => {
  await ctx.api('PUT', '/api/contents/up.ipynb', { type: 'notebook', format: 'json', content: notebookJson([['code', ''], ['code', '']]) });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/up.ipynb`);
  await typeInCell(page, 0, 'from google.colab import files\nup = files.upload()\nprint(up)');
  await page.keyboard.press('Control+Enter');
  const input = page.locator('.cell').nth(0).locator('[data-testid=colab-upload-input]');
  await input.waitFor({ state: 'attached', timeout: 60000 });
  const local = path.join(TMP, 'hello é.txt');
  fs.writeFileSync(local, 'hello from the browser');
  await input.setInputFiles(local);
  await waitRun(page, 0);
  const out = await outputText(page, 0);
  assert.match(out, /Saving hello é\.txt to /);
  assert.match(out, /\{'hello é\.txt': b'hello from the browser'\}/);
  await page.locator('.colab-upload.done').waitFor();
  // The file is in the runtime's working folder (/content in a sandbox).
  await typeInCell(page, 1, "import os\nprint(os.getcwd(), open('hello é.txt').read())");
  await page.keyboard.press('Control+Enter');
  await waitRun(page, 1);
  assert.match(await outputText(page, 1), /hello from the browser/);

  // Reopened from the file, the widget is inert: no picker, nothing runs again.
  await page.click('a.logo');
  await page.waitForSelector('.files');
  await page.waitForTimeout(500);
  await page.goto(`${ctx.server.baseUrl}/notebooks/up.ipynb`);
  await page.locator('.colab-upload.inert').waitFor();
  assert.equal(await page.locator('[data-testid=colab-upload-input]').count(), 0);
});

test('google.colab files.upload(): Cancel upload returns {}', async () => {
  await ctx.api('PUT', '/api/contents/cancel.ipynb', { type: 'notebook', format: 'json', content: notebookJson([['code', '']]) });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/cancel.ipynb`);
  await typeInCell(page, 0, 'from google.colab import files\nprint("got", files.upload())');
  await page.keyboard.press('Control+Enter');
  await page.locator('.colab-upload.active button:has-text("Cancel upload")').click({ timeout: 60000 });
  await waitRun(page, 0);
  assert.match(await outputText(page, 0), /got \{\}/);
});

test('google.colab files.download(): the browser downloads the file once; reopened, just a link', async () => {
  await ctx.api('PUT', '/api/contents/down.ipynb', { type: 'notebook', format: 'json', content: notebookJson([['code', '']]) });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/down.ipynb`);
  await typeInCell(page, 0, "open('x.txt', 'w').write('downloaded bytes')\nfrom google.colab import files\nfiles.download('x.txt')");
  const downloads = [];
  page.on('download', (d) => downloads.push(d));
  const [d] = await Promise.all([page.waitForEvent('download', { timeout: 60000 }), page.keyboard.press('Control+Enter')]);
  assert.equal(d.suggestedFilename(), 'x.txt');
  assert.equal(fs.readFileSync(await d.path(), 'utf8'), 'downloaded bytes');
  await waitRun(page, 0);
  await page.locator('.colab-download:has-text("Downloaded x.txt") a').waitFor();

  await page.click('a.logo');
  await page.waitForSelector('.files');
  await page.waitForTimeout(500);
  await page.goto(`${ctx.server.baseUrl}/notebooks/down.ipynb`);
  await page.locator('.colab-download a:has-text("x.txt")').waitFor();
  await page.waitForTimeout(1000);
  assert.equal(downloads.length, 1, 'no download when the notebook is reopened');
  assert.doesNotMatch(await page.locator('.colab-download').innerText(), /Downloaded/);
});
