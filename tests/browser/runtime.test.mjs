// The runtime: Notebook settings (its types in people's words; choosing GPU switches
// the runtime, metadata.accelerator following it), a refusal at the per-user limit
// that offers Manage sessions, gauges, "Manage sessions", and a lost connection that
// shows its state and comes back by itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useBrowser, notebookJson, typeInCell, waitRun, outputText } from './lib/browser.mjs';

// The GPU type's figures are set here so that the dialog's words can be checked.
const ctx = useBrowser({
  config: '[runtimes]\ngpus = fake:1\n[profile.gpu]\nmemory_mb = 4096\nidle_timeout_s = 7200\nmax_lifetime_s = 86400\n',
  users: ['alice', 'bob'],
});

async function openNotebook(name, cells) {
  await ctx.api('PUT', `/api/contents/${name}`, { type: 'notebook', format: 'json', content: notebookJson(cells) });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/${name}`);
  await page.waitForSelector('.cell');
  return page;
}

test('Notebook settings shows each runtime type in words, with the keyboard: focus in, Escape, Enter saves', async () => {
  const page = await openNotebook('settings.ipynb', [['code', 'print(1)']]);
  await page.click('.menu-btn:has-text("Edit")');
  await page.click('.menu-pop button:has-text("Notebook settings")');
  const dlg = page.getByRole('dialog', { name: 'Notebook settings' });
  const gpu = dlg.locator('.rt-card[data-type=gpu]');
  await gpu.waitFor();
  const gpuText = await gpu.innerText();
  assert.match(gpuText, /Fake GPU 0 16 GB ×1/);
  assert.match(gpuText, /4 GB RAM/);
  assert.match(gpuText, /stops after 2 h idle, 24 h at most/);
  assert.match(gpuText, /1 of 1 GPU free/);
  assert.match(gpuText, /you have 0 of 1/);
  const cpuText = await dlg.locator('.rt-card[data-type=cpu]').innerText();
  assert.match(cpuText, /Accelerator\s+none/);
  assert.match(cpuText, /\d+(\.\d)? GB RAM/);
  assert.match(cpuText, /stops after 1\.5 h idle, 12 h at most/);
  assert.match(cpuText, /you have 0 of 4/);
  assert.doesNotMatch(await dlg.innerText(), /python3-gpu/, 'no kernelspec names');
  // The focus is in the dialog, on the type the notebook has; Escape closes it unchanged.
  assert.equal(await page.evaluate(() => document.activeElement.closest('.rt-card')?.dataset.type), 'cpu');
  await page.keyboard.press('Escape');
  await dlg.waitFor({ state: 'detached' });
  assert.equal((await ctx.api('GET', '/api/contents/settings.ipynb')).content.metadata.accelerator, undefined);

  // Runtime > Change runtime type is the same dialog: arrows pick GPU, Enter saves.
  await page.click('.menu-btn:has-text("Runtime")');
  await page.click('.menu-pop button:has-text("Change runtime type")');
  const again = page.getByRole('dialog', { name: 'Change runtime type' });
  await again.locator('.rt-card[data-type=gpu]').waitFor();
  await page.keyboard.press('ArrowDown');
  assert.equal(await again.locator('.rt-card[data-type=gpu] input').isChecked(), true);
  await page.keyboard.press('Enter');
  await again.waitFor({ state: 'detached' });
  await page.waitForSelector('[data-testid=save-state]:has-text("All changes saved")');
  const nb = await ctx.api('GET', '/api/contents/settings.ipynb');
  assert.equal(nb.content.metadata.accelerator, 'GPU');
  assert.equal(nb.content.metadata.kernelspec.name, 'python3-gpu');
  assert.deepEqual(await ctx.api('GET', '/api/kernels'), [], 'nothing was running: nothing starts');
});

test('choosing GPU in Notebook settings moves the running runtime onto a GPU', async () => {
  const page = await openNotebook('gpu.ipynb', [['code', 'import os\nprint(os.environ.get("CUDA_VISIBLE_DEVICES"))']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  assert.doesNotMatch(await outputText(page, 0), /GPU-/, 'a CPU runtime first');
  assert.deepEqual((await ctx.api('GET', '/api/kernels')).map((k) => k.name), ['python3']);
  await page.click('.menu-btn:has-text("Runtime")');
  await page.click('.menu-pop button:has-text("Change runtime type")');
  await page.locator('.modal .rt-card[data-type=gpu]').click();
  await page.click('.modal button:has-text("Save")');
  // A runtime is running: the page offers to restart it on the new type.
  await page.click('.modal button:has-text("Restart on GPU")');
  await page.waitForSelector('[data-testid=save-state]:has-text("All changes saved")');
  const nb = await ctx.api('GET', '/api/contents/gpu.ipynb');
  assert.equal(nb.content.metadata.accelerator, 'GPU');
  assert.equal(nb.content.metadata.kernelspec.name, 'python3-gpu');
  await page.waitForSelector('[data-testid=runtime-status][data-state=idle]', { timeout: 60000 });

  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  assert.match(await outputText(page, 0), /GPU-fa4e/);
  const kernels = await ctx.api('GET', '/api/kernels');
  assert.deepEqual(kernels.map((k) => k.name), ['python3-gpu']);
  // The gauges show the runtime's figures.
  await page.locator('.gauges .gauge', { hasText: 'RAM' }).waitFor({ timeout: 15000 });
  assert.match(await page.locator('.gauges').innerText(), /GPU 0/);

  // Manage sessions lists it, and terminates it.
  await page.click('.menu-btn:has-text("Runtime")');
  await page.click('.menu-pop button:has-text("Manage sessions")');
  const row = page.locator('.modal tr', { hasText: 'gpu.ipynb' });
  await row.waitFor();
  assert.match(await row.innerText(), /GPU/);
  await row.locator('button:has-text("Terminate")').click();
  await page.locator('.modal', { hasText: 'You have no runtimes' }).waitFor();
  assert.deepEqual(await ctx.api('GET', '/api/kernels'), []);
});

test('a start refused at the per-user limit says so and offers Manage sessions, which opens the sessions', async () => {
  // alice holds her one GPU runtime (the GPU type's max_per_user is 1) from elsewhere.
  const held = await ctx.api('POST', '/api/kernels', { name: 'python3-gpu' });
  const nb = notebookJson([['code', 'print("second GPU")']]);
  nb.metadata.accelerator = 'GPU';
  nb.metadata.kernelspec = { name: 'python3-gpu', display_name: 'Python 3 (GPU)', language: 'python' };
  await ctx.api('PUT', '/api/contents/limit.ipynb', { type: 'notebook', format: 'json', content: nb });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/limit.ipynb`);
  await page.waitForSelector('.cell');
  await page.locator('.cell').nth(0).locator('.run').click();
  const refusal = page.getByRole('dialog', { name: 'Runtime limit reached' });
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /the limit is 1/);
  await refusal.locator('button:has-text("Manage sessions")').click();
  const sessions = page.getByRole('dialog', { name: 'Active sessions' });
  const row = sessions.locator('tr', { hasText: 'GPU' });
  await row.waitFor();
  // Terminating the one held frees the way: the cell runs on a GPU.
  await row.locator('button:has-text("Terminate")').click();
  await sessions.locator('text=You have no runtimes').waitFor();
  await sessions.locator('button:has-text("Close")').click();
  assert.deepEqual((await ctx.api('GET', '/api/kernels')).filter((k) => k.id === held.id), []);
  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  assert.match(await outputText(page, 0), /second GPU/);
  for (const k of await ctx.api('GET', '/api/kernels')) await ctx.api('DELETE', `/api/kernels/${k.id}`);
});

