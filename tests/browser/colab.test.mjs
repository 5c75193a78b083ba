// Colab's notebook, as its users expect it (issue 13): coming back to a running
// notebook from another browser shows the run going on; a factory reset leaves the
// page idle; a lost runtime is announced where the user looks; completion popups go
// away; each cell's last run time is kept in the notebook.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, notebookJson, waitRun, outputText } from './lib/browser.mjs';

// A memory limit, for the out-of-memory test (ipykernel itself needs about 100 MiB).
const ctx = useBrowser({ config: '[profile.cpu]\nmemory_mb = 512\n' });

async function putNotebook(name, cells) {
  await ctx.api('PUT', `/api/contents/${name}`, { type: 'notebook', format: 'json', content: notebookJson(cells) });
}

async function openNotebook(name, cells) {
  if (cells) await putNotebook(name, cells);
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/${name}`);
  await page.waitForSelector('.cell');
  return page;
}

/** The last "tick N" cell i shows. */
async function lastTick(page, i) {
  const m = [...(await outputText(page, i)).matchAll(/tick (\d+)/g)];
  return m.length ? Number(m[m.length - 1][1]) : -1;
}

const TICKS = 'import time\nfor i in range(10000):\n    print("tick", i, flush=True)\n    time.sleep(0.2)';

test('a notebook reopened in another browser mid-run shows the cell running, its output so far and what follows; its interrupt shows', async () => {
  const a = await openNotebook('reopen.ipynb', [['code', 'x = 1'], ['code', TICKS]]);
  const t0 = Date.now();
  await a.locator('.cell').nth(1).locator('.run').click();
  await a.waitForFunction(() => /tick 3/.test(document.querySelectorAll('.cell')[1].querySelector('.outputs').textContent));

  // Another browser (no storage shared with the first) while the first still shows it.
  const b = await openNotebook('reopen.ipynb');
  await b.waitForSelector('.cell.running', { timeout: 15000 });
  assert.equal(await b.locator('.cell').nth(1).evaluate((el) => el.classList.contains('running')), true, 'the running cell is the one shown running');
  assert.equal(await b.locator('.cell').nth(0).evaluate((el) => el.classList.contains('running')), false);
  assert.match(await b.locator('.cell').nth(1).locator('.count').innerText(), /\[\*\]/);
  const seen = await lastTick(b, 1);
  assert.ok(seen >= 3, `the output so far is shown: tick ${seen}`);
  await b.waitForFunction((n) => {
    const m = [...document.querySelectorAll('.cell')[1].querySelector('.outputs').textContent.matchAll(/tick (\d+)/g)];
    return m.length && Number(m[m.length - 1][1]) >= n + 3;
  }, seen, { timeout: 15000 });
  const text = await outputText(b, 1);
  assert.equal((text.match(/tick 2\n/g) || []).length, 1, 'nothing twice');

  // The first browser goes away; a third one opens it.
  await a.context().close();
  const c = await openNotebook('reopen.ipynb');
  await c.waitForSelector('.cell.running', { timeout: 15000 });
  const from = await lastTick(c, 1);
  await c.waitForFunction((n) => {
    const m = [...document.querySelectorAll('.cell')[1].querySelector('.outputs').textContent.matchAll(/tick (\d+)/g)];
    return m.length && Number(m[m.length - 1][1]) >= n + 2;
  }, from, { timeout: 15000 });

  // Interrupted from there: the traceback shows, the cell ends.
  await c.click('button[aria-label=Interrupt]');
  await c.waitForFunction(() => /KeyboardInterrupt/.test(document.querySelectorAll('.cell')[1].querySelector('.outputs').textContent), null, { timeout: 15000 });
  await waitRun(c, 1, 15000);
  // Its duration counts from when it started, not from when this browser joined.
  const took = parseFloat(await c.locator('.cell').nth(1).locator('.time').innerText());
  assert.ok(took >= (Date.now() - t0) / 1000 - 3, `ran for ${took} s of about ${(Date.now() - t0) / 1000}`);
  await b.waitForFunction(() => /KeyboardInterrupt/.test(document.querySelectorAll('.cell')[1].querySelector('.outputs').textContent), null, { timeout: 15000 });
  await waitRun(b, 1, 15000);
});

/** Factory-resets the runtime through the menu, then checks that the page is idle and
 * stays so, and that cell `next` runs. */
async function resetAndCheck(page, next) {
  await page.click('.menu-btn:has-text("Runtime")');
  await page.click('.menu-pop button:has-text("Factory reset runtime")');
  await page.click('.modal button:has-text("Reset")');
  await page.locator('.toast', { hasText: 'The runtime was reset' }).waitFor({ timeout: 60000 });
  await page.waitForSelector('[data-testid=runtime-status][data-state=idle]', { timeout: 30000 });
  // It stays so: nothing spins, nothing says it is connecting.
  await page.waitForTimeout(3000);
  assert.equal(await page.locator('.cell.running, .cell.queued').count(), 0, 'no cell shows as running');
  assert.doesNotMatch(await page.locator('.cell').nth(0).locator('.count').innerText(), /\*/);
  assert.equal(await page.locator('[data-testid=runtime-status]').getAttribute('data-state'), 'idle');
  await page.locator('.cell').nth(next).locator('.run').click();
  await waitRun(page, next);
  assert.match(await outputText(page, next), /after reset/);
  assert.equal(await page.locator('.cell.running, .cell.queued').count(), 0);
}

test('factory reset after an interrupt: the page is idle and clean, and the next run works', async () => {
  const page = await openNotebook('reset-interrupt.ipynb', [['code', TICKS], ['code', 'print("after reset")']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await page.waitForFunction(() => /tick 2/.test(document.querySelector('.cell .outputs').textContent));
  await page.click('button[aria-label=Interrupt]');
  await page.waitForFunction(() => /KeyboardInterrupt/.test(document.querySelector('.cell .outputs').textContent), null, { timeout: 15000 });
  await waitRun(page, 0, 15000);
  await resetAndCheck(page, 1);
});

test('factory reset while a cell runs: the cell stops showing as running, even as the old kernel prints on', async () => {
  const page = await openNotebook('reset-running.ipynb', [['code', TICKS], ['code', 'print("after reset")']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await page.waitForFunction(() => /tick 2/.test(document.querySelector('.cell .outputs').textContent));
  await resetAndCheck(page, 1);
});

test('a cell that uses all the memory: the crash is said until dismissed, on the cell too, and the runtime comes back', async () => {
  const page = await openNotebook('oom.ipynb', [['code', 'x = b"x" * (2 << 30)'], ['code', 'print("after the crash")']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  const banner = page.locator('[data-testid=banner]');
  await banner.waitFor({ timeout: 60000 });
  assert.match(await banner.innerText(), /Your session crashed after using all available RAM/);
  assert.match(await page.locator('.cell').nth(0).locator('.cell-note').innerText(), /used all the memory/);
  await page.waitForSelector('[data-testid=runtime-status][data-state=idle]', { timeout: 30000 });
  // Still there long after a toast would have gone.
  await page.waitForTimeout(6000);
  assert.equal(await banner.isVisible(), true);
  assert.equal(await page.locator('.cell.running, .cell.queued').count(), 0);
  await banner.locator('button:has-text("Dismiss")').click();
  assert.equal(await banner.isVisible(), false);
  await page.locator('.cell').nth(1).locator('.run').click();
  await waitRun(page, 1);
  assert.match(await outputText(page, 1), /after the crash/);
  // The note goes when the cell runs again.
  await page.locator('.cell').nth(0).locator('.input').click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText('print("small")');
  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  assert.equal(await page.locator('.cell').nth(0).locator('.cell-note').isVisible(), false);
});

test('a runtime reclaimed while the notebook was closed is announced on coming back', async () => {
  const page = await openNotebook('reclaimed.ipynb', [['code', 'y = 2\nprint(y)']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  await page.goto(`${ctx.server.baseUrl}/tree`);
  await page.waitForSelector('header.top');
  // Reclaimed meanwhile (as idle culling does).
  for (const k of await ctx.api('GET', '/api/kernels')) await ctx.api('DELETE', `/api/kernels/${k.id}`);
  await page.goto(`${ctx.server.baseUrl}/notebooks/reclaimed.ipynb`);
  const banner = page.locator('[data-testid=banner]');
  await banner.waitFor({ timeout: 15000 });
  assert.match(await banner.innerText(), /Runtime disconnected/);
  assert.match(await outputText(page, 0), /2/);
  await page.waitForTimeout(6000);
  assert.equal(await banner.isVisible(), true);
  await banner.locator('button:has-text("Connect")').click();
  await page.waitForSelector('[data-testid=runtime-status][data-state=idle]', { timeout: 60000 });
  assert.equal(await banner.isVisible(), false);
});

test('completion popups go away: a name typed and run at once leaves none, and Escape or a click elsewhere closes one', async () => {
  const page = await openNotebook('popups.ipynb', [['code', 'import os\nimport time'], ['code', ''], ['code', ''], ['code', '']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  const popups = page.locator('.cm-tooltip-autocomplete');
  // Typed and run at once, in two cells, with Shift+Enter and Ctrl+Enter: the kernel
  // answers the completion only after the run.
  for (const [i, code, key] of [[1, 'time.sleep(1); os.path', 'Shift+Enter'], [2, 'time.sleep(1); os.getcwd', 'Control+Enter']]) {
    await page.locator('.cell').nth(i).locator('.input').click();
    await page.locator('.cell').nth(i).locator('.cm-content').waitFor();
    await page.keyboard.type(code);
    await page.keyboard.press(key);
  }
  await waitRun(page, 1);
  await waitRun(page, 2);
  await page.waitForTimeout(1500);
  assert.equal(await popups.count(), 0, 'no popup over the outputs');

  // One asked for: Escape closes it (and leaves the editor as it was).
  await page.locator('.cell').nth(3).locator('.input').click();
  await page.locator('.cell').nth(3).locator('.cm-content').waitFor();
  await page.keyboard.type('os.pat');
  await page.keyboard.press('Control+Space');
  await popups.first().waitFor();
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.querySelector('.cm-tooltip-autocomplete'));
  // Asked for again, then a click on another cell closes it.
  await page.keyboard.press('Control+Space');
  await popups.first().waitFor();
  await page.locator('.cell').nth(0).click({ position: { x: 5, y: 5 } });
  await page.waitForFunction(() => !document.querySelector('.cm-tooltip-autocomplete'));
});

test("each cell's last run time and duration are kept in the notebook (Colab's executionInfo) and shown after a reload", async () => {
  const page = await openNotebook('runinfo.ipynb', [['code', 'import time\ntime.sleep(1.2)'], ['code', '1/0'], ['code', 'x = 3']]);
  const before = Date.now();
  await page.click('.nb-actions button:has-text("Run all")');
  await waitRun(page, 0);
  await waitRun(page, 1);
  await page.waitForSelector('[data-testid=save-state]:has-text("All changes saved")');
  const nb = (await ctx.api('GET', '/api/contents/runinfo.ipynb')).content;
  const [a, b, c] = nb.cells.map((x) => x.metadata.executionInfo);
  assert.ok(a && a.elapsed >= 1100 && a.elapsed < 20000, `elapsed of the sleep: ${JSON.stringify(a)}`);
  assert.equal(a.status, 'ok');
  assert.ok(a.timestamp >= before - 2000 && a.timestamp <= Date.now(), `timestamp ${a.timestamp}`);
  assert.equal(typeof a.user_tz, 'number');
  assert.equal(b.status, 'error');
  assert.equal(c, undefined, 'the cell that did not run (Run all stops at the error) has none');

  assert.match(await page.locator('.cell').nth(0).locator('.time').innerText(), /^1\.\ds$/, 'shown when the run ends');
  await page.reload();
  await page.waitForSelector('.cell');
  const time = page.locator('.cell').nth(0).locator('.time');
  assert.match(await time.innerText(), /^1\.\ds$/);
  assert.match(await time.getAttribute('title'), /^ran .* for 1\.\d\d s$/);
  assert.match(await page.locator('.cell').nth(1).locator('.time').getAttribute('title'), /ended with an error/);
});

test('markdown editing as in Colab: Ctrl+M M stays in the editor, with a live preview beside the source', async () => {
  const page = await openNotebook('markdown.ipynb', [['code', '']]);
  await page.locator('.cell').nth(0).locator('.input').click();
  await page.locator('.cell').nth(0).locator('.cm-content').waitFor();
  await page.keyboard.insertText('# Title\n\nsome *text*');
  await page.keyboard.press('Control+M');
  await page.keyboard.press('M');
  const cell = page.locator('.cell').nth(0);
  await page.waitForFunction(() => document.querySelector('.cell').classList.contains('text'));
  // Still typing in it: the editor has the focus, and the preview is beside it.
  await cell.locator('.cm-content').waitFor();
  await page.waitForFunction(() => !!document.activeElement?.closest('.cell .cm-editor'));
  await cell.locator('.rendered h1', { hasText: 'Title' }).waitFor();
  const [src, preview] = await Promise.all([cell.locator('.input').boundingBox(), cell.locator('.rendered').boundingBox()]);
  assert.ok(preview.x > src.x + src.width / 2, `the preview is beside the source: ${JSON.stringify({ src, preview })}`);
  await page.keyboard.insertText('\n\n**more**');
  await cell.locator('.rendered strong', { hasText: 'more' }).waitFor();
  // Escape: the rendering alone.
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => document.querySelector('.cell .input').hidden);
  assert.equal(await cell.locator('.rendered em').innerText(), 'text');
  await page.waitForSelector('[data-testid=save-state]:has-text("All changes saved")');
  const nb = (await ctx.api('GET', '/api/contents/markdown.ipynb')).content;
  assert.equal(nb.cells[0].cell_type, 'markdown');
  assert.equal(nb.cells[0].source, '# Title\n\nsome *text*\n\n**more**');
});

test('Colab forms: #@title and #@param show as a form beside the code, and its fields rewrite the code', async () => {
  const page = await openNotebook('form.ipynb', [['code', [
    '#@title Settings', 'name = "world" #@param {type:"string"}', 'n = 3 #@param {type:"integer"}',
    'mode = "fast" #@param ["fast", "slow"]', 'flag = True #@param {type:"boolean"}', 'print(name, n, mode, flag)'].join('\n')]]);
  const form = page.locator('.cell').nth(0).locator('[data-testid=colab-form]');
  await form.waitFor();
  assert.equal(await form.locator('.form-title').innerText(), 'Settings');
  assert.equal(await form.locator('[data-param=name]').inputValue(), 'world');
  await form.locator('[data-param=name]').fill('lab "book"');
  await form.locator('[data-param=n]').fill('5');
  await form.locator('[data-param=mode]').selectOption('"slow"');
  await form.locator('[data-param=flag]').uncheck();
  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  assert.equal((await outputText(page, 0)).trim(), 'lab "book" 5 slow False');
  await page.waitForSelector('[data-testid=save-state]:has-text("All changes saved")');
  const src = (await ctx.api('GET', '/api/contents/form.ipynb')).content.cells[0].source;
  assert.equal(src, ['#@title Settings', 'name = "lab \\"book\\"" #@param {type:"string"}', 'n = 5 #@param {type:"integer"}',
    'mode = "slow" #@param ["fast", "slow"]', 'flag = False #@param {type:"boolean"}', 'print(name, n, mode, flag)'].join('\n'));
});
