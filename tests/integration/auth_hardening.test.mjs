// Sign-in that resists guessing and forgery: password checks that do not stall
// the hub, the same answer for unknown and known users, rate limits per user and
// per address (429), an XSRF token bound to the session, same-origin checks and
// no cross-site form bodies on cookie-authenticated changes, and sign-in links
// (/login?token= and Jupyter's /tree?token=) that sign in, drop the token from
// the address, say when they are invalid, and never switch a signed-in browser
// to another account without asking.
//
// labbook-only: users, passwords, cookies and limits are labbook's own.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { useServer, RUN_LABBOOK_ONLY } from './lib/server.mjs';
import { api, CookieJar, browserFetch } from './lib/clients.mjs';

const labbookOnly = RUN_LABBOOK_ONLY ? {} : { skip: 'users, passwords and sign-in limits are labbook-only' };
const PW = { alice: 'alice-pw-3141', bob: 'bob-pw-2718', dave: 'dave-pw-1618', erin: 'erin-pw-1414' };

const ctx = useServer({
  name: 'auth_hardening',
  users: ['alice', 'bob', 'dave', 'erin', 'carl'], // carl: a token, no password
  passwords: PW,
  config: '[server]\nlogin_failures_per_user = 4\nlogin_failures_per_address = 10\n',
});

/**
 * An HTTP request like a browser's (cookies from jar, redirects not followed), sent
 * from the loopback address `from` so that each test is its own client address.
 * Returns {status, headers, text, body (JSON or null), location}.
 */
function req(method, path, { jar, form, json, headers = {}, from = '127.0.0.1', body: raw, type } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (jar && jar.header()) h.Cookie = jar.header();
    let body;
    if (form) { body = new URLSearchParams(form).toString(); h['Content-Type'] = 'application/x-www-form-urlencoded'; }
    if (json !== undefined) { body = JSON.stringify(json); h['Content-Type'] = 'application/json'; }
    if (raw !== undefined) { body = raw; h['Content-Type'] = type; }
    if (body !== undefined) h['Content-Length'] = Buffer.byteLength(body);
    const r = http.request({ host: '127.0.0.1', port: ctx.server.port, method, path, headers: h, localAddress: from, timeout: 30000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const setc = res.headers['set-cookie'] || [];
        if (jar) jar.update({ getSetCookie: () => setc });
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed = null;
        try { parsed = JSON.parse(text); } catch { parsed = null; }
        resolve({ status: res.statusCode, headers: res.headers, text, body: parsed, location: res.headers.location, setCookies: setc });
      });
    });
    r.on('timeout', () => r.destroy(new Error('request timed out')));
    r.on('error', reject);
    if (body !== undefined) r.write(body);
    r.end();
  });
}

/** Loads the sign-in form into jar and posts name/password from `from`. */
async function signIn(name, password, { jar = new CookieJar(), from } = {}) {
  const page = await req('GET', '/login', { jar, from });
  const xsrf = page.text.match(/name="_xsrf" value="([^"]*)"/)[1];
  const r = await req('POST', '/login', { jar, from, form: { username: name, password, _xsrf: xsrf } });
  return { ...r, jar };
}

async function me(jar) {
  const r = await req('GET', '/api/me', { jar });
  return r.status === 200 ? r.body.identity.username : null;
}

describe('password checks', labbookOnly, () => {
  test('the hub answers /api while sign-ins are being hashed', async () => {
    const from = '127.0.0.10';
    // Eight wrong passwords at once (within the limits: four each for two users).
    const logins = [];
    for (const u of ['dave', 'erin']) for (let i = 0; i < 4; i++) logins.push(signIn(u, `wrong-${i}`, { from }));
    let worst = 0;
    const probe = (async () => {
      await new Promise((r) => setTimeout(r, 50));
      for (let i = 0; i < 10; i++) {
        const t0 = Date.now();
        const r = await req('GET', '/api');
        assert.equal(r.status, 200);
        worst = Math.max(worst, Date.now() - t0);
        await new Promise((res) => setTimeout(res, 20));
      }
    })();
    const results = await Promise.all(logins);
    await probe;
    for (const r of results) assert.equal(r.status, 401, r.text.slice(0, 200));
    assert.ok(worst < 600, `GET /api took up to ${worst} ms while eight sign-ins were checked`);
  });

  test('an unknown user and a wrong password get the same answer', async () => {
    const from = '127.0.0.15';
    const known = await signIn('alice', 'not-her-password', { from });
    const unknown = await signIn('nobody-here', 'not-her-password', { from });
    const noPassword = await signIn('carl', 'x', { from });
    const strip = (t) => t.replace(/value="[0-9a-f]{32}"/g, 'value=""');
    for (const r of [unknown, noPassword]) {
      assert.equal(r.status, known.status);
      assert.equal(strip(r.text), strip(known.text));
      assert.deepEqual(r.setCookies.filter((c) => c.startsWith('labbook_session=')), []);
    }
  });
});