test('a lost connection shows its state and reconnects by itself, output included', async () => {
  const page = await openNotebook('reconnect.ipynb', [['code', 'x = 41'], ['code', 'import time\ntime.sleep(3)\nprint(x + 1)']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  await page.locator('.cell').nth(1).locator('.run').click();
  await page.waitForSelector('.cell.running');
  // The hub restarts: runtimes outlive it, and the page notices and comes back.
  const states = [];
  await page.exposeFunction('noteState', (s) => states.push(s));
  await page.evaluate(() => new MutationObserver(() => window.noteState(document.querySelector('[data-testid=runtime-status]').dataset.state + ':' + document.querySelector('[data-testid=runtime-status]').innerText))
    .observe(document.querySelector('[data-testid=runtime-status]'), { attributes: true, subtree: true, childList: true, characterData: true }));
  await ctx.server.restart();
  await waitRun(page, 1, 60000);
  assert.match(await outputText(page, 1), /42/);
  assert.ok(states.some((s) => /Reconnecting/.test(s)), `the page said it was reconnecting: ${states}`);
  assert.match(await page.locator('[data-testid=runtime-status]').innerText(), /Connected|Busy/);
});

test('waiting for a GPU shows the place in the queue, then the runtime starts', async () => {
  // bob holds the only GPU.
  const bobs = await ctx.api('POST', '/api/kernels', { name: 'python3-gpu' }, 'bob');
  const nb = notebookJson([['code', 'print("got the GPU")']]);
  nb.metadata.accelerator = 'GPU';
  nb.metadata.kernelspec = { name: 'python3-gpu', display_name: 'Python 3 (GPU)', language: 'python' };
  await ctx.api('PUT', '/api/contents/queued.ipynb', { type: 'notebook', format: 'json', content: nb });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/queued.ipynb`);
  await page.waitForSelector('.cell');
  await page.locator('.cell').nth(0).locator('.run').click();
  await page.waitForSelector('[data-testid=runtime-status][data-state=queued]');
  assert.match(await page.locator('[data-testid=runtime-status]').innerText(), /Queued \(position 1\)/);
  await ctx.api('DELETE', `/api/kernels/${bobs.id}`, undefined, 'bob');
  await waitRun(page, 0, 60000);
  assert.match(await outputText(page, 0), /got the GPU/);
  assert.match(await page.locator('[data-testid=runtime-status]').innerText(), /Connected|Busy/);
});

test('waiting for a GPU, the user can take a CPU runtime instead', async () => {
  const bobs = await ctx.api('POST', '/api/kernels', { name: 'python3-gpu' }, 'bob');
  const nb = notebookJson([['code', 'import os\nprint("cpu", os.environ.get("CUDA_VISIBLE_DEVICES"))']]);
  nb.metadata.accelerator = 'GPU';
  nb.metadata.kernelspec = { name: 'python3-gpu', display_name: 'Python 3 (GPU)', language: 'python' };
  await ctx.api('PUT', '/api/contents/cpu-instead.ipynb', { type: 'notebook', format: 'json', content: nb });
  const page = await ctx.newPage();
  await page.goto(`${ctx.server.baseUrl}/notebooks/cpu-instead.ipynb`);
  await page.waitForSelector('.cell');
  await page.locator('.cell').nth(0).locator('.run').click();
  await page.waitForSelector('[data-testid=runtime-status][data-state=queued]');
  await page.click('[data-testid=use-cpu]');
  await page.waitForSelector('[data-testid=runtime-status][data-state=idle]', { timeout: 60000 });
  assert.equal(await page.locator('[data-testid=use-cpu]').isVisible(), false);
  // The queued GPU runtime is gone, the notebook is a CPU one now.
  const kernels = await ctx.api('GET', '/api/kernels');
  assert.equal(kernels.length, 1);
  assert.equal(kernels[0].name, 'python3');
  await page.waitForSelector('[data-testid=save-state]:has-text("All changes saved")');
  const saved = await ctx.api('GET', '/api/contents/cpu-instead.ipynb');
  assert.equal(saved.content.metadata.kernelspec.name, 'python3');
  assert.equal(saved.content.metadata.accelerator, undefined);
  await ctx.api('DELETE', `/api/kernels/${bobs.id}`, undefined, 'bob');
});

test('the files panel shows the drive and uploads into it; disconnect deletes the runtime', async () => {
  await ctx.api('PUT', '/api/contents/data', { type: 'directory' });
  await ctx.api('PUT', '/api/contents/data/rows.txt', { type: 'file', format: 'text', content: 'a\nb\n' });
  const page = await openNotebook('panel.ipynb', [['code', 'print(1)']]);
  await page.click('button[title=Files]');
  const tree = page.locator('.nb-side .tree[data-root=drive]');
  await tree.locator('a', { hasText: 'data' }).click();
  await tree.locator('a', { hasText: 'rows.txt' }).waitFor();
  const download = page.waitForEvent('download');
  await tree.locator('li', { hasText: 'rows.txt' }).locator('button[title=Download]').click();
  assert.equal((await import('node:fs')).readFileSync(await (await download).path(), 'utf8'), 'a\nb\n');
  await page.setInputFiles('.nb-side [data-root=drive] input[type=file]', { name: 'from-panel.txt', mimeType: 'text/plain', buffer: Buffer.from('hi') });
  await tree.locator('a', { hasText: 'from-panel.txt' }).waitFor();

  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  assert.equal((await ctx.api('GET', '/api/kernels')).length, 1);
  await page.click('.menu-btn:has-text("Runtime")');
  await page.click('.menu-pop button:has-text("Disconnect and delete runtime")');
  await page.waitForSelector('[data-testid=runtime-status][data-state=none]');
  assert.deepEqual(await ctx.api('GET', '/api/kernels'), []);
});

test("the files panel shows the runtime's /content: upload into it, the kernel reads it, download it", async (t) => {
  if (!ctx.server.log().includes('runtimes run in sandboxes')) return t.skip('runtimes are not sandboxed: no /content of their own');
  const page = await openNotebook('content-panel.ipynb', [['code', "open('/content/from-kernel.txt', 'w').write('made inside')"], ['code', "print(open('/content/héllo panel.txt').read())"]]);
  await page.click('button[title=Files]');
  await page.locator('.nb-side [data-root=content]', { hasText: 'Connect to a runtime' }).waitFor();
  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  const tree = page.locator('.nb-side .tree[data-root=content]');
  await page.locator('.nb-side [data-root=content] button:has-text("Refresh")').click();
  await tree.locator('a', { hasText: 'from-kernel.txt' }).waitFor();
  assert.equal(await tree.locator('a', { hasText: /^drive$/ }).count(), 0, 'the drive is shown as its own root');
  await page.setInputFiles('.nb-side [data-testid=content-upload-input]', { name: 'héllo panel.txt', mimeType: 'text/plain', buffer: Buffer.from('uploaded into content') });
  await tree.locator('a', { hasText: 'héllo panel.txt' }).waitFor();
  await page.locator('.cell').nth(1).locator('.run').click();
  await waitRun(page, 1);
  assert.match(await outputText(page, 1), /uploaded into content/);
  const download = page.waitForEvent('download');
  await tree.locator('li', { hasText: 'from-kernel.txt' }).locator('button[title=Download]').click();
  assert.equal(fs.readFileSync(await (await download).path(), 'utf8'), 'made inside');
  // The drive is still there, below.
  await page.locator('.nb-side .tree[data-root=drive] a', { hasText: 'content-panel.ipynb' }).waitFor();
  for (const k of await ctx.api('GET', '/api/kernels')) await ctx.api('DELETE', `/api/kernels/${k.id}`);
});

test('a runtime shut down elsewhere is noticed; the next run starts a new one', async () => {
  const page = await openNotebook('culled.ipynb', [['code', 'import os\nprint(os.getpid())']]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  const [k] = await ctx.api('GET', '/api/kernels');
  await ctx.api('DELETE', `/api/kernels/${k.id}`);
  await page.locator('[data-testid=banner]', { hasText: 'the runtime was shut down' }).waitFor({ timeout: 15000 });
  await page.waitForSelector('[data-testid=runtime-status][data-state=none]');
  await page.locator('.cell').nth(0).locator('.run').click();
  await page.waitForFunction(() => /\[1\]/.test(document.querySelector('.cell .count').textContent) && !document.querySelector('.cell.running'), null, { timeout: 60000 });
  const now = await ctx.api('GET', '/api/kernels');
  assert.equal(now.length, 1);
  assert.notEqual(now[0].id, k.id);
});

test('factory reset wipes the runtime (its state, and in a sandbox its files) but not the drive', async () => {
  const page = await openNotebook('reset.ipynb', [
    ['code', 'import os\nsandboxed = os.path.isdir("/content/drive/MyDrive")\nif sandboxed:\n    open("/usr/local/labbook-reset-marker", "w").write("x")\nopen("kept.txt" if not sandboxed else "/content/drive/MyDrive/kept.txt", "w").write("kept")\nprint("sandboxed" if sandboxed else "unsandboxed")'],
    ['code', 'import os\nprint(os.path.exists("/usr/local/labbook-reset-marker"), "sandboxed" in globals())'],
  ]);
  await page.locator('.cell').nth(0).locator('.run').click();
  await waitRun(page, 0);
  await page.click('.menu-btn:has-text("Runtime")');
  await page.click('.menu-pop button:has-text("Factory reset runtime")');
  await page.click('.modal button:has-text("Reset")');
  await page.locator('.toast', { hasText: 'The runtime was reset' }).waitFor({ timeout: 60000 });
  await page.locator('.cell').nth(1).locator('.run').click();
  await waitRun(page, 1);
  assert.match(await outputText(page, 1), /^False False/);
  assert.equal(fs.readFileSync(path.join(ctx.server.drive('alice'), 'kept.txt'), 'utf8'), 'kept');
});
