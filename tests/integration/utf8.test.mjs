// Bytes that are not UTF-8, wherever they can reach the hub: in a request (tus
// filename and path metadata, paths under /api/contents, /files and a runtime's
// /files, query arguments, headers) they are refused with 400 and a JSON message
// naming what was wrong; on disk (names in the drive and in a runtime's /content,
// archive entries) and in kernel output they are shown with U+FFFD in place of each
// invalid byte (docs/contents.md, "Names that are not UTF-8"). The hub answers and
// keeps answering. labbook-only (the drive, tus and runtime files APIs are its own;
// the contents cases were checked against jupyter_server 1.23 by hand, see the doc).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { useServer, IS_LABBOOK } from './lib/server.mjs';
import { api, until, rawKernelSocket, makeMsg } from './lib/clients.mjs';
import { extract, mkArchive } from './lib/drive.mjs';

const skip = IS_LABBOOK ? false : 'labbook-only: these check what labbook answers';
const ctx = useServer({ name: 'utf8' });
const BAD = Buffer.from([0x61, 0xff, 0xfe, 0x62]); // "a", two invalid bytes, "b"
const BAD_NAME = Buffer.concat([Buffer.from('bad-'), BAD, Buffer.from('.txt')]);
const SHOWN = 'bad-a\ufffd\ufffdb.txt';

/**
 * One HTTP/1.1 request written byte for byte (head is a Buffer or string whose
 * bytes go out as they are; fetch and http.request would escape or refuse them).
 * Resolves {status, body (JSON or null), text}; status is null when the connection
 * closed without an answer.
 */
function rawBytes(head, body = Buffer.alloc(0)) {
  return new Promise((resolve, reject) => {
    const s = net.connect(ctx.server.port, '127.0.0.1');
    const chunks = [];
    s.setTimeout(15000, () => s.destroy(new Error('raw request timed out')));
    s.on('data', (c) => chunks.push(c));
    s.on('error', (e) => (e.code === 'ECONNRESET' ? s.emit('end') : reject(e)));
    s.on('end', () => {
      const all = Buffer.concat(chunks).toString('utf8');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(all);
      const at = all.indexOf('\r\n\r\n');
      let text = at >= 0 ? all.slice(at + 4) : '';
      if (/\r\ntransfer-encoding: chunked/i.test(all.slice(0, at))) {
        let out = '';
        let rest = text;
        for (;;) {
          const nl = rest.indexOf('\r\n');
          const n = parseInt(rest.slice(0, nl), 16);
          if (!(n > 0)) break;
          out += rest.slice(nl + 2, nl + 2 + n);
          rest = rest.slice(nl + 4 + n);
        }
        text = out;
      }
      let json = null;
      try { json = JSON.parse(text); } catch { /* not JSON */ }
      s.destroy();
      resolve({ status: m ? Number(m[1]) : null, body: json, text });
    });
    s.write(Buffer.concat([Buffer.from(head), Buffer.from('\r\n'), body]));
  });
}

/** The request line and headers of a request as alice; path is a Buffer or string. */
function head(method, target, headers = {}) {
  const lines = [Buffer.from(`${method} `), Buffer.from(target), Buffer.from(' HTTP/1.1\r\n')];
  const h = { Host: `127.0.0.1:${ctx.server.port}`, Authorization: `token ${ctx.server.tokens.alice}`,
    Connection: 'close', ...headers };
  for (const [k, v] of Object.entries(h)) lines.push(Buffer.from(`${k}: `), Buffer.from(v), Buffer.from('\r\n'));
  return Buffer.concat(lines);
}

async function alive(what) {
  const st = await api(ctx.server, 'alice', 'GET', '/api/status').catch((e) => ({ status: e.message }));
  assert.equal(st.status, 200, `the hub still answers after ${what}`);
}

/** A refusal a user can read: 400, JSON, a message that names `field`. */
function assertRefused(r, field, what) {
  assert.equal(r.status, 400, `${what}: ${r.status} ${r.text.slice(0, 300)}`);
  assert.equal(typeof r.body?.message, 'string', `${what}: a JSON message`);
  assert.match(r.body.message, field, `${what}: the message names the field`);
}

const b64 = (b) => Buffer.from(b).toString('base64');

