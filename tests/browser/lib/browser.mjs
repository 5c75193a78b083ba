// Browser test harness: one hub (the integration suite's harness) and one headless
// Debian chromium per test file, a signed-in page per test, and helpers that act as
// a user would (click, type, wait for what shows on screen).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after, afterEach } from 'node:test';
import { chromium } from 'playwright-core';
import { startServer } from '../../integration/lib/server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const TMP = path.resolve(HERE, '..', '.tmp');
export const DOCS_IMG = path.resolve(HERE, '../../../docs/img');
export const PASSWORD = 'correct horse battery staple';
const CHROMIUM = process.env.LABBOOK_CHROMIUM || '/usr/bin/chromium';

/**
 * Registers hooks for a file: a hub with user alice (password PASSWORD) and a
 * browser. Returns a holder whose fields are set once they run:
 * {server, browser, newPage({signIn}), api(method, path, body, user = 'alice')}.
 */
export function useBrowser({ config, users = ['alice'] } = {}) {
  const ctx = { server: null, browser: null, pages: [] };
  before(async () => {
    fs.mkdirSync(TMP, { recursive: true });
    ctx.server = await startServer({ users, passwords: { alice: PASSWORD }, name: 'browser', config });
    ctx.browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--headless', '--disable-background-networking', '--disable-gpu'],
    });
  });
  afterEach(async (t) => {
    for (const p of ctx.pages) {
      if (t.passed === false) {
        const name = t.name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60);
        await p.screenshot({ path: path.join(TMP, `failed-${name}.png`), fullPage: true }).catch(() => {});
        if (p.consoleLog?.length) process.stderr.write(`\n--- browser console (${t.name}) ---\n${p.consoleLog.join('\n')}\n`);
      }
      await p.context().close().catch(() => {});
    }
    ctx.pages = [];
    // Each test starts with no runtimes (a user may hold only so many).
    await ctx.stopKernels();
    if (t.passed === false && ctx.server) {
      const log = ctx.server.log();
      process.stderr.write(`\n--- server log for "${t.name}" ---\n${log.slice(-8000)}\n--- end ---\n`);
    }
  });
  after(async () => {
    await ctx.browser?.close();
    const s = ctx.server;
    if (!s) return;
    await ctx.stopKernels();
    await s.stop();
    fs.rmSync(s.dataDir, { recursive: true, force: true });
  });

  /** Shuts down every runtime of every user. */
  ctx.stopKernels = async () => {
    if (!ctx.server) return;
    for (const u of users) {
      for (const k of await ctx.api('GET', '/api/kernels', undefined, u).catch(() => [])) {
        await ctx.api('DELETE', `/api/kernels/${k.id}`, undefined, u).catch(() => {});
      }
    }
  };

  /** A new browser context and page; signed in through the login form unless told not
   * to; `viewport` and `colorScheme` (the system's 'light' or 'dark') as playwright takes them. */
  ctx.newPage = async ({ signIn = true, viewport = { width: 1280, height: 800 }, colorScheme = 'light' } = {}) => {
    const context = await ctx.browser.newContext({ viewport, colorScheme, acceptDownloads: true });
    const page = await context.newPage();
    page.consoleLog = [];
    page.on('console', (m) => page.consoleLog.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => page.consoleLog.push(`pageerror: ${e.message}`));
    page.setDefaultTimeout(20000);
    ctx.pages.push(page);
    if (signIn) {
      await page.goto(ctx.server.baseUrl + '/');
      await page.fill('input[name=username]', 'alice');
      await page.fill('input[name=password]', PASSWORD);
      await page.click('button[type=submit]');
      await page.waitForSelector('header.top');
    }
    return page;
  };

  /** The Jupyter REST API as alice, with her token (as another program would). */
  ctx.api = async (method, p, body, user = 'alice') => {
    const r = await fetch(ctx.server.baseUrl + p, {
      method,
      headers: { Authorization: `token ${ctx.server.tokens[user]}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return ctx;
}

/** A notebook in alice's drive, through the API: cells are [type, source] pairs. */
export function notebookJson(cells) {
  return {
    nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
    cells: cells.map(([t, src], i) => (t === 'code'
      ? { cell_type: 'code', id: `c${i}`, metadata: {}, source: src, outputs: [], execution_count: null }
      : { cell_type: 'markdown', id: `c${i}`, metadata: {}, source: src })),
  };
}

/** Types into the editor of cell i (clicking it first), replacing what is there. */
export async function typeInCell(page, i, text) {
  const cell = page.locator('.cell').nth(i);
  await cell.locator('.input').click();
  await cell.locator('.cm-content').waitFor();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

/** Waits until cell i has finished running (its count shows a number). */
export async function waitRun(page, i, timeout = 60000) {
  await page.waitForFunction((n) => {
    const c = document.querySelectorAll('.cell')[n];
    return c && !c.classList.contains('running') && !c.classList.contains('queued') && /\[\d+\]/.test(c.querySelector('.count').textContent);
  }, i, { timeout });
}

export function outputText(page, i) {
  return page.locator('.cell').nth(i).locator('.outputs').innerText();
}
