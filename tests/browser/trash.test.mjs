// The drive's trash in the UI: Delete shows "Moved to trash" with Undo, which brings
// the item back; the Trash view lists what was deleted, restores it, deletes it
// forever, and empties the trash after a confirm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useBrowser } from './lib/browser.mjs';

const ctx = useBrowser();
const row = (page, name) => page.locator(`tr.item[data-name="${name}"]`);
const onDisk = (p) => path.join(ctx.server.drive('alice'), p);

test('Delete, then Undo in the toast, brings the file back', async () => {
  await ctx.api('PUT', '/api/contents/notes.txt', { type: 'file', format: 'text', content: 'keep me' });
  const page = await ctx.newPage();
  await row(page, 'notes.txt').waitFor();
  await row(page, 'notes.txt').locator('button[title=Delete]').click();
  await page.click('.modal button:has-text("Delete")');
  await row(page, 'notes.txt').waitFor({ state: 'detached' });
  assert.ok(!fs.existsSync(onDisk('notes.txt')));
  const t = page.locator('.toast:has-text("Moved to trash")');
  await t.waitFor();
  await t.locator('button:has-text("Undo")').click();
  await row(page, 'notes.txt').waitFor();
  assert.equal(fs.readFileSync(onDisk('notes.txt'), 'utf8'), 'keep me');
  assert.deepEqual((await ctx.api('GET', '/api/drive/trash')).items, []);
});

test('the Trash view: restore, delete forever, empty trash', async () => {
  for (const n of ['a.txt', 'b.txt', 'c.txt']) {
    await ctx.api('PUT', `/api/contents/${n}`, { type: 'file', format: 'text', content: n });
    await ctx.api('DELETE', `/api/contents/${n}`);
  }
  const page = await ctx.newPage();
  await page.click('[data-testid=trash-link]');
  await page.waitForURL(/\/trash$/);
  for (const n of ['a.txt', 'b.txt', 'c.txt']) await row(page, n).waitFor();
  assert.match(await page.locator('.trash-note').innerText(), /deleted forever after 30 days/);

  await row(page, 'a.txt').locator('button:has-text("Restore")').click();
  await row(page, 'a.txt').waitFor({ state: 'detached' });
  await page.locator('.toast:has-text("Restored \\"a.txt\\" to My Drive")').waitFor();
  assert.equal(fs.readFileSync(onDisk('a.txt'), 'utf8'), 'a.txt');

  await row(page, 'b.txt').locator('button:has-text("Delete forever")').click();
  await page.click('.modal button:has-text("Delete forever")');
  await row(page, 'b.txt').waitFor({ state: 'detached' });
  assert.deepEqual((await ctx.api('GET', '/api/drive/trash')).items.map((i) => i.name), ['c.txt']);

  await page.click('[data-testid=empty-trash]');
  await page.click('.modal button:has-text("Cancel")');
  await row(page, 'c.txt').waitFor();
  await page.click('[data-testid=empty-trash]');
  await page.click('.modal button:has-text("Empty trash")');
  await row(page, 'c.txt').waitFor({ state: 'detached' });
  assert.match(await page.locator('.trash-note').innerText(), /The trash is empty/);
  assert.deepEqual((await ctx.api('GET', '/api/drive/trash')).items, []);
  await page.click('a:has-text("My Drive")');
  await row(page, 'a.txt').waitFor();
});
