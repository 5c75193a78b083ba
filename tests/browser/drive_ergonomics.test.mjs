// The drive as Google Drive and JupyterLab's file browser behave (issue 13, "Drive
// ergonomics"): natural order, Shift/Ctrl selection with Delete and F2, the context
// menu's Move through the folder picker, text files edited in the page and saved
// with Ctrl+S, image previews, and the hint to send one archive for many files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useBrowser } from './lib/browser.mjs';

const ctx = useBrowser();

const row = (page, name) => page.locator(`tr.item[data-name="${name}"]`);
const put = (p, model) => ctx.api('PUT', '/api/contents/' + p.split('/').map(encodeURIComponent).join('/'), model);
const mkdir = (p) => put(p, { type: 'directory' });
const text = (p, content) => put(p, { type: 'file', format: 'text', content });
const names = async (dir) => (await ctx.api('GET', '/api/contents/' + dir)).content.map((x) => x.name).sort();

/** A page showing folder `dir` of alice's drive. */
async function openFolder(dir) {
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/tree/${dir}`);
  await page.locator('tr.item').first().waitFor();
  return page;
}

test('names sort naturally, case-insensitively, folders first', async () => {
  await mkdir('sort');
  for (const d of ['Folder10', 'Folder9', 'data']) await mkdir(`sort/${d}`);
  for (const f of ['Untitled10.txt', 'Untitled2.txt', 'untitled1.txt', 'B.txt', 'a.txt']) await text(`sort/${f}`, '');
  const page = await openFolder('sort');
  const order = await page.locator('tr.item').evaluateAll((rows) => rows.map((r) => r.dataset.name));
  assert.deepEqual(order, ['data', 'Folder9', 'Folder10', 'a.txt', 'B.txt', 'untitled1.txt', 'Untitled2.txt', 'Untitled10.txt']);
});

test('Shift+click selects a range, Ctrl+click adds one, Delete removes exactly those', async () => {
  await mkdir('sel');
  for (let i = 1; i <= 6; i++) await text(`sel/f${i}.txt`, `file ${i}\n`);
  const page = await openFolder('sel');
  await row(page, 'f2.txt').locator('td.mod').click();
  await row(page, 'f4.txt').locator('td.mod').click({ modifiers: ['Shift'] });
  await row(page, 'f6.txt').locator('td.mod').click({ modifiers: ['Control'] });
  const selected = await page.locator('tr.item.selected').evaluateAll((rows) => rows.map((r) => r.dataset.name));
  assert.deepEqual(selected, ['f2.txt', 'f3.txt', 'f4.txt', 'f6.txt']);
  await page.keyboard.press('Delete');
  const modal = page.locator('.modal', { hasText: 'Delete these 4 items' });
  await modal.waitFor({ timeout: 5000 });
  await modal.locator('button:has-text("Delete")').click();
  await row(page, 'f6.txt').waitFor({ state: 'detached' });
  assert.deepEqual(await names('sel'), ['f1.txt', 'f5.txt']);
  assert.deepEqual(await page.locator('tr.item').evaluateAll((rows) => rows.map((r) => r.dataset.name)), ['f1.txt', 'f5.txt']);
});

test('F2 renames the selected file', async () => {
  await mkdir('ren');
  await text('ren/draft.txt', 'words\n');
  await text('ren/other.txt', '');
  const page = await openFolder('ren');
  await row(page, 'draft.txt').locator('td.size').click();
  await page.keyboard.press('F2');
  const input = page.locator('.modal input');
  await input.waitFor({ timeout: 5000 });
  assert.equal(await input.inputValue(), 'draft.txt');
  await input.fill('final.txt');
  await input.press('Enter');
  await row(page, 'final.txt').waitFor();
  assert.deepEqual(await names('ren'), ['final.txt', 'other.txt']);
  assert.equal((await ctx.api('GET', '/api/contents/ren/final.txt')).content, 'words\n');
});

test('the context menu\'s Move picks a folder in a picker and moves the file there', async () => {
  await mkdir('mv');
  await mkdir('mv/dest');
  await mkdir('mv/dest/sub');
  await mkdir('mv/other');
  await text('mv/model.py', 'x = 1\n');
  const page = await openFolder('mv');
  await row(page, 'model.py').click({ button: 'right' });
  const menu = page.locator('.ctx-menu');
  await menu.waitFor({ timeout: 5000 });
  assert.deepEqual(await menu.locator('button').allInnerTexts(), ['Open', 'Rename', 'Move', 'Download', 'Delete']);
  await menu.locator('button:has-text("Move")').click();
  const picker = page.locator('.modal', { hasText: 'Move "model.py"' });
  // The folder the file is in now: moving there would do nothing.
  await picker.locator('.picker-folder[data-name="dest"]').click();
  await picker.locator('.picker-folder[data-name="sub"]').click();
  await picker.locator('.picker-list li.empty').waitFor();
  assert.match(await picker.locator('.picker-crumbs').innerText(), /My Drive \/ mv \/ dest \/ sub/);
  await picker.locator('button:has-text("Move here")').click();
  await row(page, 'model.py').waitFor({ state: 'detached' });
  assert.equal((await ctx.api('GET', '/api/contents/mv/dest/sub/model.py')).content, 'x = 1\n');
  assert.deepEqual(await names('mv'), ['dest', 'other']);

  // A folder cannot be moved into itself: the picker does not offer it.
  await row(page, 'dest').click({ button: 'right' });
  await menu.locator('button:has-text("Move")').click();
  assert.equal(await page.locator('.modal .picker-folder[data-name="dest"]').isDisabled(), true);
  assert.equal(await page.locator('.modal button:has-text("Move here")').isDisabled(), true);
  await page.keyboard.press('Escape');
});

test('train.py opens in an editor in the page; Ctrl+S saves it byte for byte', async () => {
  await mkdir('code');
  const before = 'import torch\n\ndef train(lr=0.1):\n\tprint("λ =", lr)  # ünïcode\n';
  await text('code/train.py', before);
  await text('code/win.txt', 'one\r\ntwo\r\n');
  const page = await openFolder('code');
  await row(page, 'train.py').dblclick();
  await page.waitForURL(/\/edit\/code\/train\.py$/);
  const editor = page.locator('.file-editor .cm-content');
  await editor.waitFor();
  assert.match(await editor.innerText(), /def train\(lr=0\.1\):/);
  assert.ok(await page.locator('[data-testid=dirty]').isHidden(), 'clean when opened');
  await editor.click();
  await page.keyboard.press('Control+End');
  await page.keyboard.insertText('train(lr=0.01)\n');
  await page.locator('[data-testid=dirty]').waitFor();
  await page.keyboard.press('Control+S');
  await page.locator('[data-testid=edit-status]:has-text("Saved")').waitFor();
  assert.ok(await page.locator('[data-testid=dirty]').isHidden(), 'clean after saving');
  const after = before + 'train(lr=0.01)\n';
  assert.equal((await ctx.api('GET', '/api/contents/code/train.py?format=text')).content, after);
  assert.deepEqual(fs.readFileSync(path.join(ctx.server.drive('alice'), 'code', 'train.py')), Buffer.from(after));

  // A Windows file keeps its line ends.
  await page.goto(`${ctx.server.baseUrl}/edit/code/win.txt`);
  await page.locator('.file-editor .cm-content').click();
  await page.keyboard.press('Control+End');
  await page.keyboard.insertText('three');
  await page.keyboard.press('Control+S');
  await page.locator('[data-testid=edit-status]:has-text("Saved")').waitFor();
  assert.deepEqual(fs.readFileSync(path.join(ctx.server.drive('alice'), 'code', 'win.txt')), Buffer.from('one\r\ntwo\r\nthree'));
});

test('a file too big or not text is not opened in the editor', async () => {
  await mkdir('refuse');
  await text('refuse/huge.csv', 'a,b\n'.repeat((6 << 20) / 4));
  await put('refuse/blob.txt', { type: 'file', format: 'base64', content: Buffer.from([0xff, 0xfe, 0x00, 0x81, 0x90]).toString('base64') });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/edit/refuse/huge.csv`);
  assert.match(await page.locator('[data-testid=file-refused]').innerText(), /6\.0 MiB: files over 5\.0 MiB are not opened/);
  await page.goto(`${ctx.server.baseUrl}/edit/refuse/blob.txt`);
  assert.match(await page.locator('[data-testid=file-refused]').innerText(), /not a text file/);
  assert.equal(await page.locator('.cm-content').count(), 0);
});

