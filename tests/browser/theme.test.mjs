// How the UI looks (issue 13, item 16): a dark theme that follows the system, with a
// switch that overrides it and is remembered; and a narrow window (600 px) where the
// drive's side bar folds behind a button and nothing is cut off or wider than the window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { useBrowser, notebookJson, TMP } from './lib/browser.mjs';

const ctx = useBrowser();

/** A notebook with code, a text cell and saved outputs (a stream, an error, HTML). */
async function putNotebook(name) {
  const nb = notebookJson([
    ['markdown', '# Results\n\nSome *text* and `code`.'],
    ['code', 'import math\nfor i in range(3):\n    print("row", i, math.pi)  # a comment'],
  ]);
  nb.cells[1].outputs = [
    { output_type: 'stream', name: 'stdout', text: ['row 0 3.14\n', 'row 1 3.14\n'] },
    { output_type: 'error', ename: 'ValueError', evalue: 'bad', traceback: ['\u001b[0;31mValueError\u001b[0m: bad'] },
    { output_type: 'display_data', metadata: {}, data: { 'text/html': ['<table><tr><td>html cell</td></tr></table>'], 'text/plain': ['table'] } },
  ];
  nb.cells[1].execution_count = 1;
  await ctx.api('PUT', `/api/contents/${name}`, { type: 'notebook', format: 'json', content: nb });
}

/** The WCAG contrast ratio of an element's text against the colour behind it. */
function contrast(page, selector) {
  return page.locator(selector).first().evaluate((el) => {
    const rgb = (s) => (s.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    let bg = null;
    for (let e = el; e && !bg; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0.5) bg = c;
    }
    bg = bg || rgb(getComputedStyle(document.documentElement).backgroundColor);
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg);
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  });
}

/** The page's background: its luminance (0 black, 1 white). */
function pageLuminance(page) {
  return page.evaluate(() => {
    const [r, g, b] = getComputedStyle(document.documentElement).backgroundColor.match(/\d+/g).map(Number);
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
  });
}

test('dark theme: follows the system, the switch overrides it, and the choice survives a reload', async () => {
  await putNotebook('dark.ipynb');
  const page = await ctx.newPage({ colorScheme: 'dark' });
  assert.ok(await pageLuminance(page) < 0.2, 'a dark system gets a dark drive');
  assert.equal(await page.locator('[data-testid=theme]').inputValue(), 'system');

  await page.goto(`${ctx.server.baseUrl}/notebooks/dark.ipynb`);
  await page.locator('.cell .out-error').waitFor();
  assert.ok(await pageLuminance(page) < 0.2);
  // Code, its highlighting, text cells and outputs stay readable.
  for (const sel of ['.cell.code .input pre', '.cell.code .input .tok-keyword', '.cell.code .input .tok-string', '.cell.code .input .tok-comment',
    '.cell.text .rendered p', 'pre.out-stream', 'pre.out-error', 'pre.out-error .ansi-red-fg', '.menu-btn', '[data-testid=connect]']) {
    const c = await contrast(page, sel);
    assert.ok(c >= 4.5, `${sel}: contrast ${c.toFixed(2)} on the dark page`);
  }
  // HTML outputs (in their sandboxed frame) get light text too.
  const frame = page.frameLocator('iframe.out-frame');
  await frame.locator('td', { hasText: 'html cell' }).waitFor();
  const frameText = await frame.locator('td').evaluate((e) => getComputedStyle(e).color);
  assert.ok(frameText.match(/\d+/g).map(Number)[0] > 180, `frame text ${frameText}`);
  // The editor: its text and cursor are light.
  await page.locator('.cell.code .input').click();
  await page.locator('.cm-content').waitFor();
  assert.ok(await contrast(page, '.cm-line') >= 4.5);
  await page.screenshot({ path: path.join(TMP, 'theme-dark.png') });

  // The switch overrides the system, at once and after a reload.
  await page.keyboard.press('Escape');
  await page.locator('[data-testid=theme]').selectOption('light');
  assert.ok(await pageLuminance(page) > 0.8, 'Light on a dark system');
  await page.reload();
  await page.locator('.cell .out-error').waitFor();
  assert.ok(await pageLuminance(page) > 0.8, 'still Light after a reload');
  assert.equal(await page.locator('[data-testid=theme]').inputValue(), 'light');
  assert.ok(await contrast(page, 'pre.out-stream') >= 4.5);
  await page.locator('[data-testid=theme]').selectOption('system');
  assert.ok(await pageLuminance(page) < 0.2, 'back to the system\'s');

  // Dark on a light system, remembered too.
  const light = await ctx.newPage({ colorScheme: 'light' });
  assert.ok(await pageLuminance(light) > 0.8);
  await light.locator('[data-testid=theme]').selectOption('dark');
  assert.ok(await pageLuminance(light) < 0.2);
  await light.reload();
  await light.waitForSelector('header.top');
  assert.ok(await pageLuminance(light) < 0.2, 'still Dark after a reload');
});

