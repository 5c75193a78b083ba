// Revocation: tokens listed, named, given an expiry and revoked; users disabled and
// deleted; a password change or a revocation ends the user's sessions and open kernel
// WebSockets at once, while the hub runs (the CLI is another process writing the
// database). Another user's tokens, sessions and runtimes are untouched throughout.
//
// labbook-only (skipped on jupyter_server): users, tokens and `labbook user` are
// labbook's own.

import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { spawnSync } from 'node:child_process';
import { useServer, labbookCli, RUN_LABBOOK_ONLY, IS_LABBOOK } from './lib/server.mjs';
import { api, browserFetch, CookieJar, rawKernelSocket, sleep, until } from './lib/clients.mjs';

const LABBOOK_BIN_PATH = process.env.LABBOOK_BIN
  ? path.resolve(process.env.LABBOOK_BIN)
  : path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../build/labbook');
const labbookOnly = RUN_LABBOOK_ONLY ? {} : { skip: 'users, tokens and `labbook user` are labbook-only' };
// "At once": the hub checks the database five times a second; a socket must be
// closed well within this of the command returning.
const AT_ONCE_MS = 2500;

const ctx = useServer({ name: 'revocation', users: ['alice', 'bob'], passwords: { bob: 'bob-pw-Rv81q' } });

/** Runs `labbook user ARGS` on the running hub's data folder; returns its stdout. */
function user(...args) {
  return labbookCli(['user', ...args, '--data', ctx.server.dataDir]);
}

/** `labbook user tokens NAME` as [{id, name, expires}]. */
function tokens(name) {
  const lines = user('tokens', name).trim().split('\n');
  assert.match(lines[0], /^ID\s+NAME\s+CREATED\s+LAST USED\s+EXPIRES$/);
  return lines.slice(1).map((l) => {
    const f = l.split(/\s{2,}/);
    return { id: f[0], name: f[1], expires: f[f.length - 1] };
  });
}

/** A new token for NAME (registered as ctx.server.tokens[alias]); returns {token, id}. */
function newToken(name, alias, extra = []) {
  const token = user('token', name, '--name', alias, ...extra).trim();
  assert.match(token, /^[0-9a-f]{64}$/);
  const row = tokens(name).find((t) => t.name === alias);
  assert.ok(row, `the token named ${alias} is listed`);
  ctx.server.tokens[alias] = token;
  return { token, id: row.id };
}

/** Adds a user with a password and a token (ctx.server.tokens[name]). */
function addUserWithPassword(name, password) {
  labbookCli(['user', 'add', name, '--password-stdin', '--data', ctx.server.dataDir], { input: `${password}\n` });
  ctx.server.tokens[name] = user('token', name).trim();
}

/** Signs in with a password like a browser; returns the cookie jar (or null on failure). */
async function signIn(name, password) {
  const jar = new CookieJar();
  const form = await browserFetch(ctx.server, jar, 'GET', '/login');
  const xsrf = form.text.match(/name="_xsrf" value="([^"]*)"/)[1];
  const r = await browserFetch(ctx.server, jar, 'POST', '/login', { form: { username: name, password, _xsrf: xsrf } });
  return r.status === 302 && jar.get('labbook_session') ? jar : null;
}

async function startKernel(alias) {
  const k = await api(ctx.server, alias, 'POST', '/api/kernels', { name: 'python3' });
  assert.equal(k.status, 201, k.text);
  return k.body.id;
}

/** A kernel WebSocket opened with a token alias, opened and idle-checked. */
async function tokenSocket(alias, kernelId) {
  const c = rawKernelSocket(ctx.server, alias, kernelId);
  await c.opened;
  return c;
}

/** A kernel WebSocket opened by a browser signed in with jar (cookie, same Origin). */
async function cookieSocket(jar, kernelId) {
  const url = `${ctx.server.wsUrl}/api/kernels/${kernelId}/channels?session_id=${crypto.randomUUID()}`;
  const ws = new WebSocket(url, { headers: { Cookie: jar.header(), Origin: ctx.server.baseUrl } });
  const c = { ws, closed: false, closeInfo: null };
  ws.on('close', (code, reason) => { c.closed = true; c.closeInfo = { code, reason: reason.toString() }; });
  ws.on('error', () => {});
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (req, res) => reject(new Error(`cookie websocket refused: ${res.statusCode}`)));
  });
  return c;
}

