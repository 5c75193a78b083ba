// The drive: upload (and read the file from a cell), new folder, rename, move,
// delete, recent notebooks. drive_ergonomics.test.mjs has selection, keys, the
// context menu, the folder picker, the text editor and the image preview.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useBrowser, notebookJson, typeInCell, waitRun, outputText, TMP } from './lib/browser.mjs';

const ctx = useBrowser();

const row = (page, name) => page.locator(`tr.item[data-name="${name}"]`);

test('upload a file with the button, then read it from a cell', async () => {
  const page = await ctx.newPage();
  const local = path.join(TMP, 'measurements.csv');
  fs.writeFileSync(local, 'x,y\n1,2\n3,4\n');
  await page.setInputFiles('[data-testid=upload-input]', local);
  await row(page, 'measurements.csv').waitFor();
  assert.equal(fs.readFileSync(path.join(ctx.server.drive('alice'), 'measurements.csv'), 'utf8'), 'x,y\n1,2\n3,4\n');

  await ctx.api('PUT', '/api/contents/read.ipynb', { type: 'notebook', format: 'json', content: notebookJson([['code', '']]) });
  await page.goto(`${ctx.server.baseUrl}/notebooks/read.ipynb`);
  // The drive is /content/drive/MyDrive in a sandboxed runtime, the working folder otherwise.
  await typeInCell(page, 0, 'import os\np = "/content/drive/MyDrive/measurements.csv"\nprint(open(p if os.path.exists(p) else "measurements.csv").read().split()[-1])');
  await page.keyboard.press('Control+Enter');
  await waitRun(page, 0);
  assert.match(await outputText(page, 0), /^3,4/);
});

test('drag and drop uploads a large file with progress', async () => {
  const page = await ctx.newPage();
  // 9 MiB, through tus (transfer.test.mjs has the rest).
  await page.evaluate(() => {
    const bytes = new Uint8Array(9 << 20);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 251;
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], 'big.bin'));
    const drive = document.querySelector('section.drive');
    drive.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    drive.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  await page.locator('.upload-row progress').first().waitFor();
  await row(page, 'big.bin').waitFor({ timeout: 60000 });
  const st = fs.statSync(path.join(ctx.server.drive('alice'), 'big.bin'));
  assert.equal(st.size, 9 << 20);
  const data = fs.readFileSync(path.join(ctx.server.drive('alice'), 'big.bin'));
  assert.equal(data[(9 << 20) - 1], ((9 << 20) - 1) % 251);
});

test('new folder, rename, move into it, delete; recent notebooks', async () => {
  await ctx.api('PUT', '/api/contents/notes.ipynb', { type: 'notebook', format: 'json', content: notebookJson([['markdown', '# Notes']]) });
  const page = await ctx.newPage();
  await page.click('button:has-text("New folder")');
  await page.fill('.modal input', 'Project');
  await page.click('.modal button:has-text("OK")');
  await row(page, 'Project').waitFor();

  await row(page, 'notes.ipynb').hover();
  await row(page, 'notes.ipynb').locator('button[title=Rename]').click();
  await page.fill('.modal input', 'paper.ipynb');
  await page.click('.modal button:has-text("OK")');
  await row(page, 'paper.ipynb').waitFor();

  await row(page, 'paper.ipynb').locator('button[title=Move]').click();
  await page.click('.modal .picker-folder[data-name="Project"]');
  await page.locator('.modal .picker-list li.empty').waitFor();
  await page.click('.modal button:has-text("Move here")');
  await row(page, 'paper.ipynb').waitFor({ state: 'detached' });
  assert.ok(fs.existsSync(path.join(ctx.server.drive('alice'), 'Project', 'paper.ipynb')));

  await row(page, 'Project').locator('a').click();
  await page.waitForURL(/\/tree\/Project$/);
  await row(page, 'paper.ipynb').locator('a').click();
  await page.waitForURL(/\/notebooks\/Project\/paper\.ipynb$/);
  await page.locator('.cell h1:has-text("Notes")').waitFor();
  await page.click('a.logo');
  await page.waitForSelector('.recent');
  assert.match(await page.locator('.recent').innerText(), /Project\/paper\.ipynb/);

  await row(page, 'Project').locator('button[title=Delete]').click();
  await page.click('.modal button:has-text("Delete")');
  await row(page, 'Project').waitFor({ state: 'detached' });
  assert.ok(!fs.existsSync(path.join(ctx.server.drive('alice'), 'Project')));
});
