// Signing in with a password or a login link, the session cookie, the XSRF
// double-submit check on cookie-authenticated changes, sign-out, where the
// server redirects after sign-in, and no secret in the server's log.
//
// labbook-only (skipped on jupyter_server): users, passwords and the
// labbook_session cookie are labbook's own; jupyter_server 1.23 also prints
// its token in its log at start-up by design.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { useServer, RUN_LABBOOK_ONLY } from './lib/server.mjs';
import { api, browserFetch, CookieJar, setCookieLines, rawKernelSocket, withTimeout } from './lib/clients.mjs';

const ALICE_PW = 'correct horse 9 battery';
const CAROL_PW = 'c4r0l-s3cret-pw';
const WRONG_PW = 'wrong-pw-Zq81x';
const labbookOnly = RUN_LABBOOK_ONLY ? {} : { skip: 'users, passwords and the session cookie are labbook-only' };

const ctx = useServer({
  name: 'auth_login',
  users: ['alice', 'bob'],
  passwords: { alice: ALICE_PW, carol: CAROL_PW },
  // debug: the most the server ever logs, for the "no secret in the log" test.
  config: '[server]\nlog_level = debug\n',
});

/** Loads the sign-in form like a browser; returns the hidden _xsrf field's value. */
async function loadForm(jar, next) {
  const r = await browserFetch(ctx.server, jar, 'GET', next ? `/login?next=${encodeURIComponent(next)}` : '/login');
  assert.equal(r.status, 200);
  const m = r.text.match(/name="_xsrf" value="([^"]*)"/);
  assert.ok(m, 'the form has a hidden _xsrf field');
  return m[1];
}

/** Signs in through the form; returns the POST's response. */
async function signIn(jar, username, password, { next } = {}) {
  const xsrf = await loadForm(jar, next);
  const form = { username, password, _xsrf: xsrf };
  if (next !== undefined) form.next = next;
  return browserFetch(ctx.server, jar, 'POST', '/login', { form });
}

/** Where a browser goes after following `location` from this server. */
function resolvedTarget(location) {
  return new URL(location, ctx.server.baseUrl + '/login');
}

