// Colab forms (issue 13, item 8): #@markdown text in the form, every #@param kind
// rewriting its line, and cellView "form" (only the form shows; "Show code" / "Hide
// code" write the cell's metadata as Colab does). colab.test.mjs runs a form cell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useBrowser, notebookJson } from './lib/browser.mjs';

const ctx = useBrowser();

async function openNotebook(name, nb) {
  await ctx.api('PUT', `/api/contents/${name}`, { type: 'notebook', format: 'json', content: nb });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/${name}`);
  await page.waitForSelector('.cell');
  return page;
}

/** The notebook file's bytes, as the hub wrote them into alice's drive. */
function fileText(name) {
  return fs.readFileSync(path.join(ctx.server.drive('alice'), name), 'utf8');
}

async function until(fn, what, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return; } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('#@markdown lines show as markdown text in the form, in their place among the fields', async () => {
  const page = await openNotebook('md-form.ipynb', notebookJson([['code', [
    '#@title Data', '#@markdown Pick a **dataset** and a `seed`:', '#@markdown', '#@markdown - second paragraph',
    'ds = "mnist" #@param ["mnist", "cifar"]', '#@markdown Then the _rate_.', 'lr = 0.1 #@param {type:"number"}', 'print(ds, lr)'].join('\n')]]));
  const form = page.locator('.cell').nth(0).locator('[data-testid=colab-form]');
  await form.locator('[data-testid=form-markdown] strong').waitFor();
  const blocks = form.locator('[data-testid=form-markdown]');
  assert.equal(await blocks.count(), 2);
  assert.equal(await blocks.nth(0).locator('strong').innerText(), 'dataset');
  assert.equal(await blocks.nth(0).locator('code').innerText(), 'seed');
  assert.equal(await blocks.nth(0).locator('li').innerText(), 'second paragraph');
  assert.equal(await blocks.nth(1).locator('em').innerText(), 'rate');
  // Text, fields and text again, in the order of the lines; the comment marks are gone.
  const order = await form.evaluate((f) => [...f.querySelectorAll('[data-testid=form-markdown], [data-param]')].map((e) => e.dataset.param || 'md'));
  assert.deepEqual(order, ['md', 'ds', 'md', 'lr']);
  assert.doesNotMatch(await form.innerText(), /@markdown/);
});

test('every #@param kind shows its field, and each field rewrites its own line', async () => {
  const lines = [
    '#@title Every kind',
    's = "a" #@param {type:"string"}',
    'r = [1, 2] #@param {type:"raw"}',
    'i = 3 #@param {type:"integer"}',
    'x = 0.5 #@param {type:"number"}',
    'k = 4 #@param {type:"slider", min:0, max:10, step:2}',
    'd = "2024-01-02" #@param {type:"date"}',
    'b = False #@param {type:"boolean"}',
    "m = 'x' #@param ['x', 'y']",
    'n = 1 #@param [1, 2, 3]',
    'c = "red" #@param ["red", "green"] {allow-input: true}',
    'e = 10 #@param [10, 20] {type:"raw", allow-input: true}',
    'print(s, r, i, x, k, d, b, m, n, c, e)',
  ];
  const page = await openNotebook('kinds.ipynb', notebookJson([['code', lines.join('\n')]]));
  const form = page.locator('.cell').nth(0).locator('[data-testid=colab-form]');
  await form.waitFor();
  const f = (name) => form.locator(`[data-param=${name}]`);
  const attrs = (name) => f(name).evaluate((e) => ({ tag: e.tagName.toLowerCase(), type: e.type, value: e.value, min: e.min, max: e.max, step: e.step }));
  assert.deepEqual(await attrs('s'), { tag: 'input', type: 'text', value: 'a', min: '', max: '', step: '' });
  assert.equal((await attrs('r')).value, '[1, 2]');
  assert.deepEqual(await attrs('i'), { tag: 'input', type: 'number', value: '3', min: '', max: '', step: '1' });
  assert.equal((await attrs('x')).type, 'number');
  assert.deepEqual(await attrs('k'), { tag: 'input', type: 'range', value: '4', min: '0', max: '10', step: '2' });
  assert.deepEqual(await attrs('d'), { tag: 'input', type: 'date', value: '2024-01-02', min: '', max: '', step: '' });
  assert.equal((await attrs('b')).type, 'checkbox');
  assert.equal((await attrs('m')).tag, 'select');
  assert.deepEqual(await f('m').locator('option').allInnerTexts(), ['x', 'y']);
  assert.deepEqual(await f('n').locator('option').allInnerTexts(), ['1', '2', '3']);
  // Dropdowns that allow input: a text box with the choices offered.
  assert.deepEqual(await attrs('c'), { tag: 'input', type: 'text', value: 'red', min: '', max: '', step: '' });
  assert.deepEqual(await f('c').evaluate((e) => [...e.list.options].map((o) => o.value)), ['red', 'green']);
  assert.equal((await attrs('e')).value, '10');

  await f('r').fill('(3, 4)');
  await f('i').fill('7');
  await f('x').fill('2.5');
  await f('k').evaluate((e) => { e.value = '8'; e.dispatchEvent(new Event('input', { bubbles: true })); });
  assert.equal(await form.locator('.form-value').innerText(), '8');
  await f('d').fill('2025-03-04');
  await f('b').check();
  await f('m').selectOption("'y'");
  await f('n').selectOption('3');
  await f('c').fill('blue');
  await f('e').fill('30');
  await page.waitForSelector('[data-testid=save-state]:has-text("All changes saved")');
  const src = (await ctx.api('GET', '/api/contents/kinds.ipynb')).content.cells[0].source;
  assert.equal(src, [
    '#@title Every kind',
    's = "a" #@param {type:"string"}',
    'r = (3, 4) #@param {type:"raw"}',
    'i = 7 #@param {type:"integer"}',
    'x = 2.5 #@param {type:"number"}',
    'k = 8 #@param {type:"slider", min:0, max:10, step:2}',
    'd = "2025-03-04" #@param {type:"date"}',
    'b = True #@param {type:"boolean"}',
    "m = 'y' #@param ['x', 'y']",
    'n = 3 #@param [1, 2, 3]',
    'c = "blue" #@param ["red", "green"] {allow-input: true}',
    'e = 30 #@param [10, 20] {type:"raw", allow-input: true}',
    'print(s, r, i, x, k, d, b, m, n, c, e)',
  ].join('\n'));
  // A typed value that is one of the choices is written as the list writes it.
  await f('c').fill('green');
  await until(async () => (await ctx.api('GET', '/api/contents/kinds.ipynb')).content.cells[0].source.includes('c = "green" #@param'), 'c = "green"');
});

test('cellView "form" shows only the form; Show code / Hide code write metadata.cellView as Colab does', async () => {
  const nb = notebookJson([
    ['code', '#@title Greeting\nname = "you" #@param {type:"string"}\nprint("hello", name)'],
    ['code', '#@title Old style { display-mode: "form" }\nn = 1 #@param {type:"integer"}\nprint(n)'],
    ['code', 'print("no form")'],
  ]);
  // As Colab writes them: the cell's id in its metadata too.
  nb.cells[0].metadata = { cellView: 'form', id: 'abc' };
  nb.cells[1].metadata = { id: 'def' };
  const page = await openNotebook('view.ipynb', nb);
  const cell = page.locator('.cell').nth(0);
  const toggle = cell.locator('[data-testid=form-toggle-code]');
  await cell.locator('[data-testid=colab-form]').waitFor();
  assert.equal(await cell.locator('.input').isHidden(), true, 'the code is hidden');
  assert.doesNotMatch(await cell.innerText(), /print/);
  assert.equal(await toggle.innerText(), 'Show code');
  assert.equal(await cell.locator('[data-param=name]').inputValue(), 'you');
  // The older #@title option hides the code too, and is not part of the title.
  const old = page.locator('.cell').nth(1);
  assert.equal(await old.locator('.form-title').innerText(), 'Old style');
  assert.equal(await old.locator('.input').isHidden(), true);
  assert.equal(await page.locator('.cell').nth(2).locator('.input').isVisible(), true);

  // Show code: the code comes back and cellView goes from the metadata.
  await toggle.click();
  await cell.locator('.input', { hasText: 'print("hello", name)' }).waitFor();
  assert.equal(await toggle.innerText(), 'Hide code');
  await until(() => !('cellView' in JSON.parse(fileText('view.ipynb')).cells[0].metadata), 'cellView removed');
  assert.deepEqual(JSON.parse(fileText('view.ipynb')).cells[0].metadata, { id: 'abc' });

  // Hide code: exactly the bytes Colab writes (nbformat's indent and key order).
  await toggle.click();
  await page.waitForFunction(() => document.querySelectorAll('.cell .input')[0].hidden);
  await until(() => JSON.parse(fileText('view.ipynb')).cells[0].metadata.cellView === 'form', 'cellView: "form" saved');
  assert.ok(fileText('view.ipynb').includes('   "metadata": {\n    "cellView": "form",\n    "id": "abc"\n   },\n'), fileText('view.ipynb'));

  // The title's own display-mode: showing the code is remembered as "both".
  await old.locator('[data-testid=form-toggle-code]').click();
  await until(() => JSON.parse(fileText('view.ipynb')).cells[1].metadata.cellView === 'both', 'cellView: "both" saved');

  await page.reload();
  await page.locator('.cell').nth(0).locator('[data-testid=colab-form]').waitFor();
  assert.equal(await page.locator('.cell').nth(0).locator('.input').isHidden(), true);
  assert.equal(await page.locator('.cell').nth(1).locator('.input').isVisible(), true);
});