/** Waits until the socket is closed (within AT_ONCE_MS); returns {code, reason}. */
async function closedAtOnce(c, what) {
  await until(() => c.closed, { timeoutMs: AT_ONCE_MS, intervalMs: 25, what: `${what} to close` });
  return c.closeInfo;
}

/** Runs 6*7 on the kernel through an open raw socket: the socket and the kernel work. */
async function works(c) {
  const msgId = c.execute('print(6*7)').header.msg_id;
  await c.waitFor((m) => m.header?.msg_type === 'stream' && m.parent_header?.msg_id === msgId && /42/.test(m.content.text),
    { timeoutMs: 30000, what: '42' });
}

/** The HTTP status a WebSocket upgrade with this token alias gets (101 if it opens). */
async function upgradeStatus(alias, kernelId) {
  const c = rawKernelSocket(ctx.server, alias, kernelId);
  try {
    await c.opened;
    await c.close();
    return 101;
  } catch (e) {
    return e.statusCode;
  }
}

/** Host processes of this runtime (its agent and kernel) that are still alive. */
function runtimeAlive(id) {
  const mark = path.join(ctx.server.dataDir, 'runtimes', id);
  return fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).some((d) => {
    try {
      return fs.readFileSync(`/proc/${d}/cmdline`, 'utf8').includes(mark) &&
        !/\) Z /.test(fs.readFileSync(`/proc/${d}/stat`, 'utf8'));
    } catch { return false; }
  });
}

const status = async (alias, p = '/api/contents') => (await api(ctx.server, alias, 'GET', p)).status;

// Bob is the bystander: his kernel, socket, token and browser session must live
// through everything done to the others.
const bob = {};