describe('password sign-in', labbookOnly, () => {
  test('GET /login is an HTML form and sets an _xsrf cookie equal to its hidden field', async () => {
    const jar = new CookieJar();
    const r = await browserFetch(ctx.server, jar, 'GET', '/login');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/html/);
    assert.match(r.text, /<form[^>]*method="post"[^>]*action="\/login"/);
    for (const field of ['username', 'password', '_xsrf', 'next']) {
      assert.match(r.text, new RegExp(`name="${field}"`), `the form has a ${field} field`);
    }
    assert.match(r.text, /type="password"/);
    const xsrf = jar.get('_xsrf');
    assert.ok(xsrf && xsrf.length >= 16, `an _xsrf cookie is set (got ${JSON.stringify(jar.setCookies)})`);
    assert.match(r.text, new RegExp(`name="_xsrf" value="${xsrf}"`));
    assert.equal(jar.get('labbook_session'), undefined, 'no session before signing in');
  });

  test('the right password: 302 with an HttpOnly, SameSite=Lax session cookie that works', async () => {
    const jar = new CookieJar();
    const r = await signIn(jar, 'alice', ALICE_PW);
    assert.equal(r.status, 302, r.text);
    assert.equal(resolvedTarget(r.location).origin, ctx.server.baseUrl);
    const lines = setCookieLines(r.headers, 'labbook_session');
    assert.equal(lines.length, 1, `one session cookie: ${JSON.stringify(r.headers.getSetCookie())}`);
    const attrs = lines[0].split(';').map((x) => x.trim().toLowerCase());
    assert.ok(attrs.includes('httponly'), `HttpOnly: ${lines[0]}`);
    assert.ok(attrs.includes('samesite=lax'), `SameSite=Lax: ${lines[0]}`);
    assert.ok(attrs.includes('path=/'), `Path=/: ${lines[0]}`);
    const session = jar.get('labbook_session');
    assert.ok(session && session.length >= 20, 'a long session id');

    const c = await browserFetch(ctx.server, jar, 'GET', '/api/contents');
    assert.equal(c.status, 200, c.text);
    assert.equal(c.body.type, 'directory');
    const me = await browserFetch(ctx.server, jar, 'GET', '/api/me');
    assert.equal(me.status, 200);
    assert.equal(me.body.identity.username, 'alice');
    // The cookie alone, without the rest of the jar, is what authenticates.
    const only = new CookieJar();
    only.cookies.set('labbook_session', session);
    assert.equal((await browserFetch(ctx.server, only, 'GET', '/api/contents')).status, 200);
  });

  test('a wrong password or an unknown user: 401, the form again, no session cookie', async () => {
    for (const [user, pw] of [['alice', WRONG_PW], ['alice', ''], ['nobody', ALICE_PW], ['bob', ALICE_PW]]) {
      const jar = new CookieJar();
      const r = await signIn(jar, user, pw);
      assert.equal(r.status, 401, `${user}/${JSON.stringify(pw)}: ${r.status}`);
      assert.match(r.text, /<form/, 'the form is shown again');
      assert.deepEqual(setCookieLines(r.headers, 'labbook_session'), []);
      assert.equal(jar.get('labbook_session'), undefined);
      assert.equal((await browserFetch(ctx.server, jar, 'GET', '/api/contents')).status, 403);
    }
  });

  test('POST /login without the _xsrf field, or with one unlike the cookie: 403, no session', async () => {
    const jar = new CookieJar();
    const xsrf = await loadForm(jar);
    const missing = await browserFetch(ctx.server, jar, 'POST', '/login',
      { form: { username: 'alice', password: ALICE_PW } });
    assert.equal(missing.status, 403, missing.text);
    assert.deepEqual(setCookieLines(missing.headers, 'labbook_session'), []);
    const other = await browserFetch(ctx.server, jar, 'POST', '/login',
      { form: { username: 'alice', password: ALICE_PW, _xsrf: xsrf.replace(/.$/, (ch) => (ch === '0' ? '1' : '0')) } });
    assert.equal(other.status, 403, other.text);
    assert.deepEqual(setCookieLines(other.headers, 'labbook_session'), []);
    // A form field matching no cookie at all (a cross-site form post).
    const noCookie = await browserFetch(ctx.server, null, 'POST', '/login',
      { form: { username: 'alice', password: ALICE_PW, _xsrf: xsrf } });
    assert.equal(noCookie.status, 403, noCookie.text);
    assert.deepEqual(setCookieLines(noCookie.headers, 'labbook_session'), []);
  });

  test('a user made with "user add --password-stdin" signs in', async () => {
    const jar = new CookieJar();
    const r = await signIn(jar, 'carol', CAROL_PW);
    assert.equal(r.status, 302, r.text);
    const me = await browserFetch(ctx.server, jar, 'GET', '/api/me');
    assert.equal(me.body.identity.username, 'carol');
    const bad = await signIn(new CookieJar(), 'carol', ALICE_PW);
    assert.equal(bad.status, 401);
  });
});

describe('XSRF: cookie-authenticated changes need X-XSRFToken', labbookOnly, () => {
  test('PUT, POST and DELETE without the header: 403 and nothing happens; with it: done', async () => {
    const jar = new CookieJar();
    assert.equal((await signIn(jar, 'alice', ALICE_PW)).status, 302);
    const xsrf = jar.get('_xsrf');
    assert.ok(xsrf);
    const file = { type: 'file', format: 'text', content: 'by cookie\n' };
    const onDisk = path.join(ctx.server.drive('alice'), 'x.txt');

    const no = await browserFetch(ctx.server, jar, 'PUT', '/api/contents/x.txt', { json: file });
    assert.equal(no.status, 403, no.text);
    assert.equal(typeof no.body?.message, 'string');
    assert.ok(!fs.existsSync(onDisk), 'nothing written without the header');
    const wrong = await browserFetch(ctx.server, jar, 'PUT', '/api/contents/x.txt',
      { json: file, headers: { 'X-XSRFToken': 'f'.repeat(xsrf.length) } });
    assert.equal(wrong.status, 403, wrong.text);
    assert.ok(!fs.existsSync(onDisk));

    const ok = await browserFetch(ctx.server, jar, 'PUT', '/api/contents/x.txt',
      { json: file, headers: { 'X-XSRFToken': xsrf } });
    assert.ok(ok.status === 201 || ok.status === 200, `${ok.status} ${ok.text}`);
    assert.equal(fs.readFileSync(onDisk, 'utf8'), 'by cookie\n');

    const k = await browserFetch(ctx.server, jar, 'POST', '/api/kernels', { json: { name: 'python3' } });
    assert.equal(k.status, 403, k.text);
    assert.deepEqual((await api(ctx.server, 'alice', 'GET', '/api/kernels')).body, [], 'no kernel started');

    const del = await browserFetch(ctx.server, jar, 'DELETE', '/api/contents/x.txt');
    assert.equal(del.status, 403);
    assert.ok(fs.existsSync(onDisk), 'not deleted without the header');
    const del2 = await browserFetch(ctx.server, jar, 'DELETE', '/api/contents/x.txt', { headers: { 'X-XSRFToken': xsrf } });
    assert.equal(del2.status, 204);
    assert.ok(!fs.existsSync(onDisk));
  });

  test('token-authenticated changes need no XSRF header', async () => {
    const r = await api(ctx.server, 'alice', 'PUT', '/api/contents/t.txt', { type: 'file', format: 'text', content: 't' });
    assert.equal(r.status, 201, r.text);
    assert.equal(fs.readFileSync(path.join(ctx.server.drive('alice'), 't.txt'), 'utf8'), 't');
  });
});