/** What sticks out of the window sideways: the document's own width, and each of the
 * named elements that is visible. */
function overflow(page, selector) {
  return page.evaluate((sel) => {
    const w = window.innerWidth;
    const out = [];
    if (document.scrollingElement.scrollWidth > w) out.push(`document ${document.scrollingElement.scrollWidth} > ${w}`);
    for (const e of document.querySelectorAll(sel)) {
      const r = e.getBoundingClientRect();
      if (!r.width) continue;
      if (r.left < 0 || r.right > w) out.push(`${e.className || e.tagName} "${(e.textContent || '').trim().slice(0, 20)}" ${Math.round(r.left)}..${Math.round(r.right)}`);
    }
    return out;
  }, selector);
}

test('narrow window (600 px): the drive\'s side bar folds away and nothing is cut off', async () => {
  await ctx.api('PUT', '/api/contents/a%20folder%20with%20a%20rather%20long%20name%20for%20a%20narrow%20window', { type: 'directory' });
  await putNotebook('narrow.ipynb');
  const page = await ctx.newPage({ viewport: { width: 600, height: 800 } });
  await page.waitForSelector('tr.item[data-name="narrow.ipynb"]');
  assert.equal(await page.locator('.home .side').isVisible(), false, 'the side bar is folded away');
  assert.deepEqual(await overflow(page, 'header.top *, .main-head *, table.files button'), []);
  // Its button opens it over the list, inside the window; a click elsewhere closes it.
  await page.click('[data-testid=side-toggle]');
  await page.locator('[data-testid=new-notebook]').waitFor();
  assert.deepEqual(await overflow(page, '.side, .side button'), []);
  await page.mouse.click(590, 600);
  assert.equal(await page.locator('.home .side').isVisible(), false);

  await page.goto(`${ctx.server.baseUrl}/notebooks/narrow.ipynb`);
  await page.locator('.cell .out-error').waitFor();
  const bar = 'header.top *, .menu-btn, .nb-actions button, [data-testid=connect], .cell .body';
  assert.deepEqual(await overflow(page, bar), []);
  // Every menu opens inside the window.
  for (const btn of await page.locator('.menu-btn').all()) {
    await btn.click();
    assert.deepEqual(await overflow(page, '.menu-pop:not([hidden])'), [], await btn.innerText());
  }
  await page.keyboard.press('Escape');
  await page.locator('.nb-scroll').click({ position: { x: 5, y: 400 } });
  // The files panel opens over the cells, not beside them.
  await page.click('.nb-actions button[title=Files]');
  await page.locator('.nb-side').waitFor();
  assert.deepEqual(await overflow(page, '.nb-side, ' + bar), []);
  await page.screenshot({ path: path.join(TMP, 'narrow-notebook.png') });
});
