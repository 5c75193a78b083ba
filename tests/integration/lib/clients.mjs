// Client helpers shared by the suites: @jupyterlab/services settings, a small
// REST helper, raw HTTP requests (no path normalisation), and raw WebSocket
// kernel clients speaking the plain JSON protocol.

import http from 'node:http';
import crypto from 'node:crypto';
import WebSocket from 'ws';
import { ServerConnection, KernelManager, SessionManager, ContentsManager, KernelSpecManager } from '@jupyterlab/services';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves like `promise`, or rejects with `what` after `ms` (timer cleared either way). */
export async function withTimeout(promise, ms, what) {
  let timer;
  try {
    return await Promise.race([promise, new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms);
    })]);
  } finally {
    clearTimeout(timer);
  }
}

/** ServerConnection settings for `user`, with `ws` as the WebSocket class. */
export function settingsFor(server, user = 'alice', extra = {}) {
  return ServerConnection.makeSettings({
    baseUrl: server.baseUrl + '/',
    wsUrl: server.wsUrl + '/',
    token: server.tokens[user],
    appendToken: true,
    WebSocket,
    ...extra,
  });
}

/**
 * Stops the @lumino/polling polls a manager holds: Poll.dispose() leaves its
 * timer scheduled (up to 61 s), which would keep the test process alive.
 */
async function stopPolls(obj) {
  for (const v of Object.values(obj)) {
    if (v && typeof v.schedule === 'function' && typeof v.stop === 'function' && 'frequency' in v) {
      await v.stop().catch(() => {});
    }
  }
}

/** Managers for one user; `await dispose()` at the end (they hold timers). */
export function managersFor(server, user = 'alice', extra = {}) {
  const serverSettings = settingsFor(server, user, extra);
  const kernels = new KernelManager({ serverSettings, standby: 'never' });
  const sessions = new SessionManager({ serverSettings, kernelManager: kernels, standby: 'never' });
  const contents = new ContentsManager({ serverSettings });
  const specs = new KernelSpecManager({ serverSettings, standby: 'never' });
  return {
    serverSettings, kernels, sessions, contents, specs,
    async dispose() {
      for (const x of [sessions, kernels, contents, specs]) {
        await stopPolls(x);
        x.dispose();
      }
    },
  };
}

/**
 * fetch() against the server as `user` (null: no token). Returns
 * {status, headers, body (parsed JSON or null), text}.
 */
export async function api(server, user, method, path, body, { headers = {}, raw = false } = {}) {
  const h = { ...headers };
  if (user && server.tokens[user]) h.Authorization = `token ${server.tokens[user]}`;
  let payload;
  if (body !== undefined) {
    payload = raw ? body : JSON.stringify(body);
    if (!h['Content-Type']) h['Content-Type'] = 'application/json';
  }
  const r = await fetch(server.baseUrl + path, {
    method, headers: h, body: payload, signal: AbortSignal.timeout(30000),
  });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  return { status: r.status, headers: r.headers, body: json, text };
}

/**
 * A raw HTTP request with the path sent exactly as given (fetch/URL would
 * normalise "../" and "%2e%2e"). Returns {status, body (JSON or null), text}.
 */
export function rawRequest(server, method, rawPath, { token, body } = {}) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (token) headers.Authorization = `token ${token}`;
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(body);
    }
    const req = http.request({
      host: '127.0.0.1', port: server.port, method, path: rawPath, headers, timeout: 15000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = text ? JSON.parse(text) : null; } catch { json = null; }
        resolve({ status: res.statusCode, body: json, text });
      });
    });
    req.on('timeout', () => req.destroy(new Error('raw request timed out')));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/**
 * Runs `code` on a @jupyterlab/services KernelConnection and collects what a
 * notebook would show. Returns {reply, iopub: [msgs], outputs: [content+type],
 * stdout, stderr}. `onStdin(msg, kernel)` answers input requests.
 */
