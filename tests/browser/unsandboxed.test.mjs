// A server that cannot sandbox runtimes says so to its users, on every page, as it
// does in its log; a sandboxed one shows no such warning (basics and the rest run
// there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser } from './lib/browser.mjs';

const ctx = useBrowser({ config: '[runtimes]\nsandbox = 0\n' });

test('an unsandboxed server warns on the home page and in a notebook', async () => {
  const me = await ctx.api('GET', '/api/me');
  assert.equal(me.labbook.sandboxed, false);
  const page = await ctx.newPage();
  const banner = page.locator('[data-testid=not-sandboxed]');
  await banner.waitFor();
  assert.match(await banner.innerText(), /not sandboxed/);
  await page.goto(`${ctx.server.baseUrl}/notebooks/Untitled.ipynb`);
  await page.locator('[data-testid=not-sandboxed]').waitFor();
});
