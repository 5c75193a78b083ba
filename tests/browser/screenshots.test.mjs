// Screenshots of the home page and of a notebook with outputs, light and dark. They go to
// tests/browser/.tmp/, or to docs/img/ (what the README shows) with
// LABBOOK_SCREENSHOTS=docs (`make screenshots`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useBrowser, notebookJson, waitRun, TMP, DOCS_IMG } from './lib/browser.mjs';

const ctx = useBrowser();
const OUT = process.env.LABBOOK_SCREENSHOTS === 'docs' ? DOCS_IMG : TMP;

const chart = `import math
from IPython.display import SVG
pts = " ".join(f"{x * 4},{100 - 80 * math.exp(-x / 40) * math.cos(x / 6)}" for x in range(150))
SVG(f'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="200"><rect width="600" height="200" fill="#fff"/>'
    f'<polyline points="{pts}" fill="none" stroke="#1a73e8" stroke-width="2"/></svg>')`;
const progress = `import time, sys
for epoch in range(1, 4):
    for step in range(0, 101, 5):
        bar = "=" * (step // 5) + ">" + "." * (20 - step // 5)
        print(f"\\rEpoch {epoch}/3 [{bar}] {step:3d}% - loss: {1 / (epoch * 10 + step / 10):.4f}", end="", flush=True)
        time.sleep(0.01)
    print()`;

test('screenshots of the home page and of a notebook', async () => {
  fs.mkdirSync(OUT, { recursive: true });
  await ctx.api('PUT', '/api/contents/Colab%20Notebooks', { type: 'directory' });
  await ctx.api('PUT', '/api/contents/datasets', { type: 'directory' });
  await ctx.api('PUT', '/api/contents/notes.txt', { type: 'file', format: 'text', content: 'remember the seeds\n' });
  await ctx.api('PUT', '/api/contents/Colab%20Notebooks/Training.ipynb', {
    type: 'notebook', format: 'json', content: notebookJson([
      ['markdown', '# Training a small model\n\nThe loss follows $L(\\theta) = \\frac{1}{n}\\sum_i (y_i - f_\\theta(x_i))^2$.'],
      ['code', progress],
      ['code', chart],
      ['code', 'samples = {"train": 50000, "test": 10000}\nsamples'],
      ['code', 'undefined_name + 1'],
    ]),
  });
  await ctx.api('PUT', '/api/contents/Colab%20Notebooks/Exploration.ipynb', { type: 'notebook', format: 'json', content: notebookJson([['code', '']]) });

  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/Colab%20Notebooks/Training.ipynb`);
  await page.waitForSelector('.cell');
  await page.click('.nb-actions button:has-text("Run all")');
  for (const i of [1, 2, 3, 4]) await waitRun(page, i);
  await page.locator('.cell').nth(0).locator('.katex').first().waitFor();
  await page.locator('.cell').nth(1).click();
  await page.waitForSelector('[data-testid=save-state]:has-text("All changes saved")');
  await page.mouse.move(5, 700);
  await page.screenshot({ path: path.join(OUT, 'notebook.png') });
  // The same in the dark theme (the top bar's switch).
  await page.locator('[data-testid=theme]').selectOption('dark');
  await page.mouse.move(5, 700);
  await page.screenshot({ path: path.join(OUT, 'notebook-dark.png') });
  await page.locator('[data-testid=theme]').selectOption('system');

  await page.click('a.logo');
  await page.waitForSelector('tr.item[data-name="Colab Notebooks"]');
  await page.screenshot({ path: path.join(OUT, 'home.png') });
  assert.ok(fs.statSync(path.join(OUT, 'home.png')).size > 1000);
  assert.ok(fs.statSync(path.join(OUT, 'notebook.png')).size > 1000);
  assert.ok(fs.statSync(path.join(OUT, 'notebook-dark.png')).size > 1000);
});
