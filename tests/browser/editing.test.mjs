// Editing a notebook: Colab's keyboard shortcuts, autosave and reload, an edit made
// elsewhere detected before saving, edits kept while the server is unreachable, and
// a file that is not a notebook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useBrowser, notebookJson, typeInCell, waitRun, outputText } from './lib/browser.mjs';

const ctx = useBrowser();

async function openNotebook(name, cells) {
  await ctx.api('PUT', `/api/contents/${encodeURIComponent(name)}`, { type: 'notebook', format: 'json', content: notebookJson(cells) });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/${encodeURIComponent(name)}`);
  await page.waitForSelector('.cell');
  return page;
}

const cellKinds = (page) => page.$$eval('.cell', (cs) => cs.map((c) => (c.classList.contains('code') ? 'code' : 'text')));
const saved = (page) => page.waitForSelector('[data-testid=save-state]:has-text("All changes saved")');

test('keyboard shortcuts: Ctrl+Enter, Shift+Enter, Alt+Enter, Ctrl+M B/A/D/M/Y/Z', async () => {
  const page = await openNotebook('keys.ipynb', [['code', '']]);
  await typeInCell(page, 0, '1 + 1');
  await page.keyboard.press('Control+Enter');
  await waitRun(page, 0);
  assert.match(await outputText(page, 0), /^2/);
  assert.equal((await cellKinds(page)).length, 1, 'Ctrl+Enter stays on the cell');

  await page.keyboard.press('Shift+Enter'); // runs again, and adds a cell below (it was the last)
  await page.waitForFunction(() => document.querySelectorAll('.cell').length === 2);
  await page.keyboard.insertText('2 + 2');
  await page.keyboard.press('Alt+Enter'); // runs and inserts a cell below
  await page.waitForFunction(() => document.querySelectorAll('.cell').length === 3);
  await waitRun(page, 1);
  assert.match(await outputText(page, 1), /^4/);

  await page.keyboard.insertText('third');
  await page.keyboard.press('Control+M');
  await page.keyboard.press('B');
  await page.waitForFunction(() => document.querySelectorAll('.cell').length === 4);
  await page.keyboard.press('Control+M');
  await page.keyboard.press('A');
  await page.waitForFunction(() => document.querySelectorAll('.cell').length === 5);
  await page.keyboard.insertText('# A heading');
  await page.keyboard.press('Control+M');
  await page.keyboard.press('M');
  assert.deepEqual(await cellKinds(page), ['code', 'code', 'code', 'text', 'code']);
  await page.keyboard.press('Control+M');
  await page.keyboard.press('Y');
  assert.deepEqual(await cellKinds(page), ['code', 'code', 'code', 'code', 'code']);
  await page.keyboard.press('Control+M');
  await page.keyboard.press('M');
  await page.keyboard.press('Control+M');
  await page.keyboard.press('D');
  await page.waitForFunction(() => document.querySelectorAll('.cell').length === 4);
  await page.keyboard.press('Control+M');
  await page.keyboard.press('Z');
  await page.waitForFunction(() => document.querySelectorAll('.cell').length === 5);
  assert.deepEqual(await cellKinds(page), ['code', 'code', 'code', 'text', 'code'], 'the deleted text cell is back');
  assert.match(await page.locator('.cell').nth(3).innerText(), /A heading/);

  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+M');
  await page.keyboard.press('H');
  const help = page.locator('.modal', { hasText: 'Keyboard shortcuts' });
  await help.waitFor();
  assert.match(await help.innerText(), /Ctrl\+M D\s+Delete the cell/);
});

test('autosave: an edit is saved without asking, and a reload shows it with its outputs', async () => {
  const page = await openNotebook('autosave.ipynb', [['code', '']]);
  await typeInCell(page, 0, 'print("saved by itself")');
  await page.keyboard.press('Control+Enter');
  await waitRun(page, 0);
  await saved(page);
  const disk = JSON.parse(fs.readFileSync(path.join(ctx.server.drive('alice'), 'autosave.ipynb'), 'utf8'));
  assert.equal([].concat(disk.cells[0].source).join(''), 'print("saved by itself")');
  await page.reload();
  await page.waitForSelector('.cell');
  assert.match(await page.locator('.cell').nth(0).locator('.input').innerText(), /saved by itself/);
  assert.match(await outputText(page, 0), /saved by itself/);
});

test('a notebook changed elsewhere is detected before saving, and the user chooses', async () => {
  const page = await openNotebook('conflict.ipynb', [['code', 'original = 1']]);
  // Another program (VS Code, JupyterLab) saves a different version through the API.
  await new Promise((r) => setTimeout(r, 1100)); // a later modification time
  await ctx.api('PUT', '/api/contents/conflict.ipynb', { type: 'notebook', format: 'json', content: notebookJson([['code', 'from_elsewhere = 2']]) });
  await typeInCell(page, 0, 'mine = 3');
  const dialog = page.locator('.modal', { hasText: 'This notebook changed elsewhere' });
  await dialog.waitFor();
  // Nothing was overwritten while the question is open.
  const disk = () => JSON.parse(fs.readFileSync(path.join(ctx.server.drive('alice'), 'conflict.ipynb'), 'utf8'));
  assert.equal([].concat(disk().cells[0].source).join(''), 'from_elsewhere = 2');
  await dialog.locator('button:has-text("Load the file")').click();
  await page.waitForFunction(() => /from_elsewhere/.test(document.querySelector('.cell .input').textContent));

  // And choosing to keep one's own version overwrites it.
  await new Promise((r) => setTimeout(r, 1100));
  await ctx.api('PUT', '/api/contents/conflict.ipynb', { type: 'notebook', format: 'json', content: notebookJson([['code', 'again_elsewhere = 4']]) });
  await typeInCell(page, 0, 'mine_again = 5');
  await dialog.waitFor();
  await dialog.locator('button:has-text("Keep my version")').click();
  await saved(page);
  assert.equal([].concat(disk().cells[0].source).join(''), 'mine_again = 5');
});

test('edits made while the server cannot be reached are kept and saved when it returns', async () => {
  const page = await openNotebook('offline.ipynb', [['code', 'before = 1']]);
  await page.context().route('**/api/**', (route) => route.abort('internetdisconnected'));
  await typeInCell(page, 0, 'typed_offline = 1');
  await page.waitForSelector('[data-testid=save-state]:has-text("Offline")', { timeout: 15000 });
  // Even a reload while offline keeps them (this browser's storage).
  await page.context().unroute('**/api/**');
  await page.reload();
  await page.waitForSelector('.cell');
  await saved(page);
  const disk = JSON.parse(fs.readFileSync(path.join(ctx.server.drive('alice'), 'offline.ipynb'), 'utf8'));
  assert.equal([].concat(disk.cells[0].source).join(''), 'typed_offline = 1');
});

test('a file that is not a notebook opens with a clear message and is left alone', async () => {
  const file = path.join(ctx.server.drive('alice'), 'broken.ipynb');
  fs.writeFileSync(file, '{"this is": not json');
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/broken.ipynb`);
  const alert = page.locator('.broken[role=alert]');
  await alert.waitFor();
  assert.match(await alert.innerText(), /cannot be opened/i);
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(fs.readFileSync(file, 'utf8'), '{"this is": not json');
});