export async function execute(kernel, code, { onStdin, timeoutMs = 30000, allowStdin, stopOnError = true } = {}) {
  const iopub = [];
  const future = kernel.requestExecute({
    code, stop_on_error: stopOnError, allow_stdin: allowStdin ?? Boolean(onStdin),
  });
  future.onIOPub = (msg) => { iopub.push(msg); };
  if (onStdin) future.onStdin = (msg) => onStdin(msg, future);
  const reply = await withTimeout(future.done, timeoutMs, `execute ${JSON.stringify(code)}`);
  return summarize(reply, iopub);
}

/** Groups iopub messages into outputs and concatenated stream text. */
export function summarize(reply, iopub) {
  const outputs = [];
  let stdout = '';
  let stderr = '';
  for (const m of iopub) {
    const t = m.header.msg_type;
    if (t === 'stream') {
      if (m.content.name === 'stdout') stdout += m.content.text;
      else stderr += m.content.text;
    }
    if (['stream', 'execute_result', 'display_data', 'error', 'update_display_data'].includes(t)) {
      outputs.push({ output_type: t, ...m.content });
    }
  }
  return { reply, iopub, outputs, stdout, stderr };
}

/** A Jupyter message (protocol 5.3) for the JSON WebSocket protocol. */
export function makeMsg(msgType, content, { session, channel = 'shell' } = {}) {
  return {
    header: {
      msg_id: crypto.randomUUID(),
      msg_type: msgType,
      username: 'it',
      session,
      date: new Date().toISOString(),
      version: '5.3',
    },
    parent_header: {},
    metadata: {},
    content,
    buffers: [],
    channel,
  };
}

/**
 * A raw kernel-channels WebSocket client with no subprotocol (plain JSON).
 * Records every message (only those `keep(msg)` accepts, when given; `bytes`
 * counts all of them); waitFor(pred) resolves with the first match seen since
 * `from` (an index into msgs). `closeInfo` is {code, reason} once closed.
 */
export function rawKernelSocket(server, user, kernelId, { sessionId = crypto.randomUUID(), protocols, keep } = {}) {
  const tok = server.tokens[user];
  const url = `${server.wsUrl}/api/kernels/${kernelId}/channels?session_id=${sessionId}` +
    (tok ? `&token=${tok}` : '');
  const ws = protocols ? new WebSocket(url, protocols) : new WebSocket(url);
  const client = {
    ws,
    sessionId,
    msgs: [],
    bytes: 0,
    waiters: [],
    closed: false,
    closeInfo: null,
    opened: new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (req, res) => {
        reject(Object.assign(new Error(`websocket refused with HTTP ${res.statusCode}`), { statusCode: res.statusCode }));
        req.destroy();
      });
    }),
    send(msg) { ws.send(JSON.stringify(msg)); return msg; },
    execute(code, opts = {}) {
      return client.send(makeMsg('execute_request', {
        code, silent: false, store_history: true, user_expressions: {},
        allow_stdin: false, stop_on_error: true, ...opts,
      }, { session: sessionId }));
    },
    waitFor(pred, { from = 0, timeoutMs = 20000, what = 'message' } = {}) {
      for (let i = from; i < client.msgs.length; i++) if (pred(client.msgs[i])) return Promise.resolve(client.msgs[i]);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve };
        w.timer = setTimeout(() => {
          client.waiters = client.waiters.filter((x) => x !== w);
          reject(new Error(`timed out waiting for ${what}; got: ${client.msgs.map((m) => m.header?.msg_type).join(', ')}`));
        }, timeoutMs);
        client.waiters.push(w);
      });
    },
    close() {
      if (client.closed) return Promise.resolve();
      return new Promise((resolve) => {
        ws.once('close', resolve);
        ws.close();
        setTimeout(() => { ws.terminate(); resolve(); }, 3000).unref();
      });
    },
  };
  ws.on('message', (data, isBinary) => {
    let msg;
    try {
      msg = JSON.parse(isBinary ? Buffer.from(data).toString('utf8') : data.toString());
    } catch {
      msg = { header: { msg_type: '__unparsable__' }, raw: data };
    }
    client.bytes += data.length;
    if (!keep || keep(msg)) client.msgs.push(msg);
    for (const w of [...client.waiters]) {
      if (w.pred(msg)) {
        clearTimeout(w.timer);
        client.waiters = client.waiters.filter((x) => x !== w);
        w.resolve(msg);
      }
    }
  });
  ws.on('close', (code, reason) => {
    client.closed = true;
    client.closeInfo = { code, reason: reason.toString() };
  });
  ws.on('error', () => {});
  return client;
}

