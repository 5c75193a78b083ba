// The Secrets panel (key icon): add a secret, reveal it, toggle Notebook access, and a
// cell reading it with google.colab.userdata gets NotebookAccessError before and the
// value after; delete it (docs/colab.md, "userdata").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, notebookJson, waitRun, outputText } from './lib/browser.mjs';

const ctx = useBrowser();

const CODE = "from google.colab import userdata\ntry:\n    print('got', userdata.get('MY_TOKEN'))\nexcept Exception as e:\n    print(type(e).__name__)";

async function runAndRead(page, want) {
  await page.click('.nb-actions button:has-text("Run all")');
  await page.waitForFunction((w) => document.querySelector('.cell .outputs')?.innerText.trim() === w, want, { timeout: 60000 });
  await waitRun(page, 0);
  return (await outputText(page, 0)).trim();
}

test('Secrets panel: add, reveal, Notebook access toggle read by a cell, delete', async () => {
  await ctx.api('PUT', '/api/contents/secrets.ipynb', { type: 'notebook', format: 'json', content: notebookJson([['code', CODE]]) });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/secrets.ipynb`);
  await page.waitForSelector('.cell');

  await page.click('button[aria-label="Secrets"]');
  await page.waitForSelector('.nb-side h3:has-text("Secrets")');
  await page.click('button.secrets-add');
  await page.fill('.secret.editing .secret-name-input', 'MY_TOKEN');
  await page.fill('.secret.editing .secret-value-input', 'tok-12345');
  await page.uncheck('.secret.editing .secret-access');
  await page.click('.secret.editing button:has-text("Save")');
  const row = page.locator('.secret[data-name="MY_TOKEN"]');
  await row.waitFor();
  // Masked until revealed.
  assert.equal(await row.locator('.secret-value').getAttribute('type'), 'password');
  assert.notEqual(await row.locator('.secret-value').inputValue(), 'tok-12345');
  await row.locator('button[aria-label="Show MY_TOKEN"]').click();
  await page.waitForFunction(() => document.querySelector('.secret[data-name="MY_TOKEN"] .secret-value').value === 'tok-12345');
  assert.equal(await row.locator('.secret-value').getAttribute('type'), 'text');

  assert.equal(await runAndRead(page, 'NotebookAccessError'), 'NotebookAccessError');
  await row.locator('.secret-access').check();
  // The toggle is saved: the hub says so for this notebook.
  await page.waitForFunction(async () => {
    const r = await fetch('/api/secrets?notebook=secrets.ipynb');
    return (await r.json()).some((s) => s.name === 'MY_TOKEN' && s.notebook_access);
  });
  assert.equal(await runAndRead(page, 'got tok-12345'), 'got tok-12345');

  // Reopened, the panel shows the toggle on.
  await page.reload();
  await page.waitForSelector('.cell');
  await page.click('button[aria-label="Secrets"]');
  await page.locator('.secret[data-name="MY_TOKEN"]').waitFor();
  assert.equal(await page.locator('.secret[data-name="MY_TOKEN"] .secret-access').isChecked(), true);

  // Delete (confirmed): gone from the panel, and the cell finds no such secret.
  await page.click('button[aria-label="Delete MY_TOKEN"]');
  await page.click('.modal button:has-text("Delete")');
  await page.waitForSelector('.secret[data-name="MY_TOKEN"]', { state: 'detached' });
  assert.equal(await runAndRead(page, 'SecretNotFoundError'), 'SecretNotFoundError');
});
