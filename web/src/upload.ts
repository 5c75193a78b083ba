// Moving files in and out of the drive: resumable uploads through the hub's tus
// endpoint (tus-js-client, loaded the first time something is uploaded), extraction
// of archives on the server with its progress, and downloads of files and folders
// straight from the hub (/files/, /api/drive/zip/), never through base64 JSON.
import { ApiError, api, encodePath, xsrfToken } from './api';
import { h, toast } from './ui';

/** Names the hub can unpack (docs/drive.md, "Extraction"). */
const ARCHIVE = /\.(zip|tar|tar\.gz|tgz|tar\.bz2|tbz2|tar\.xz|txz|tar\.zst|tzst|7z)$/i;

export function isArchive(name: string): boolean {
  return ARCHIVE.test(name);
}

export interface TusOptions {
  /** Destination folder, relative to the drive's root ('' for the root). */
  folder: string;
  /** Unpack the archive into `folder` on arrival instead of storing it. */
  extract?: boolean;
  onProgress?: (sent: number, total: number) => void;
  /** Lets the caller abort: it receives a function that stops the upload. */
  onStart?: (abort: () => void) => void;
}

export interface TusResult {
  /** The extraction started on arrival (with `extract`), to poll. */
  extractId?: string;
}

/** The message of a failed tus request: the hub's JSON message (a quota refusal
 * names what is free), else the status line. */
function tusMessage(e: any): string {
  const res = e?.originalResponse;
  if (res) {
    const status = res.getStatus();
    let msg = '';
    try {
      const j = JSON.parse(res.getBody() || '');
      msg = j.message || '';
    } catch {
      msg = (res.getBody() || '').trim().slice(0, 300);
    }
    return msg || `the server answered ${status}`;
  }
  if (e?.originalRequest || /xhr|network/i.test(String(e?.message))) return 'the server cannot be reached';
  return String(e?.message || e);
}

/** Uploads a file into the drive through tus (docs/drive.md): resumable after a
 * dropped connection (tus-js-client retries, resuming from the hub's offset) and
 * after a reload (the upload's URL is kept in localStorage under a fingerprint of
 * the file and its destination, and found again when the same file is chosen). */
export async function tusUpload(file: File, opts: TusOptions): Promise<TusResult> {
  const tus = await import('tus-js-client');
  const result: TusResult = {};
  const fingerprint = ['labbook-tus', file.name, file.type, file.size, file.lastModified, opts.folder, opts.extract ? 'x' : ''].join(':');
  return new Promise<TusResult>((resolve, reject) => {
    const metadata: Record<string, string> = { filename: file.name, path: opts.folder, filetype: file.type || 'application/octet-stream' };
    if (opts.extract) metadata.extract = '1';
    const up = new tus.Upload(file, {
      endpoint: '/api/uploads/',
      metadata,
      // Cookie sessions need the XSRF header on every request that changes state.
      headers: { 'X-XSRFToken': xsrfToken() },
      // Chunks bound what a dropped connection costs; the hub streams each to disk.
      chunkSize: 64 << 20,
      retryDelays: [0, 1000, 2000, 4000, 8000, 15000, 30000],
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      fingerprint: async () => fingerprint,
      onProgress: (sent, total) => opts.onProgress?.(sent, total),
      onAfterResponse: (_req, res) => {
        const id = res.getHeader('Labbook-Extract-Id');
        if (id) result.extractId = id;
      },
      onSuccess: () => resolve(result),
      onError: (e) => reject(new ApiError((e as any)?.originalResponse?.getStatus?.() ?? 0, tusMessage(e))),
    });
    opts.onStart?.(() => {
      up.abort(true).catch(() => {});
      reject(new ApiError(0, 'cancelled'));
    });
    up.findPreviousUploads().then((prev) => {
      if (prev.length) up.resumeFromPreviousUpload(prev[0]);
      up.start();
    }, () => up.start());
  });
}

export interface Extraction {
  id: string;
  state: 'running' | 'done' | 'failed';
  to: string;
  entries: number;
  bytes: number;
  error?: string;
}

/** Starts unpacking an archive of the drive into folder `to`; returns the job's id. */
export async function startExtract(path: string, to: string): Promise<string> {
  const r = await api<{ id: string }>('POST', '/api/drive/extract', { path, to });
  return r.id;
}

/** Polls an extraction until it ends, reporting each state seen. */
export async function waitExtract(id: string, onState: (x: Extraction) => void): Promise<Extraction> {
  for (let delay = 200; ; delay = Math.min(delay * 1.5, 1000)) {
    const x = await api<Extraction>('GET', '/api/drive/extract/' + encodeURIComponent(id));
    onState(x);
    if (x.state !== 'running') return x;
    await new Promise((r) => setTimeout(r, delay));
  }
}