describe('sign-in rate limits', labbookOnly, () => {
  test('failures per user: then 429 with Retry-After, even with the right password and from elsewhere', async () => {
    for (let i = 0; i < 4; i++) assert.equal((await signIn('bob', `guess-${i}`, { from: '127.0.0.11' })).status, 401);
    const r = await signIn('bob', `guess-5`, { from: '127.0.0.11' });
    assert.equal(r.status, 429, r.text.slice(0, 300));
    assert.match(r.text, /Too many failed sign-ins/);
    assert.ok(Number(r.headers['retry-after']) > 0, `Retry-After: ${r.headers['retry-after']}`);
    const right = await signIn('bob', PW.bob, { from: '127.0.0.13' });
    assert.equal(right.status, 429, 'the lock holds for the user from any address');
    assert.equal(await me(right.jar), null);
    // An unknown name is limited the same way.
    for (let i = 0; i < 4; i++) assert.equal((await signIn('ghost', `g${i}`, { from: '127.0.0.16' })).status, 401);
    assert.equal((await signIn('ghost', 'g5', { from: '127.0.0.16' })).status, 429);
    // Others are not affected.
    const alice = await signIn('alice', PW.alice, { from: '127.0.0.13' });
    assert.equal(alice.status, 302);
  });

  test('failures per address: then 429 for any name from it, not for other addresses', async () => {
    const from = '127.0.0.12';
    for (let i = 0; i < 10; i++) assert.equal((await signIn(`name${i}`, 'pw', { from })).status, 401);
    const r = await signIn('alice', PW.alice, { from });
    assert.equal(r.status, 429);
    assert.equal((await signIn('alice', PW.alice, { from: '127.0.0.14' })).status, 302);
  });
});

describe('cookie-authenticated changes', labbookOnly, () => {
  const file = { type: 'file', format: 'text', content: 'x' };

  test('the XSRF token is bound to the session: a matching cookie set by another site is refused', async () => {
    const { jar, status } = await signIn('alice', PW.alice, { from: '127.0.0.20' });
    assert.equal(status, 302);
    const real = jar.get('_xsrf');
    assert.ok(real);
    // A page of another site on the same host can set _xsrf; it cannot know the session's token.
    const forged = new CookieJar();
    forged.cookies.set('labbook_session', jar.get('labbook_session'));
    forged.cookies.set('_xsrf', 'attacker-chosen-value');
    const r = await req('PUT', '/api/contents/forged.txt', { jar: forged, json: file, headers: { 'X-XSRFToken': 'attacker-chosen-value' } });
    assert.equal(r.status, 403, r.text);
    const ok = await req('PUT', '/api/contents/real.txt', { jar, json: file, headers: { 'X-XSRFToken': real } });
    assert.equal(ok.status, 201, ok.text);
    // The page fixes a browser's _xsrf cookie that is not the session's.
    const page = await req('GET', '/tree', { jar: forged });
    assert.equal(page.status, 200);
    assert.equal(forged.get('_xsrf'), real);
  });

  test('a change from another origin, or sent cross-site, is refused', async () => {
    const { jar } = await signIn('alice', PW.alice, { from: '127.0.0.21' });
    const x = { 'X-XSRFToken': jar.get('_xsrf') };
    for (const extra of [{ Origin: 'http://evil.example' }, { Origin: 'null' }, { 'Sec-Fetch-Site': 'cross-site' },
      { 'Sec-Fetch-Site': 'same-site' }]) {
      const r = await req('PUT', '/api/contents/o.txt', { jar, json: file, headers: { ...x, ...extra } });
      assert.equal(r.status, 403, `${JSON.stringify(extra)}: ${r.status} ${r.text}`);
    }
    const same = await req('PUT', '/api/contents/o.txt', { jar, json: file,
      headers: { ...x, Origin: ctx.server.baseUrl, 'Sec-Fetch-Site': 'same-origin' } });
    assert.equal(same.status, 201, same.text);
    // The sign-in form too.
    const page = await req('GET', '/login', { jar: new CookieJar() });
    const xsrf = page.text.match(/name="_xsrf" value="([^"]*)"/)[1];
    const fjar = new CookieJar();
    fjar.cookies.set('_xsrf', xsrf);
    const post = await req('POST', '/login', { jar: fjar, form: { username: 'alice', password: PW.alice, _xsrf: xsrf },
      headers: { Origin: 'http://evil.example' } });
    assert.equal(post.status, 403);
  });

  test('a text/plain or form body is refused on JSON routes', async () => {
    const { jar } = await signIn('alice', PW.alice, { from: '127.0.0.22' });
    const x = { 'X-XSRFToken': jar.get('_xsrf') };
    const before = (await api(ctx.server, 'alice', 'GET', '/api/kernels')).body.length;
    for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const r = await req('POST', '/api/kernels', { jar, headers: x, body: '{"name":"python3"}', type });
      assert.equal(r.status, 415, `${type}: ${r.status} ${r.text}`);
    }
    const after = await api(ctx.server, 'alice', 'GET', '/api/kernels');
    for (const k of after.body) await api(ctx.server, 'alice', 'DELETE', `/api/kernels/${k.id}`);
    assert.equal(after.body.length, before, 'no kernel started');
  });
});

