// Helpers for the drive suites: tus uploads with tus-js-client, hostile archives
// built by lib/mkarchive.py, extraction polling, and raw HTTP for downloads.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tus from 'tus-js-client';
import { api, sleep } from './clients.mjs';

const LIB = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = process.env.JUPYTER_PYTHON || '/usr/bin/python3';

/** Builds an archive (see mkarchive.py for the spec) at out; returns out. */
export function mkArchive(out, format, entries = [], extra = {}) {
  execFileSync(PYTHON, [path.join(LIB, 'mkarchive.py')], {
    input: JSON.stringify({ out, format, entries, ...extra }),
    stdio: ['pipe', 'inherit', 'inherit'],
    timeout: 120000,
  });
  return out;
}

/**
 * A tus upload of `data` (a Buffer) for `user`. Returns {upload, done}: done
 * resolves with the upload URL when it completes, rejects on error. Options go to
 * tus-js-client (e.g. uploadUrl to resume, onProgress, chunkSize).
 */
export function tusUpload(server, user, data, metadata, opts = {}) {
  let upload;
  const done = new Promise((resolve, reject) => {
    upload = new tus.Upload(data, {
      endpoint: `${server.baseUrl}/api/uploads/`,
      headers: { Authorization: `token ${server.tokens[user]}` },
      metadata,
      retryDelays: [100, 300, 1000],
      removeFingerprintOnSuccess: true,
      onError: reject,
      onSuccess: () => resolve(upload.url),
      ...opts,
    });
  });
  upload.start();
  return { upload, done };
}

/** Raw tus request: returns {status, headers, text}. */
export async function tusRequest(server, user, method, url, { headers = {}, body } = {}) {
  const h = { 'Tus-Resumable': '1.0.0', ...headers };
  if (user) h.Authorization = `token ${server.tokens[user]}`;
  const r = await fetch(url.startsWith('http') ? url : server.baseUrl + url, {
    method, headers: h, body, signal: AbortSignal.timeout(30000),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text };
}

/** Starts an extraction and waits for it to finish; returns the final model. */
export async function extract(server, user, archive, to) {
  const r = await api(server, user, 'POST', '/api/drive/extract', to === undefined ? { path: archive } : { path: archive, to });
  if (r.status !== 202) throw new Error(`extract answered ${r.status}: ${r.text}`);
  return waitExtract(server, user, r.body.id);
}

export async function waitExtract(server, user, id, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const s = await api(server, user, 'GET', `/api/drive/extract/${id}`);
    if (s.status !== 200) throw new Error(`extract status ${s.status}: ${s.text}`);
    if (s.body.state !== 'running') return s.body;
    await sleep(50);
  }
  throw new Error(`extraction ${id} still running after ${timeoutMs} ms`);
}

/** GET with raw headers, body as a Buffer: {status, headers, body}. */
export function rawGet(server, user, urlPath, headers = {}, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: server.port, method, path: urlPath,
      headers: { Authorization: `token ${server.tokens[user]}`, ...headers }, timeout: 60000,
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every path beneath dir (relative), recursively. */
export function walk(dir, base = '') {
  const out = [];
  for (const e of fs.readdirSync(path.join(dir, base), { withFileTypes: true })) {
    const rel = base ? `${base}/${e.name}` : e.name;
    out.push(rel);
    if (e.isDirectory()) out.push(...walk(dir, rel));
  }
  return out;
}