function sizeText(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  do { v /= 1024; u++; } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

/** A row in `box` that follows an extraction to its end; resolves true when done. */
export async function showExtraction(box: HTMLElement, label: string, id: string): Promise<boolean> {
  const bar = h('progress', {});
  const status = h('span', { class: 'pct', text: 'starting…' });
  const row = h('div', { class: 'upload-row extract-row', 'data-extract': label }, h('span', { text: `Extracting ${label}` }), bar, status);
  box.append(row);
  try {
    const x = await waitExtract(id, (s) => {
      status.textContent = `${s.entries.toLocaleString()} ${s.entries === 1 ? 'entry' : 'entries'}, ${sizeText(s.bytes)}`;
    });
    if (x.state === 'done') {
      row.classList.add('done');
      bar.max = 1;
      bar.value = 1;
      status.textContent = `done: ${x.entries.toLocaleString()} ${x.entries === 1 ? 'entry' : 'entries'}, ${sizeText(x.bytes)}`;
      setTimeout(() => row.remove(), 3000);
      return true;
    }
    throw new Error(x.error || 'the extraction failed');
  } catch (e) {
    row.classList.add('failed');
    bar.remove();
    status.textContent = (e as Error).message;
    toast(`Extracting ${label} failed: ${(e as Error).message}`, 'error');
    return false;
  }
}

/** Uploads files into `dir` one after another, with a row per file and a total bar
 * in `box`. Archives are unpacked on arrival when `extract` says so. Calls `changed`
 * after each file lands (and after each extraction ends). */
export async function uploadFiles(dir: string, files: File[], box: HTMLElement, extract: boolean, changed: () => void): Promise<void> {
  const total = files.reduce((a, f) => a + f.size, 0);
  const done = new Map<File, number>();
  const totalBar = h('progress', { max: 1, value: 0 });
  const totalPct = h('span', { class: 'pct', text: '0%' });
  const totalRow = h('div', { class: 'upload-row upload-total' },
    h('span', { text: `Uploading ${files.length} file${files.length === 1 ? '' : 's'} (${sizeText(total)})` }), totalBar, totalPct);
  if (files.length > 1) box.append(totalRow);
  const showTotal = () => {
    const sent = [...done.values()].reduce((a, b) => a + b, 0);
    const f = total ? sent / total : 1;
    totalBar.value = f;
    totalPct.textContent = `${Math.floor(f * 100)}%`;
  };
  const extractions: Promise<unknown>[] = [];
  let failed = 0;
  for (const f of files) {
    const unpack = extract && isArchive(f.name);
    const bar = h('progress', { max: 1, value: 0 });
    const pct = h('span', { class: 'pct', text: '0%' });
    const cancel = h('button', { class: 'link', text: 'Cancel' });
    const row = h('div', { class: 'upload-row', 'data-name': f.name }, h('span', { text: f.name + (unpack ? ' (extract on arrival)' : '') }), bar, pct, cancel);
    box.append(row);
    try {
      const r = await tusUpload(f, {
        folder: dir,
        extract: unpack,
        onStart: (abort) => { cancel.onclick = abort; },
        onProgress: (sent, n) => {
          const x = n ? sent / n : 1;
          bar.value = x;
          pct.textContent = `${Math.floor(x * 100)}%`;
          done.set(f, sent);
          showTotal();
        },
      });
      cancel.remove();
      done.set(f, f.size);
      showTotal();
      row.classList.add('done');
      pct.textContent = '100%';
      setTimeout(() => row.remove(), 1500);
      if (r.extractId) extractions.push(showExtraction(box, f.name, r.extractId).then(changed));
      else changed();
    } catch (e) {
      failed++;
      cancel.remove();
      row.classList.add('failed');
      bar.remove();
      pct.textContent = (e as Error).message;
      done.set(f, f.size);
      showTotal();
      if ((e as Error).message !== 'cancelled') toast(`Upload of ${f.name} failed: ${(e as Error).message}`, 'error');
    }
  }
  if (!failed) setTimeout(() => totalRow.remove(), 1500);
  await Promise.all(extractions);
}

/** A drive file's URL on the hub, as an attachment (Content-Disposition). */
export function fileDownloadUrl(path: string): string {
  return '/files/' + encodePath(path) + '?download=1';
}

/** A drive folder's URL as a zip built while it streams. */
export function folderZipUrl(path: string): string {
  return '/api/drive/zip/' + encodePath(path);
}

/** Makes the browser download a URL of the hub (no copy through JavaScript memory). */
export function downloadUrl(url: string, name = ''): void {
  const a = h('a', { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
}