test('completion from the kernel, and help on Shift+Tab', async () => {
  const page = await openNotebook('complete.ipynb', [['code', 'import os']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  await page.keyboard.press('Alt+Enter');
  await page.waitForFunction(() => document.querySelectorAll('.cell').length === 2);
  await page.keyboard.insertText('os.pat');
  await page.keyboard.press('Control+Space');
  const option = page.locator('.cm-tooltip-autocomplete li', { hasText: 'path' }).first();
  await option.waitFor();
  // CodeMirror ignores Enter for 75 ms after the list opens (interactionDelay).
  await page.waitForTimeout(200);
  await page.keyboard.press('Enter');
  assert.match(await page.locator('.cell').nth(1).locator('.cm-content').innerText(), /^os\.path/);
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText('len(');
  await page.keyboard.press('Shift+Tab');
  const tip = page.locator('.inspect-tip');
  await tip.waitFor();
  assert.match(await tip.innerText(), /Return the number of items/);
});

test('the title renames the notebook; cells can be copied and pasted', async () => {
  const page = await openNotebook('first name.ipynb', [['code', 'print("copied")'], ['markdown', 'text']]);
  await page.fill('input.title', 'second name');
  await page.press('input.title', 'Enter');
  await page.waitForURL(/\/notebooks\/second%20name\.ipynb$/);
  assert.ok(fs.existsSync(path.join(ctx.server.drive('alice'), 'second name.ipynb')));
  assert.ok(!fs.existsSync(path.join(ctx.server.drive('alice'), 'first name.ipynb')));

  await page.locator('.cell').nth(0).click();
  await page.locator('.cell').nth(0).locator('button[title="Copy cell"]').click();
  await page.locator('.cell').nth(1).click();
  await page.click('.menu-btn:has-text("Edit")');
  await page.click('.menu-pop button:has-text("Paste cell below")');
  await page.waitForFunction(() => document.querySelectorAll('.cell').length === 3);
  assert.match(await page.locator('.cell').nth(2).innerText(), /print\("copied"\)/);
  await saved(page);
  const nb = await ctx.api('GET', '/api/contents/second%20name.ipynb');
  assert.equal(nb.content.cells.length, 3);
  assert.notEqual(nb.content.cells[2].id, nb.content.cells[0].id, 'a pasted cell gets an id of its own');
});

test('a reload while a cell prints: the cell goes on showing its output, nothing twice, nothing lost', async () => {
  const page = await openNotebook('reload.ipynb', [['code', 'import time\nfor i in range(8):\n    print("step", i, flush=True)\n    time.sleep(0.4)']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await page.waitForFunction(() => /step 2/.test(document.querySelector('.cell .outputs').textContent));
  await page.reload();
  await page.waitForSelector('.cell');
  await page.waitForFunction(() => /step 7/.test(document.querySelector('.cell .outputs').textContent), null, { timeout: 30000 });
  await waitRun(page, 0, 30000);
  const lines = (await outputText(page, 0)).trim().split('\n');
  assert.deepEqual(lines, ['step 0', 'step 1', 'step 2', 'step 3', 'step 4', 'step 5', 'step 6', 'step 7']);
  await saved(page);
});

test('reopening a notebook shows what a cell printed while it was closed', async () => {
  const page = await openNotebook('closed.ipynb', [['code', 'import time\nprint("started", flush=True)\ntime.sleep(2)\nprint("finished while closed", flush=True)']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await page.waitForFunction(() => /started/.test(document.querySelector('.cell .outputs').textContent));
  await page.goto(`${ctx.server.baseUrl}/tree`);
  await new Promise((r) => setTimeout(r, 5000)); // the run ends, and the hub records it into the file
  await page.goto(`${ctx.server.baseUrl}/notebooks/closed.ipynb`);
  await page.waitForFunction(() => /finished while closed/.test(document.querySelector('.cell .outputs')?.textContent || ''), null, { timeout: 15000 });
  assert.match(await outputText(page, 0), /started\s+finished while closed/);
});

test('outputs written into the file meanwhile (the hub\'s recorder) are kept, without asking', async () => {
  const page = await openNotebook('recorded.ipynb', [['code', 'print("ran while away")'], ['code', '']]);
  await new Promise((r) => setTimeout(r, 1100));
  const nb = notebookJson([['code', 'print("ran while away")'], ['code', '']]);
  nb.cells[0].outputs = [{ output_type: 'stream', name: 'stdout', text: 'ran while away\n' }];
  nb.cells[0].execution_count = 7;
  await ctx.api('PUT', '/api/contents/recorded.ipynb', { type: 'notebook', format: 'json', content: nb });
  await typeInCell(page, 1, 'my_edit = 1');
  await saved(page);
  assert.equal(await page.locator('.modal').count(), 0, 'no question asked');
  const disk = JSON.parse(fs.readFileSync(path.join(ctx.server.drive('alice'), 'recorded.ipynb'), 'utf8'));
  assert.equal([].concat(disk.cells[1].source).join(''), 'my_edit = 1');
  assert.equal([].concat(disk.cells[0].outputs[0].text).join(''), 'ran while away\n');
  assert.equal(disk.cells[0].execution_count, 7);
  assert.match(await outputText(page, 0), /ran while away/);
});
