// What cells show when they run: images, errors with coloured tracebacks, a progress
// bar that stays one line, ANSI colours, HTML in a sandboxed frame, markdown with math
// (and without script), input(), interrupt and restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useBrowser, notebookJson, typeInCell, waitRun, outputText } from './lib/browser.mjs';

const ctx = useBrowser();

// A 2x2 red PNG.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGP4z8DAwMDAxMDAAAAXCQIBz6rfBwAAAABJRU5ErkJggg==';

async function openNotebook(name, cells) {
  await ctx.api('PUT', `/api/contents/${name}`, { type: 'notebook', format: 'json', content: notebookJson(cells) });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/${name}`);
  await page.waitForSelector('.cell');
  return page;
}

test('outputs: image, error with colours, progress bar on one line, ANSI colours, HTML in a sandbox, markdown with math', async () => {
  const page = await openNotebook('outputs.ipynb', [
    ['code', `import base64\nfrom IPython.display import Image, display\ndisplay(Image(data=base64.b64decode("${PNG}")))`],
    ['code', 'import time\nfor i in range(5):\n    print(f"\\r{i}", end="", flush=True)\n    time.sleep(0.05)\nprint("\\rdone")'],
    ['code', 'print("\\x1b[31mred\\x1b[0m plain")'],
    ['code', `from IPython.display import HTML\nHTML('<a id="home" href="/">home</a> <b id="x">bold</b><script>document.getElementById("x").textContent = "ran"; try { parent.document.title = "pwned" } catch (e) {}</script>')`],
    ['code', '1/0'],
    ['markdown', '# Title\n\nEinstein: $E = mc^2$\n\n<img src="x" onerror="document.title=\'pwned\'">'],
  ]);
  await page.click('.nb-actions button:has-text("Run all")');
  for (const i of [0, 1, 2, 3, 4]) await waitRun(page, i);
  // Cells: 0 image, 1 progress bar, 2 colours, 3 HTML, 4 error (last: it stops Run all), 5 markdown.

  const img = page.locator('.cell').nth(0).locator('.outputs img');
  assert.match(await img.getAttribute('src'), /^data:image\/png;base64,/);

  const err = page.locator('.cell').nth(4).locator('.out-error');
  assert.match(await err.innerText(), /ZeroDivisionError/);
  assert.ok(await err.locator('span[class*=ansi-]').count() > 0, 'the traceback is coloured');

  assert.equal((await outputText(page, 1)).trim(), 'done', 'a \\r progress bar ends as one line');

  const red = page.locator('.cell').nth(2).locator('.ansi-red-fg');
  assert.equal(await red.innerText(), 'red');

  const frame = page.locator('.cell').nth(3).locator('iframe.out-frame');
  const sandbox = await frame.getAttribute('sandbox');
  assert.match(sandbox, /allow-scripts/);
  assert.doesNotMatch(sandbox, /allow-same-origin/);
  assert.doesNotMatch(sandbox, /allow-popups-to-escape-sandbox/, 'windows it opens keep the sandbox');
  await page.frameLocator('.cell >> nth=3 >> iframe.out-frame').locator('#x', { hasText: 'ran' }).waitFor();
  assert.notEqual(await page.title(), 'pwned');
  // A link in an output opens a window that is still sandboxed: an opaque origin, not
  // the hub's, even for the hub's own home page.
  const [popup] = await Promise.all([
    page.waitForEvent('popup', { timeout: 15000 }),
    page.frameLocator('.cell >> nth=3 >> iframe.out-frame').locator('#home').click(),
  ]);
  await popup.waitForLoadState('domcontentloaded');
  assert.equal(await popup.evaluate(() => self.origin), 'null', 'the window an output opened is sandboxed');
  await popup.close();

  const md = page.locator('.cell').nth(5).locator('.rendered');
  await md.locator('.katex').first().waitFor();
  assert.equal(await md.locator('h1').innerText(), 'Title');
  assert.equal(await md.locator('img[onerror]').count(), 0, 'event handlers are stripped from markdown');
  assert.notEqual(await page.title(), 'pwned');

  // The outputs were saved with the notebook.
  await page.waitForSelector('[data-testid=save-state]:has-text("All changes saved")');
  const saved = await ctx.api('GET', '/api/contents/outputs.ipynb');
  assert.match(JSON.stringify(saved.content.cells[4].outputs), /ZeroDivisionError/);
  const text = saved.content.cells[1].outputs[0].text;
  assert.equal(Array.isArray(text) ? text.join('') : text, 'done\n');
});

test('input() shows a prompt; what is typed reaches the kernel', async () => {
  const page = await openNotebook('input.ipynb', [['code', 'name = input("Your name: ")\nprint("hi", name)']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  const box = page.locator('.stdin-input');
  await box.waitFor();
  assert.match(await page.locator('.stdin .prompt').innerText(), /Your name:/);
  await box.fill('Ada');
  await box.press('Enter');
  await waitRun(page, 0);
  assert.match(await outputText(page, 0), /hi Ada/);
});

test('interrupt stops a running cell; restart forgets variables', async () => {
  const page = await openNotebook('interrupt.ipynb', [['code', 'x = 5\nimport time\ntime.sleep(120)'], ['code', 'print(x)']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await page.waitForSelector('.cell.running');
  await page.click('button[aria-label=Interrupt]');
  await waitRun(page, 0);
  assert.match(await outputText(page, 0), /KeyboardInterrupt/);
  await page.locator('.cell').nth(1).locator('.run').click();
  await waitRun(page, 1);
  assert.match(await outputText(page, 1), /^5/);

  await page.click('.menu-btn:has-text("Runtime")');
  await page.click('.menu-pop button:has-text("Restart runtime")');
  await page.click('.modal button:has-text("Restart")');
  await page.waitForSelector('[data-testid=runtime-status][data-state=idle]');
  await page.locator('.cell').nth(1).locator('.run').click();
  await waitRun(page, 1);
  assert.match(await outputText(page, 1), /NameError/);
});

test('a kernel that dies mid-cell: the cell stops running, the reason is shown, the next cell runs', async () => {
  const page = await openNotebook('crash.ipynb', [['code', 'import os\nos._exit(1)'], ['code', 'print("after the crash")']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await page.locator('[data-testid=banner]', { hasText: /Your session crashed: the kernel died/ }).waitFor();
  // The note may be drawn a moment after the banner: wait for it rather than read at once.
  const note = page.locator('.cell').nth(0).locator('.cell-note', { hasText: /crashed and restarted while this cell ran: the kernel died/ });
  await note.waitFor({ timeout: 10000 });
  await page.waitForFunction(() => !document.querySelector('.cell.running, .cell.queued'));
  await page.locator('.cell').nth(1).locator('.run').click();
  await waitRun(page, 1);
  assert.match(await outputText(page, 1), /after the crash/);
});

test('markdown shows images from the drive by relative path; a cell\'s output can be cleared', async () => {
  await ctx.api('PUT', '/api/contents/pics', { type: 'directory' });
  await ctx.api('PUT', '/api/contents/pics/dot.png', { type: 'file', format: 'base64', content: PNG });
  const page = await openNotebook('pics.ipynb', [['markdown', '![a dot](pics/dot.png)'], ['code', 'print("to clear")']]);
  const img = page.locator('.cell').nth(0).locator('.rendered img');
  await page.waitForFunction(() => /^data:image\/png;base64,/.test(document.querySelector('.cell .rendered img')?.getAttribute('src') || ''));
  assert.equal(await img.getAttribute('alt'), 'a dot');

  await page.locator('.cell').nth(1).locator('.run').click();
  await waitRun(page, 1);
  assert.match(await outputText(page, 1), /to clear/);
  await page.locator('.cell').nth(1).locator('button[title="Clear output"]').click();
  await page.waitForFunction(() => document.querySelectorAll('.cell')[1].querySelector('.outputs').textContent === '');
});

test('a notebook from someone else cannot run script through attachments or math', async () => {
  const nb = notebookJson([['markdown', 'x'], ['markdown', '<a title="$x$" href="#">link</a> $\\color{red}{y}$']]);
  nb.cells[0].source = '![pic](attachment:a.png) ![svg](attachment:b.svg)';
  nb.cells[0].attachments = {
    'a.png': { 'image/png': `${PNG}" onerror="document.title='pwned'` },
    'b.svg': { 'image/svg+xml': '<svg xmlns="http://www.w3.org/2000/svg" onload="parent.document.title=\'pwned\'"><circle r="5"/></svg>' },
  };
  await ctx.api('PUT', '/api/contents/hostile.ipynb', { type: 'notebook', format: 'json', content: nb });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/hostile.ipynb`);
  await page.locator('.cell').nth(1).locator('.katex').first().waitFor();
  const imgs = page.locator('.cell').nth(0).locator('.rendered img');
  assert.equal(await imgs.count(), 2);
  for (let i = 0; i < 2; i++) {
    assert.equal(await imgs.nth(i).getAttribute('onerror'), null);
    assert.match(await imgs.nth(i).getAttribute('src'), /^data:image\//);
  }
  assert.equal(await page.locator('.cell [onerror], .cell [onload], .cell [onmouseover]').count(), 0);
  await page.waitForTimeout(500);
  assert.notEqual(await page.title(), 'pwned');
});