/** Polls until fn() returns a truthy value; returns it. */
export async function until(fn, { timeoutMs = 15000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(intervalMs);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * A browser's cookie jar for one server: keeps what Set-Cookie headers set
 * (name=value; Max-Age=0 removes), and sends them back.
 */
export class CookieJar {
  constructor() { this.cookies = new Map(); this.setCookies = []; }
  /** Records the Set-Cookie headers of a fetch() Response's headers. */
  update(headers) {
    for (const line of headers.getSetCookie()) {
      this.setCookies.push(line);
      const [pair, ...attrs] = line.split(';').map((x) => x.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const expired = attrs.some((a) => /^max-age=\s*(0|-\d+)$/i.test(a));
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  get(name) { return this.cookies.get(name); }
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
}

/** The Set-Cookie lines of a response that set cookie `name`. */
export function setCookieLines(headers, name) {
  return headers.getSetCookie().filter((l) => l.startsWith(`${name}=`));
}

/**
 * fetch() as a browser would, with `jar`'s cookies and no token; redirects are
 * not followed. `form` (an object) is sent as application/x-www-form-urlencoded.
 * Returns {status, headers, body (JSON or null), text, location}.
 */
export async function browserFetch(server, jar, method, path, { form, json, headers = {} } = {}) {
  const h = { ...headers };
  const cookie = jar ? jar.header() : '';
  if (cookie) h.Cookie = cookie;
  let body;
  if (form) {
    body = new URLSearchParams(form).toString();
    h['Content-Type'] = 'application/x-www-form-urlencoded';
  } else if (json !== undefined) {
    body = JSON.stringify(json);
    h['Content-Type'] = 'application/json';
  }
  const r = await fetch(server.baseUrl + path, {
    method, headers: h, body, redirect: 'manual', signal: AbortSignal.timeout(30000),
  });
  if (jar) jar.update(r.headers);
  const text = await r.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  return { status: r.status, headers: r.headers, body: parsed, text, location: r.headers.get('location') };
}

/**
 * Runs Python `code` in `user`'s kernel `id` over a fresh raw WebSocket client; the
 * code leaves its findings in a dict `R` (json and os are imported), returned here.
 * Fails with what the kernel printed (errors included) when R never came back.
 */
export async function probe(server, user, id, code, { timeoutMs = 30000 } = {}) {
  const c = rawKernelSocket(server, user, id);
  await c.opened;
  try {
    const msgId = c.execute(`import json as _j, os\nR = {}\n${code}\nprint("@@R@@" + _j.dumps(R))`).header.msg_id;
    await c.waitFor((m) => m.header?.msg_type === 'status' && m.content?.execution_state === 'idle' &&
      m.parent_header?.msg_id === msgId, { timeoutMs, what: 'probe idle' });
    const out = c.msgs.filter((m) => ['stream', 'error'].includes(m.header?.msg_type) && m.parent_header?.msg_id === msgId)
      .map((m) => m.content.text ?? m.content.traceback?.join('\n')).join('');
    const line = out.split('\n').find((l) => l.startsWith('@@R@@'));
    if (!line) throw new Error(`probe printed no result: ${out}`);
    return JSON.parse(line.slice(5));
  } finally {
    await c.close();
  }
}