describe('invalid UTF-8 in requests', { skip }, () => {
  test('tus: a filename or path that is not UTF-8 is refused, naming the field', async () => {
    for (const [md, field] of [
      [`filename ${b64(BAD_NAME)}`, /filename/],
      [`filename ${b64('ok.txt')},path ${b64(BAD)}`, /path/],
    ]) {
      const r = await rawBytes(head('POST', '/api/uploads/', {
        'Tus-Resumable': '1.0.0', 'Upload-Length': '3', 'Upload-Metadata': md, 'Content-Length': '0',
      }));
      assertRefused(r, field, `Upload-Metadata ${md}`);
      await alive(`Upload-Metadata ${md}`);
    }
    // Other keys are kept as the client sent them (base64) and never decoded: any bytes.
    const other = await rawBytes(head('POST', '/api/uploads/', {
      'Tus-Resumable': '1.0.0', 'Upload-Length': '3', 'Content-Length': '0',
      'Upload-Metadata': `filename ${b64('ok.txt')},note ${b64(BAD)}`,
    }));
    assert.equal(other.status, 201, `other metadata: ${other.status} ${other.text.slice(0, 200)}`);
    // The header itself carrying raw bytes past ASCII.
    const raw = await rawBytes(head('POST', '/api/uploads/', {
      'Tus-Resumable': '1.0.0', 'Upload-Length': '3', 'Content-Length': '0',
      'Upload-Metadata': Buffer.concat([Buffer.from(`filename ${b64('ok.txt')},x`), BAD]),
    }));
    assert.ok(raw.status === null || (raw.status >= 400 && raw.status < 500), `raw header: ${raw.status}`);
    await alive('raw bytes in Upload-Metadata');
  });

  test('contents, /files and drive paths that are not UTF-8 are refused', async () => {
    for (const [method, target] of [
      ['GET', '/api/contents/%FF%FE'],
      ['GET', '/api/contents/dir/%C0%AF.txt'],
      ['DELETE', '/api/contents/x%FF'],
      ['PATCH', '/api/contents/x%ED%A0%80'],
      ['GET', '/api/contents/x%FF/checkpoints'],
      ['GET', '/files/x%FF.txt'],
      ['GET', '/api/drive/zip/x%FF'],
      ['GET', '/api/kernels/%FF'],
      ['GET', '/api/sessions/%FF'],
      ['GET', '/nb/x%FF.ipynb'],
    ]) {
      const body = method === 'PATCH' ? '{"path": "y.txt"}' : '';
      const r = await rawBytes(head(method, target, body ? { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } : {}), Buffer.from(body));
      assertRefused(r, /path/, `${method} ${target}`);
      await alive(`${method} ${target}`);
    }
    // Raw (not percent-encoded) bytes in the path.
    const r = await rawBytes(head('GET', Buffer.concat([Buffer.from('/api/contents/'), BAD])));
    assert.ok(r.status === null || r.status === 400, `raw bytes in the path: ${r.status} ${r.text.slice(0, 200)}`);
    await alive('raw bytes in the path');
  });

  test('query arguments that are not UTF-8 are refused', async () => {
    fs.mkdirSync(ctx.server.drive('alice'), { recursive: true });
    fs.writeFileSync(path.join(ctx.server.drive('alice'), 'q.txt'), 'q');
    for (const target of ['/api/contents/q.txt?type=%FF', '/api/contents/q.txt?format=%FF&content=1',
      '/api/contents?type=directory&x=%FF', '/api/drive/zip/?path=%FF', '/api/sessions?x=%FF']) {
      const r = await rawBytes(head('GET', target));
      assert.ok(r.status !== null && r.status < 500, `${target}: ${r.status} ${r.text.slice(0, 200)}`);
      if (r.status === 400) assert.equal(typeof r.body?.message, 'string', `${target}: a JSON message`);
      await alive(target);
    }
  });

  test('PATCH and POST bodies naming paths that are not UTF-8 (JSON escapes) are refused', async () => {
    fs.writeFileSync(path.join(ctx.server.drive('alice'), 'mv.txt'), 'm');
    for (const [method, p, body] of [
      ['PATCH', '/api/contents/mv.txt', '{"path": "x\\udcff.txt"}'],
      ['POST', '/api/contents', '{"copy_from": "mv.txt", "path": "\\udcff"}'],
      ['POST', '/api/sessions', '{"path": "\\udcff.ipynb", "type": "notebook", "kernel": {"name": "python3"}}'],
    ]) {
      const r = await api(ctx.server, 'alice', method, p, body, { raw: true });
      assert.equal(r.status, 400, `${method} ${p} ${body}: ${r.status} ${r.text.slice(0, 200)}`);
      await alive(`${method} ${p}`);
    }
    assert.equal((await api(ctx.server, 'alice', 'GET', '/api/contents/mv.txt')).status, 200, 'not moved');
  });
});