describe('sign-in links', labbookOnly, () => {
  const tok = (u) => ctx.server.tokens[u];

  test('/login?token= in a browser signed in as someone else asks first', async () => {
    const { jar } = await signIn('alice', PW.alice, { from: '127.0.0.30' });
    const r = await req('GET', `/login?token=${tok('bob')}&next=/tree`, { jar });
    assert.equal(r.status, 200, 'not switched silently');
    assert.match(r.text, /signed in as <b>alice<\/b>/);
    assert.match(r.text, /Switch to bob/);
    assert.equal(await me(jar), 'alice');
    // Switching is a same-origin POST with the session's token.
    const xsrf = r.text.match(/name="_xsrf" value="([^"]*)"/)[1];
    const sw = await req('POST', '/login', { jar, form: { token: tok('bob'), _xsrf: xsrf, next: '/tree' } });
    assert.equal(sw.status, 302);
    assert.equal(sw.location, '/tree');
    assert.equal(await me(jar), 'bob');
    // Without the session's token it is refused.
    const { jar: j2 } = await signIn('alice', PW.alice, { from: '127.0.0.30' });
    const bad = await req('POST', '/login', { jar: j2, form: { token: tok('bob'), _xsrf: 'f'.repeat(32) } });
    assert.equal(bad.status, 403);
    assert.equal(await me(j2), 'alice');
  });

  test('a page URL with ?token= signs in and drops the token from the address', async () => {
    for (const [path, to] of [['/?token=T', '/'], ['/tree?token=T', '/tree'], ['/tree?token=T&x=1', '/tree?x=1'],
      ['/notebooks/a%20b.ipynb?token=T', '/notebooks/a%20b.ipynb']]) {
      const jar = new CookieJar();
      const r = await req('GET', path.replace('T', tok('bob')), { jar });
      assert.equal(r.status, 302, `${path}: ${r.status}`);
      assert.equal(r.location, to);
      assert.ok(jar.get('labbook_session'), `${path}: a session cookie`);
      assert.equal(await me(jar), 'bob');
      // The assets the page loads come with the cookie now.
      const page = await req('GET', to, { jar });
      assert.equal(page.status, 200);
    }
  });

  test('a mistyped token link says it is invalid', async () => {
    for (const path of ['/tree?token=not-a-token', '/?token=x', '/login?token=wrong']) {
      const jar = new CookieJar();
      const r = await req('GET', path, { jar });
      assert.equal(r.status, 401, `${path}: ${r.status}`);
      assert.match(r.text, /sign-in link is not valid/);
      assert.match(r.text, /<form/);
      assert.equal(jar.get('labbook_session'), undefined);
    }
  });

  test('a page link for the user already signed in goes on; for another user it asks', async () => {
    const { jar } = await signIn('alice', PW.alice, { from: '127.0.0.31' });
    const session = jar.get('labbook_session');
    const same = await req('GET', `/tree?token=${tok('alice')}`, { jar });
    assert.equal(same.status, 302);
    assert.equal(same.location, '/tree');
    assert.equal(jar.get('labbook_session'), session, 'no new session');
    const other = await req('GET', `/tree?token=${tok('bob')}`, { jar });
    assert.equal(other.status, 200);
    assert.match(other.text, /Switch to bob/);
    assert.equal(await me(jar), 'alice');
  });

  test('browserFetch: the existing login link still works', async () => {
    const jar = new CookieJar();
    const r = await browserFetch(ctx.server, jar, 'GET', `/login?token=${tok('dave')}`);
    assert.equal(r.status, 302);
  });
});