describe('revocation', labbookOnly, () => {
  before(async () => {
    if (!IS_LABBOOK) return;
    bob.kernel = await startKernel('bob');
    bob.socket = await tokenSocket('bob', bob.kernel);
    bob.jar = await signIn('bob', 'bob-pw-Rv81q');
    assert.ok(bob.jar, 'bob signs in');
    bob.cookieSocket = await cookieSocket(bob.jar, bob.kernel);
  });

  test('tokens are listed with their ids, names and expiry; an old nameless one is listed too', async () => {
    const before = tokens('alice');
    assert.equal(before.length, 1, 'the token the suite made');
    assert.match(before[0].id, /^[0-9a-f]{10}$/);
    assert.equal(before[0].name, '-');
    assert.equal(before[0].expires, 'never');
    const laptop = newToken('alice', 'laptop');
    const ci = newToken('alice', 'ci', ['--expires', '30']);
    const after = tokens('alice');
    assert.deepEqual(after.map((t) => t.name), ['-', 'laptop', 'ci']);
    assert.equal(new Set(after.map((t) => t.id)).size, 3, 'ids are distinct');
    assert.match(after[2].expires, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$/);
    const days = (Date.parse(after[2].expires.replace(' UTC', 'Z').replace(' ', 'T')) - Date.now()) / 86400e3;
    assert.ok(days > 29.9 && days < 30.1, `expires in 30 days: ${after[2].expires}`);
    assert.equal(await status('laptop'), 200);
    assert.equal(await status('ci'), 200);
    // The listing shows no secret.
    const text = user('tokens', 'alice');
    for (const t of [laptop.token, ci.token, ctx.server.tokens.alice]) assert.ok(!text.includes(t));
  });

  test('an expired token gets 401 (API and WebSocket upgrade), and its open WebSocket ends', async () => {
    const kernel = await startKernel('alice'); // hers: the short token opens it
    const t = newToken('alice', 'short', ['--expires', '0.0001']); // about 8.6 s
    const ws = await tokenSocket('short', kernel);
    assert.equal(await status('short'), 200, 'works before it expires');
    const exp = tokens('alice').find((x) => x.id === t.id);
    assert.match(exp.expires, /UTC$/);
    await until(async () => (await status('short')) === 401, { timeoutMs: 20000, what: 'the token to expire' });
    const r = await api(ctx.server, 'short', 'GET', '/api/kernels');
    assert.equal(r.status, 401);
    assert.match(r.body.message, /expired/);
    assert.equal(await upgradeStatus('short', kernel), 401);
    const info = await closedAtOnce(ws, 'the expired token\'s socket');
    assert.equal(info.code, 1008);
    assert.match(info.reason, /expired/);
    assert.match(user('tokens', 'alice'), /\(expired\)/);
    assert.equal(await status('alice'), 200, 'alice\'s other tokens work');
    await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${kernel}`);
  });

  test('revoking a token ends its open kernel WebSocket at once; her other tokens and sockets stay', async () => {
    const a = newToken('alice', 'revoke-me');
    const kernel = await startKernel('alice');
    const doomed = await tokenSocket('revoke-me', kernel);
    const kept = await tokenSocket('laptop', kernel);
    user('revoke', 'alice', a.id);
    const info = await closedAtOnce(doomed, 'the revoked token\'s socket');
    assert.equal(info.code, 1008);
    assert.match(info.reason, /revoked/);
    assert.ok(!tokens('alice').some((x) => x.id === a.id), 'no longer listed');
    assert.equal(await status('revoke-me'), 403);
    assert.equal(await upgradeStatus('revoke-me', kernel), 403);
    assert.equal(kept.closed, false, 'the socket of another token stays open');
    await works(kept);
    assert.equal(await status('laptop'), 200);
    // An unknown id, and another user's token id, revoke nothing.
    assert.throws(() => user('revoke', 'alice', '0000000000'), /no token/);
    const bobs = tokens('bob')[0].id;
    assert.throws(() => user('revoke', 'alice', bobs), /no token/);
    assert.equal(await status('bob'), 200);
    await kept.close();
    await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${kernel}`);
  });

  test('revoke --all ends every token, session and WebSocket of the user', async () => {
    addUserWithPassword('carol', 'carol-pw-8812');
    const second = newToken('carol', 'second');
    const kernel = await startKernel('carol');
    const jar = await signIn('carol', 'carol-pw-8812');
    const byToken = await tokenSocket('second', kernel);
    const byCookie = await cookieSocket(jar, kernel);
    assert.equal((await browserFetch(ctx.server, jar, 'GET', '/api/contents')).status, 200);
    const out = user('revoke', 'carol', '--all');
    assert.match(out, /revoked 2 tokens of carol and ended 1 sessions/);
    assert.equal((await closedAtOnce(byToken, 'the token socket')).code, 1008);
    assert.equal((await closedAtOnce(byCookie, 'the cookie socket')).code, 1008);
    assert.equal(await status('carol'), 403);
    assert.equal(await status('second'), 403);
    assert.equal((await browserFetch(ctx.server, jar, 'GET', '/api/contents')).status, 403);
    assert.deepEqual(tokens('carol'), []);
    // Her password still signs her in: --all ends what exists, it locks nothing.
    assert.ok(await signIn('carol', 'carol-pw-8812'));
  });

  test('a password change ends the user\'s sessions and their WebSockets at once; tokens stay', async () => {
    addUserWithPassword('dave', 'dave-old-pw-1');
    const kernel = await startKernel('dave');
    const jar1 = await signIn('dave', 'dave-old-pw-1');
    const jar2 = await signIn('dave', 'dave-old-pw-1');
    const byCookie = await cookieSocket(jar1, kernel);
    const byToken = await tokenSocket('dave', kernel);
    labbookCli(['user', 'passwd', 'dave', '--data', ctx.server.dataDir], { input: 'dave-new-pw-2\n' });
    const info = await closedAtOnce(byCookie, 'the cookie socket');
    assert.equal(info.code, 1008);
    for (const jar of [jar1, jar2]) {
      assert.equal((await browserFetch(ctx.server, jar, 'GET', '/api/contents')).status, 403, 'the session has ended');
    }
    assert.equal(await signIn('dave', 'dave-old-pw-1'), null, 'the old password is refused');
    assert.ok(await signIn('dave', 'dave-new-pw-2'), 'the new one signs in');
    assert.equal(byToken.closed, false, 'a token is not a session: its socket stays');
    await works(byToken);
    await byToken.close();
  });

  test('disable stops the user\'s runtimes at once and refuses every sign-in; enable lets them back', async () => {
    addUserWithPassword('erin', 'erin-pw-5521');
    const kernel = await startKernel('erin');
    const ws = await tokenSocket('erin', kernel);
    await works(ws);
    assert.ok(runtimeAlive(kernel), 'her runtime runs');
    const out = user('disable', 'erin');
    assert.match(out, /disabled erin/);
    const info = await closedAtOnce(ws, 'her socket');
    assert.equal(info.code, 1008);
    assert.match(info.reason, /disabled|revoked/);
    // The command waited for the hub to stop her runtimes.
    await until(() => !runtimeAlive(kernel), { timeoutMs: 3000, what: 'her runtime to stop' });
    assert.equal(await status('erin'), 403);
    assert.equal(await signIn('erin', 'erin-pw-5521'), null, 'the password signs nobody in');
    assert.match(user('list'), /^erin\s.*\sdisabled$/m);
    user('enable', 'erin');
    assert.equal(await status('erin'), 200, 'her token works again');
    assert.ok(await signIn('erin', 'erin-pw-5521'));
    const list = await api(ctx.server, 'erin', 'GET', '/api/kernels');
    assert.ok(!list.body.some((k) => k.id === kernel), 'the stopped runtime stays stopped');
  });

  test('delete stops the runtimes and keeps the drive; --purge removes the drive, never beyond it', async () => {
    addUserWithPassword('frank', 'frank-pw-7');
    const put = await api(ctx.server, 'frank', 'PUT', '/api/contents/keep.txt', { type: 'file', format: 'text', content: 'mine\n' });
    assert.equal(put.status, 201, put.text);
    const kernel = await startKernel('frank');
    const ws = await tokenSocket('frank', kernel);
    const out = user('delete', 'frank');
    assert.match(out, /deleted frank; their drive is kept/);
    assert.equal((await closedAtOnce(ws, 'his socket')).code, 1008);
    assert.ok(!runtimeAlive(kernel), 'the command returned once his runtime had stopped');
    assert.equal(await status('frank'), 403);
    assert.equal(await signIn('frank', 'frank-pw-7'), null);
    assert.ok(!/^frank\s/m.test(user('list')));
    assert.equal(fs.readFileSync(path.join(ctx.server.drive('frank'), 'keep.txt'), 'utf8'), 'mine\n');
    assert.throws(() => user('tokens', 'frank'), /no user named 'frank'/);

    // A new user of the same name is somebody else: a fresh token, no old kernel.
    addUserWithPassword('frank', 'frank-pw-8');
    assert.equal(await status('frank'), 200);
    assert.equal((await api(ctx.server, 'frank', 'GET', `/api/kernels/${kernel}`)).status, 404);

    // --purge: the drive goes, but a symlink in it to something outside only loses itself.
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'labbook-it-outside-'));
    fs.writeFileSync(path.join(outside, 'precious.txt'), 'not frank\'s\n');
    fs.mkdirSync(path.join(ctx.server.drive('frank'), 'sub', 'deeper'), { recursive: true });
    fs.symlinkSync(outside, path.join(ctx.server.drive('frank'), 'sub', 'link-out'));
    fs.symlinkSync(path.join(outside, 'precious.txt'), path.join(ctx.server.drive('frank'), 'file-link'));
    const k2 = await startKernel('frank');
    const purged = user('delete', 'frank', '--purge');
    assert.match(purged, /deleted frank and their drive/);
    assert.ok(!fs.existsSync(ctx.server.drive('frank')), 'the drive is gone');
    assert.equal(fs.readFileSync(path.join(outside, 'precious.txt'), 'utf8'), 'not frank\'s\n');
    assert.ok(!runtimeAlive(k2));
    fs.rmSync(outside, { recursive: true, force: true });
    assert.ok(fs.existsSync(ctx.server.drive('bob')), 'another drive stays');
  });

  test('another user\'s token, session, socket and runtime were untouched by all of it', async () => {
    assert.equal(bob.socket.closed, false, `bob's token socket: ${JSON.stringify(bob.socket.closeInfo)}`);
    assert.equal(bob.cookieSocket.closed, false, `bob's cookie socket: ${JSON.stringify(bob.cookieSocket.closeInfo)}`);
    await works(bob.socket);
    assert.equal(await status('bob'), 200);
    assert.equal((await browserFetch(ctx.server, bob.jar, 'GET', '/api/contents')).status, 200);
    assert.ok(runtimeAlive(bob.kernel));
    assert.equal(tokens('bob').length, 1);
    await bob.socket.close();
    bob.cookieSocket.ws.close();
    await sleep(100);
  });

  test('a user deleted while the hub is down: their runtime is stopped when it starts again', async () => {
    addUserWithPassword('gus', 'gus-pw-1');
    const kernel = await startKernel('gus');
    await ctx.server.stop({ keepRuntimes: true });
    assert.ok(runtimeAlive(kernel), 'runtimes outlive the hub');
    const r = spawnSync(LABBOOK_BIN_PATH, ['user', 'delete', 'gus', '--data', ctx.server.dataDir], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /1 runtimes of gus are still recorded/);
    await ctx.server.restart();
    await until(() => !runtimeAlive(kernel), { timeoutMs: 10000, what: 'his runtime to stop' });
    assert.ok(runtimeAlive(bob.kernel), 'bob\'s runtime was taken back, not stopped');
    assert.equal(await status('bob'), 200);
  });
});