describe('names on disk that are not UTF-8', { skip }, () => {
  const drive = () => ctx.server.drive('alice');
  const mk = () => {
    const dir = Buffer.concat([Buffer.from(drive() + '/odd/'), Buffer.from('sub-'), BAD]);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(Buffer.concat([Buffer.from(drive() + '/odd/'), BAD_NAME]), 'odd bytes\n');
    fs.writeFileSync(Buffer.concat([dir, Buffer.from('/inner.txt')]), 'inner\n');
    fs.writeFileSync(path.join(drive(), 'odd', 'fine.txt'), 'fine\n');
  };

  test('the contents API lists them with U+FFFD for each invalid byte', async () => {
    mk();
    const r = await api(ctx.server, 'alice', 'GET', '/api/contents/odd');
    assert.equal(r.status, 200, r.text);
    const names = r.body.content.map((e) => e.name).sort();
    assert.deepEqual(names, [SHOWN, 'fine.txt', 'sub-a\ufffd\ufffdb'].sort());
    const f = r.body.content.find((e) => e.name === SHOWN);
    assert.equal(f.path, `odd/${SHOWN}`);
    assert.equal(f.type, 'file');
    const sub = await api(ctx.server, 'alice', 'GET', `/api/contents/odd/${encodeURIComponent('sub-a\ufffd\ufffdb')}`);
    assert.equal(sub.status, 404, 'the shown name is not the file\'s name: it cannot be opened by it');
    await alive('listing');
  });

  test('a zip of a folder holding them downloads whole', async () => {
    mk();
    const r = await rawBytes(head('GET', '/api/drive/zip/odd'));
    assert.equal(r.status, 200, r.text.slice(0, 300));
    await alive('zip');
    const s = await api(ctx.server, 'alice', 'GET', '/api/drive/usage');
    assert.equal(s.status, 200);
  });

  test('an archive whose entry names are not UTF-8 extracts, or fails with a message', async () => {
    const tmp = fs.mkdtempSync(path.join(ctx.server.dataDir, 'arch-'));
    const zipPath = path.join(tmp, 'odd.tar');
    mkArchive(zipPath, 'tar', [{ name_b64: b64(BAD_NAME), text: 'in an archive' }, { name: 'plain.txt', text: 'p' }]);
    fs.copyFileSync(zipPath, path.join(drive(), 'odd.tar'));
    const done = await extract(ctx.server, 'alice', 'odd.tar', 'odd-out');
    assert.ok(['done', 'failed'].includes(done.state), JSON.stringify(done));
    if (done.state === 'failed') assert.equal(typeof done.error, 'string');
    // A clash with a name already there (the message quotes the entry's name).
    const again = await extract(ctx.server, 'alice', 'odd.tar', 'odd-out');
    assert.ok(['done', 'failed'].includes(again.state), JSON.stringify(again));
    if (again.state === 'failed') assert.equal(typeof again.error, 'string');
    const list = await api(ctx.server, 'alice', 'GET', '/api/contents/odd-out');
    assert.equal(list.status, 200, list.text);
    await alive('extraction');
  });
});