describe('login link, sign-out and redirects', labbookOnly, () => {
  test('/login?token=T sets a session cookie and redirects', async () => {
    const jar = new CookieJar();
    const r = await browserFetch(ctx.server, jar, 'GET', `/login?token=${ctx.server.tokens.bob}`);
    assert.equal(r.status, 302, r.text);
    assert.equal(resolvedTarget(r.location).origin, ctx.server.baseUrl);
    assert.ok(jar.get('labbook_session'), 'a session cookie');
    const me = await browserFetch(ctx.server, jar, 'GET', '/api/me');
    assert.equal(me.body.identity.username, 'bob');
    // A wrong token gives no session.
    const bad = new CookieJar();
    const b = await browserFetch(ctx.server, bad, 'GET', '/login?token=not-a-token');
    assert.notEqual(b.status, 302);
    assert.equal(bad.get('labbook_session'), undefined);
  });

  test('a browser signed in by /login?token= gets an _xsrf cookie and can save a file', async () => {
    // What a browser does: follow the login link, load the page it lands on,
    // then save, sending the _xsrf cookie back as X-XSRFToken (JupyterLab does this).
    const jar = new CookieJar();
    const r = await browserFetch(ctx.server, jar, 'GET', `/login?token=${ctx.server.tokens.bob}`);
    assert.equal(r.status, 302);
    const landing = resolvedTarget(r.location);
    await browserFetch(ctx.server, jar, 'GET', landing.pathname + landing.search);
    const xsrf = jar.get('_xsrf');
    assert.ok(xsrf, `the browser has an _xsrf cookie to send (cookies set: ${JSON.stringify(jar.setCookies.map((l) => l.split('=')[0]))})`);
    const put = await browserFetch(ctx.server, jar, 'PUT', '/api/contents/link.txt',
      { json: { type: 'file', format: 'text', content: 'via link' }, headers: { 'X-XSRFToken': xsrf } });
    assert.equal(put.status, 201, put.text);
  });

  test('/logout ends the session: the old cookie no longer works', async () => {
    const jar = new CookieJar();
    assert.equal((await signIn(jar, 'alice', ALICE_PW)).status, 302);
    const old = jar.get('labbook_session');
    assert.equal((await browserFetch(ctx.server, jar, 'GET', '/api/contents')).status, 200);
    const out = await browserFetch(ctx.server, jar, 'GET', '/logout');
    assert.equal(out.status, 302);
    assert.equal(jar.get('labbook_session'), undefined, 'the browser is told to drop the cookie');
    const replay = new CookieJar();
    replay.cookies.set('labbook_session', old);
    const r = await browserFetch(ctx.server, replay, 'GET', '/api/contents');
    assert.equal(r.status, 403, 'the old cookie is refused by the server, not just forgotten by the browser');
    const page = await browserFetch(ctx.server, replay, 'GET', '/');
    assert.equal(page.status, 302);
    assert.match(page.location, /^\/login/);
  });

  test('after sign-in the redirect stays on this server, whatever next= says', async () => {
    const evil = [
      '//evil.example', '//evil.example/path', 'http://evil.example/', 'https:evil.example',
      '/\\evil.example', '\\\\evil.example', '/\t/evil.example', '/\n/evil.example', ' //evil.example',
      '/%2F/evil.example', 'javascript:alert(1)',
    ];
    for (const next of evil) {
      const jar = new CookieJar();
      const r = await signIn(jar, 'alice', ALICE_PW, { next });
      assert.equal(r.status, 302, `next=${JSON.stringify(next)}`);
      const to = resolvedTarget(r.location);
      assert.equal(to.origin, ctx.server.baseUrl,
        `next=${JSON.stringify(next)} sent the browser to ${JSON.stringify(r.location)} (${to.href})`);
    }
    // The same through a login link.
    for (const next of ['//evil.example', '/\t/evil.example']) {
      const r = await browserFetch(ctx.server, new CookieJar(), 'GET',
        `/login?token=${ctx.server.tokens.alice}&next=${encodeURIComponent(next)}`);
      assert.equal(r.status, 302);
      assert.equal(resolvedTarget(r.location).origin, ctx.server.baseUrl,
        `login link next=${JSON.stringify(next)} sent the browser to ${JSON.stringify(r.location)}`);
    }
    // A path on this server is followed.
    const ok = await signIn(new CookieJar(), 'alice', ALICE_PW, { next: '/tree?x=1' });
    assert.equal(ok.status, 302);
    assert.equal(ok.location, '/tree?x=1');
  });
});