test('images open in a preview at their own size', async () => {
  await mkdir('img');
  const page = await ctx.newPage();
  const png = await page.evaluate(() => {
    const c = document.createElement('canvas');
    c.width = 37;
    c.height = 23;
    const g = c.getContext('2d');
    g.fillStyle = '#1a73e8';
    g.fillRect(0, 0, 37, 23);
    return c.toDataURL('image/png').split(',')[1];
  });
  await put('img/plot.png', { type: 'file', format: 'base64', content: png });
  await text('img/logo.svg', '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect width="40" height="30" fill="red"/></svg>');
  await page.goto(`${ctx.server.baseUrl}/tree/img`);
  await row(page, 'plot.png').dblclick();
  const img = page.locator('.modal [data-testid=preview-img]');
  await img.waitFor({ timeout: 5000 });
  await page.locator('[data-testid=preview-caption]:has-text("37 × 23 px")').waitFor();
  assert.deepEqual(await img.evaluate((i) => [i.naturalWidth, i.naturalHeight]), [37, 23]);
  await page.click('.modal button:has-text("Close")');

  await row(page, 'logo.svg').click({ button: 'right' });
  await page.click('.ctx-menu button:has-text("Open")');
  await page.locator('[data-testid=preview-caption]:has-text("40 × 30 px")').waitFor();
  assert.deepEqual(await img.evaluate((i) => [i.naturalWidth, i.naturalHeight]), [40, 30]);
});

test('dropping 60 files suggests one archive, and uploads them all', async () => {
  await mkdir('many');
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/tree/many`);
  await page.locator('td.empty').waitFor();
  const files = Array.from({ length: 60 }, (_, i) => ({ name: `img_${i}.txt`, mimeType: 'text/plain', buffer: Buffer.from(`${i}\n`) }));
  await page.setInputFiles('[data-testid=upload-input]', files);
  const hint = page.locator('[data-testid=many-files-hint]');
  await hint.waitFor({ timeout: 5000 });
  assert.match(await hint.innerText(), /60 files/);
  assert.match(await hint.innerText(), /one archive/);
  await row(page, 'img_59.txt').waitFor({ timeout: 120000 });
  assert.equal((await names('many')).length, 60);

  // A handful of files is no reason for the hint.
  await page.click('[data-testid=many-files-hint] button:has-text("Dismiss")');
  await page.setInputFiles('[data-testid=upload-input]', files.slice(0, 3).map((f) => ({ ...f, name: 'few_' + f.name })));
  await row(page, 'few_img_2.txt').waitFor();
  assert.equal(await hint.count(), 0);
});
