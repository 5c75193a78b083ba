// Sign in, the drive, a new notebook, running cells and what their outputs look like,
// autosave. Each test acts as a user in a real chromium against a real hub.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useBrowser, typeInCell, waitRun, outputText, DOCS_IMG } from './lib/browser.mjs';

const ctx = useBrowser();

test('the sign-in page signs in with a password and shows the drive', async () => {
  const page = await ctx.newPage({ signIn: false });
  await page.goto(ctx.server.baseUrl + '/');
  assert.match(page.url(), /\/login/);
  await page.fill('input[name=username]', 'alice');
  await page.fill('input[name=password]', 'wrong');
  await page.click('form[method=post] button[type=submit]');
  assert.match(await page.locator('[role=alert]').innerText(), /Wrong user name or password/);
  await page.fill('input[name=username]', 'alice');
  await page.fill('input[name=password]', 'correct horse battery staple');
  await page.click('form[method=post] button[type=submit]');
  await page.waitForSelector('table.files');
  assert.equal(await page.locator('header .user').innerText(), 'alice');
  // A sandboxed server (the suite runs as root) shows no sandbox warning.
  assert.equal(await page.locator('[data-testid=not-sandboxed]').count(), 0);
  assert.match(await page.locator('.crumbs').innerText(), /My Drive/);
});

test('a token link signs in too', async () => {
  const page = await ctx.newPage({ signIn: false });
  await page.goto(`${ctx.server.baseUrl}/login?token=${ctx.server.tokens.alice}`);
  await page.waitForSelector('table.files');
  assert.equal(await page.locator('header .user').innerText(), 'alice');
});

test('a Jupyter-style link (/tree?token=T) signs in, loads the page and drops the token', async () => {
  const page = await ctx.newPage({ signIn: false });
  await page.goto(`${ctx.server.baseUrl}/tree?token=${ctx.server.tokens.alice}`);
  await page.waitForSelector('table.files');
  assert.equal(await page.locator('header .user').innerText(), 'alice');
  assert.ok(!page.url().includes('token='), `the address still holds the token: ${page.url()}`);
  // A mistyped link says so rather than showing a blank form.
  const bad = await ctx.newPage({ signIn: false });
  await bad.goto(`${ctx.server.baseUrl}/tree?token=mistyped`);
  assert.match(await bad.locator('[role=alert]').innerText(), /sign-in link is not valid/);
});

test('new notebook: made in "Colab Notebooks", runs a cell, shows its output', async () => {
  const page = await ctx.newPage();
  await page.click('[data-testid=new-notebook]');
  await page.waitForURL(/\/notebooks\/Colab%20Notebooks\/Untitled/);
  assert.ok(fs.existsSync(path.join(ctx.server.drive('alice'), 'Colab Notebooks', 'Untitled.ipynb')));
  await typeInCell(page, 0, 'print("hello from labbook")\n6 * 7');
  await page.keyboard.press('Control+Enter');
  await waitRun(page, 0);
  const out = await outputText(page, 0);
  assert.match(out, /hello from labbook/);
  assert.match(out, /42/);
  assert.match(await page.locator('.cell').nth(0).locator('.count').innerText(), /\[1\]/);
  assert.match(await page.locator('[data-testid=runtime-status]').innerText(), /Connected|Busy/);
});

test('the sign-in page also takes a token, and returns to the page asked for', async () => {
  await ctx.api('PUT', '/api/contents/back.ipynb', { type: 'notebook', format: 'json', content: { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [] } });
  const page = await ctx.newPage({ signIn: false });
  await page.goto(`${ctx.server.baseUrl}/notebooks/back.ipynb`);
  assert.match(page.url(), /\/login\?next=/);
  await page.click('summary:has-text("Sign in with a token")');
  await page.fill('input[name=token]', ctx.server.tokens.alice);
  await page.click('button:has-text("Sign in with token")');
  await page.waitForURL(/\/notebooks\/back\.ipynb$/);
  await page.waitForSelector('.cell');
});
