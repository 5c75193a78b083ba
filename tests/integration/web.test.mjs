// The browser UI's files, served by the hub from [server] web_dir: index.html for
// the UI's routes, /assets/ files with their content types and long caching, and
// nothing outside web_dir/assets whatever the path says. labbook-only.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { useServer, RUN_LABBOOK_ONLY } from './lib/server.mjs';

const labbookOnly = RUN_LABBOOK_ONLY ? {} : { skip: 'the UI and web_dir are labbook-only' };

// A small web_dir of our own, so this test does not depend on the UI's build.
const web = fs.mkdtempSync(path.join(os.tmpdir(), 'labbook-web-'));
fs.mkdirSync(path.join(web, 'assets', 'sub'), { recursive: true });
fs.writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>ui</title>');
fs.writeFileSync(path.join(web, 'assets', 'app-ABC123.js'), 'console.log(1)');
fs.writeFileSync(path.join(web, 'assets', 'style-X.css'), 'body{}');
fs.writeFileSync(path.join(web, 'assets', 'style-X.css.gz'), zlib.gzipSync('body{}'));
fs.writeFileSync(path.join(web, 'assets', 'f.woff2'), 'font');
fs.writeFileSync(path.join(web, 'assets', 'frame-1.html'), '<p>frame</p>');
fs.writeFileSync(path.join(web, 'assets', 'sub', 'a.svg'), '<svg/>');
fs.writeFileSync(path.join(web, 'secret.txt'), 'not an asset');
fs.symlinkSync(path.join(web, 'secret.txt'), path.join(web, 'assets', 'link.js'));
after(() => fs.rmSync(web, { recursive: true, force: true }));

const ctx = useServer({ name: 'web', config: `[server]\nweb_dir = ${web}\n` });

/** GET with the path sent byte for byte; returns {status, headers, text}. */
function get(rawPath, { auth = true, headers = {} } = {}) {
  const s = ctx.server;
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: s.port, method: 'GET', path: rawPath,
      headers: { ...(auth ? { Authorization: `token ${s.tokens.alice}` } : {}), ...headers },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, raw: Buffer.concat(chunks), text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the UI\'s routes answer index.html, not cached, with the UI\'s CSP', labbookOnly, async () => {
  for (const p of ['/', '/tree', '/tree/a/b', '/notebooks/Colab%20Notebooks/x.ipynb', '/lab', '/edit/src/train.py']) {
    const r = await get(p);
    assert.equal(r.status, 200, p);
    assert.match(r.headers['content-type'], /^text\/html/, p);
    assert.equal(r.text, '<!doctype html><title>ui</title>', p);
    assert.equal(r.headers['cache-control'], 'no-store', p);
    assert.match(r.headers['content-security-policy'], /script-src 'self'/, p);
    assert.equal(r.headers['x-frame-options'], 'deny', p);
  }
});

test('signed out, a page redirects to /login and back to it afterwards', labbookOnly, async () => {
  const r = await get('/notebooks/a%20b.ipynb', { auth: false });
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, '/login?next=/notebooks/a%20b.ipynb');
  const a = await get('/assets/app-ABC123.js', { auth: false });
  assert.equal(a.status, 302);
});

test('assets: content types by extension, cached for a year (their names carry a hash)', labbookOnly, async () => {
  const cases = [['app-ABC123.js', /^text\/javascript/], ['style-X.css', /^text\/css/], ['f.woff2', /^font\/woff2$/], ['sub/a.svg', /^image\/svg\+xml$/]];
  for (const [name, type] of cases) {
    const r = await get(`/assets/${name}`);
    assert.equal(r.status, 200, name);
    assert.match(r.headers['content-type'], type, name);
    assert.equal(r.headers['cache-control'], 'public, max-age=31536000, immutable', name);
    assert.equal(r.headers['x-content-type-options'], 'nosniff', name);
  }
});

test('a precompressed NAME.gz is sent to clients that take gzip, the plain file to others', labbookOnly, async () => {
  const gz = await get('/assets/style-X.css', { headers: { 'Accept-Encoding': 'br, gzip, deflate' } });
  assert.equal(gz.status, 200);
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.match(gz.headers['content-type'], /^text\/css/);
  assert.equal(zlib.gunzipSync(gz.raw).toString(), 'body{}');
  for (const ae of [undefined, 'identity', 'gzip;q=0, identity']) {
    const r = await get('/assets/style-X.css', { headers: ae ? { 'Accept-Encoding': ae } : {} });
    assert.equal(r.headers['content-encoding'], undefined, String(ae));
    assert.equal(r.text, 'body{}', String(ae));
  }
  // A file without a .gz beside it is sent as it is.
  const js = await get('/assets/app-ABC123.js', { headers: { 'Accept-Encoding': 'gzip' } });
  assert.equal(js.headers['content-encoding'], undefined);
  assert.equal(js.text, 'console.log(1)');
});

test('the output frame page gets a sandbox CSP and may be framed by the UI only', labbookOnly, async () => {
  const r = await get('/assets/frame-1.html');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-security-policy'], /^sandbox allow-scripts/);
  assert.doesNotMatch(r.headers['content-security-policy'], /allow-same-origin/);
  assert.match(r.headers['content-security-policy'], /frame-ancestors 'self'/);
  assert.equal(r.headers['x-frame-options'], 'sameorigin');
});

test('nothing outside web_dir/assets: traversal, symlinks, folders, missing files are 404', labbookOnly, async () => {
  for (const p of ['/assets/../secret.txt', '/assets/%2e%2e/secret.txt', '/assets/..%2fsecret.txt', '/assets/sub/../../secret.txt',
    '/assets/link.js', '/assets/sub', '/assets/', '/assets/nope.js', '/assets/%2fetc%2fpasswd', '/assets//etc/passwd', '/secret.txt', '/index.html']) {
    const r = await get(p);
    assert.ok(r.status === 404 || r.status === 400 || r.status === 403, `${p}: ${r.status}`);
    assert.doesNotMatch(r.text, /not an asset|root:/, p);
  }
});

test('the API keeps its strict headers', labbookOnly, async () => {
  const r = await get('/api/status');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-security-policy'], /^default-src 'none'/);
  assert.equal(r.headers['cache-control'], 'no-store');
});