describe('a runtime with such names and such output', { skip }, () => {
  let id;
  test('its /content lists them with U+FFFD and refuses such request paths', async (t) => {
    const r = await api(ctx.server, 'alice', 'POST', '/api/kernels', { name: 'python3' });
    assert.equal(r.status, 201, r.text);
    id = r.body.id;
    await until(async () => (await api(ctx.server, 'alice', 'GET', `/api/kernels/${id}`)).body?.execution_state === 'idle',
      { timeoutMs: 30000, what: 'kernel idle' });
    const bad = await rawBytes(head('GET', `/api/runtimes/${id}/files/x%FF`));
    assertRefused(bad, /path/, 'runtime files path');
    await alive('runtime files path');
    const put = await rawBytes(head('PUT', `/api/runtimes/${id}/files/%FF.txt`, { 'Content-Length': '2' }), Buffer.from('hi'));
    assertRefused(put, /path/, 'runtime files PUT');
    await alive('runtime files PUT');
    if (!ctx.server.log().includes('runtimes run in sandboxes')) return t.skip('no sandbox: /content is elsewhere');
    const c = rawKernelSocket(ctx.server, 'alice', id);
    await c.opened;
    const req = c.execute("import os\nos.makedirs('/content', exist_ok=True)\nopen(b'/content/bad-a\\xff\\xfeb.txt', 'wb').write(b'x')\nprint('made')");
    await c.waitFor((m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' &&
      m.parent_header?.msg_id === req.header.msg_id, { what: 'made' });
    await c.close();
    const l = await api(ctx.server, 'alice', 'GET', `/api/runtimes/${id}/files/`);
    assert.equal(l.status, 200, l.text);
    assert.ok(l.body.entries.some((e) => e.name === SHOWN), JSON.stringify(l.body.entries.map((e) => e.name)));
    await alive('runtime listing');
  });

  test('kernel output with bytes that are not UTF-8 reaches the client with U+FFFD and is recorded', async () => {
    const nb = 'odd-output.ipynb';
    // ipykernel encodes its messages with errors="surrogateescape": a str holding
    // surrogates goes out as raw bytes that are not UTF-8.
    const code = "import sys\nsys.stdout.write(b'out-a\\xff\\xfeb\\n'.decode('utf-8', 'surrogateescape'))\nsys.stdout.flush()\n" +
      "from IPython.display import display\ndisplay({'text/plain': b'disp-a\\xffb'.decode('utf-8', 'surrogateescape')}, raw=True)\n" +
      "raise ValueError(b'err-\\xff'.decode('utf-8', 'surrogateescape'))";
    const put = await api(ctx.server, 'alice', 'PUT', `/api/contents/${nb}`, {
      type: 'notebook', format: 'json',
      content: { nbformat: 4, nbformat_minor: 5, metadata: {}, cells: [{ cell_type: 'code', id: 'c-odd', source: code, metadata: {}, outputs: [], execution_count: null }] },
    });
    assert.equal(put.status, 201, put.text);
    const s = await api(ctx.server, 'alice', 'POST', '/api/sessions', { path: nb, name: nb, type: 'notebook', kernel: { name: 'python3' } });
    assert.equal(s.status, 201, s.text);
    const c = rawKernelSocket(ctx.server, 'alice', s.body.kernel.id);
    await c.opened;
    try {
      const req = makeMsg('execute_request', { code, silent: false, store_history: true, user_expressions: {},
        allow_stdin: false, stop_on_error: true }, { session: c.sessionId });
      req.metadata = { cellId: 'c-odd' };
      c.send(req);
      await c.waitFor((m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' &&
        m.parent_header?.msg_id === req.header.msg_id, { what: 'idle after odd output', timeoutMs: 30000 });
      const mine = c.msgs.filter((m) => m.parent_header?.msg_id === req.header.msg_id);
      const text = mine.filter((m) => m.header?.msg_type === 'stream').map((m) => m.content.text).join('');
      assert.equal(text, 'out-a\ufffd\ufffdb\n', 'the stream as the client got it');
      const disp = mine.find((m) => m.header?.msg_type === 'display_data');
      assert.equal(disp?.content.data['text/plain'], 'disp-a\ufffdb');
      const err = mine.find((m) => m.header?.msg_type === 'error');
      assert.equal(err?.content.evalue, 'err-\ufffd');
    } finally {
      await c.close();
    }
    const cell = await until(async () => {
      const g = await api(ctx.server, 'alice', 'GET', `/api/contents/${nb}?content=1`);
      const cl = g.body?.content?.cells.find((x) => x.id === 'c-odd');
      return cl && cl.outputs.some((o) => o.output_type === 'error') ? cl : null;
    }, { timeoutMs: 20000, what: 'the outputs recorded in the notebook' });
    assert.equal(cell.outputs.filter((o) => o.output_type === 'stream').map((o) => o.text).join(''), 'out-a\ufffd\ufffdb\n');
    assert.equal(cell.outputs.find((o) => o.output_type === 'display_data')?.data['text/plain'], 'disp-a\ufffdb');
    assert.equal(cell.outputs.find((o) => o.output_type === 'error')?.evalue, 'err-\ufffd');
    await api(ctx.server, 'alice', 'DELETE', `/api/sessions/${s.body.id}`);
    await alive('odd kernel output');
  });
});