// The way it is deployed: started as root, the hub runs as its own user with the
// launcher starting sandboxed runtimes; the CLI (root) acts as the data folder's owner.
describe('revocation with privilege separation', labbookOnly, () => {
  const px = useServer({ name: 'revocation-privsep', users: ['alice', 'bob'], config: '[server]\nuser = labbook\n' });
  const cli = (...args) => labbookCli(['user', ...args, '--data', px.server.dataDir]);
  const start = async (u) => {
    const k = await api(px.server, u, 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(k.status, 201, k.text);
    return k.body.id;
  };

  test('revoke --all closes her socket; delete --purge stops her runtime and removes her drive; bob goes on', async () => {
    const ka = await start('alice');
    const kb = await start('bob');
    const wa = rawKernelSocket(px.server, 'alice', ka);
    const wb = rawKernelSocket(px.server, 'bob', kb);
    await wa.opened;
    await wb.opened;
    const id = wa.execute("open('/content/drive/MyDrive/made-inside.txt', 'w').write('x')").header.msg_id;
    await wa.waitFor((m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' &&
      m.parent_header?.msg_id === id, { what: 'the write' });
    assert.ok(fs.existsSync(path.join(px.server.drive('alice'), 'made-inside.txt')));
    assert.match(cli('revoke', 'alice', '--all'), /revoked 1 tokens of alice/);
    await until(() => wa.closed, { timeoutMs: AT_ONCE_MS, intervalMs: 25, what: 'her socket to close' });
    assert.equal(wa.closeInfo.code, 1008);
    assert.equal((await api(px.server, 'alice', 'GET', '/api/contents')).status, 403);
    assert.match(cli('delete', 'alice', '--purge'), /deleted alice and their drive/);
    assert.ok(!fs.existsSync(px.server.drive('alice')), 'her drive is gone');
    const mark = path.join(px.server.dataDir, 'runtimes', ka);
    assert.ok(!px.server.runtimeProcs().some((p) => {
      try { return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(mark); } catch { return false; }
    }), 'her runtime has stopped');
    assert.equal(wb.closed, false);
    const msg = wb.execute('print(6*7)').header.msg_id;
    await wb.waitFor((m) => m.header?.msg_type === 'stream' && m.parent_header?.msg_id === msg, { what: '42' });
    assert.equal((await api(px.server, 'bob', 'GET', '/api/contents')).status, 200);
    await wb.close();
  });
});