test('no token, password or cookie appears in the server log', labbookOnly, async () => {
  const s = ctx.server;
  const secrets = { 'alice token': s.tokens.alice, 'bob token': s.tokens.bob, 'alice password': ALICE_PW,
    'carol password': CAROL_PW, 'wrong password': WRONG_PW };
  // Tokens in headers and in ?token=, right and wrong.
  await api(s, 'alice', 'GET', '/api/contents');
  await fetch(`${s.baseUrl}/api/contents?token=${s.tokens.bob}`).then((r) => r.arrayBuffer());
  const wrongTok = 'f00d' + s.tokens.alice.slice(4);
  secrets['wrong token'] = wrongTok;
  await fetch(`${s.baseUrl}/api/contents?token=${wrongTok}`).then((r) => r.arrayBuffer());
  await fetch(`${s.baseUrl}/api/kernels`, { headers: { Authorization: `token ${wrongTok}` } }).then((r) => r.arrayBuffer());
  // Passwords and cookies.
  const jar = new CookieJar();
  assert.equal((await signIn(jar, 'alice', ALICE_PW)).status, 302);
  await signIn(new CookieJar(), 'alice', WRONG_PW);
  await signIn(new CookieJar(), 'nobody', WRONG_PW);
  secrets['session cookie'] = jar.get('labbook_session');
  secrets['xsrf cookie'] = jar.get('_xsrf');
  await browserFetch(s, jar, 'GET', '/api/contents');
  await browserFetch(s, jar, 'PUT', '/api/contents/log.txt',
    { json: { type: 'file', format: 'text', content: 'x' }, headers: { 'X-XSRFToken': jar.get('_xsrf') } });
  // A kernel WebSocket with ?token=, and one refused with a wrong token.
  const k = await api(s, 'alice', 'POST', '/api/kernels', { name: 'python3' });
  assert.equal(k.status, 201);
  const c = rawKernelSocket(s, 'alice', k.body.id);
  try {
    await c.opened;
    const req = c.execute('1+1');
    await c.waitFor((m) => m.header?.msg_type === 'execute_reply' && m.parent_header?.msg_id === req.header.msg_id,
      { what: 'execute_reply', timeoutMs: 30000 });
  } finally {
    await c.close();
  }
  await withTimeout(new Promise((resolve) => {
    const ws = new WebSocket(`${s.wsUrl}/api/kernels/${k.body.id}/channels?token=${wrongTok}`);
    ws.on('error', resolve);
    ws.on('unexpected-response', (req) => { req.destroy(); resolve(); });
    ws.on('open', () => { ws.close(); resolve(); });
  }), 10000, 'refused websocket');
  await api(s, 'alice', 'DELETE', `/api/kernels/${k.body.id}`);

  const log = s.log();
  assert.ok(log.includes('/api/contents'), 'the log records requests (the test reads the right log)');
  for (const [what, value] of Object.entries(secrets)) {
    assert.ok(value && value.length >= 8, `${what} is a real secret`);
    assert.ok(!log.includes(value), `the ${what} appears in the server log (${s.logFile})`);
  }
});
