// The hub's REST API as the UI uses it: fetch with the session cookie and the XSRF
// header (double submit of the `_xsrf` cookie), the Contents API, chunked uploads
// (the google.colab widget's), downloads. Resumable uploads are in upload.ts.

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

/** The `_xsrf` cookie the hub set at sign-in; sent back as X-XSRFToken. */
export function xsrfToken(): string {
  const m = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  return m ? decodeURIComponent(m[1]) : '';
}

/** A drive path as a URL path: each component encoded. */
export function encodePath(p: string): string {
  return p.split('/').filter((s) => s !== '').map(encodeURIComponent).join('/');
}

export async function api<T = any>(method: string, url: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { 'X-XSRFToken': xsrfToken() };
  let payload: string | undefined;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let r: Response;
  try {
    r = await fetch(url, { method, headers, body: payload, credentials: 'same-origin', signal });
  } catch (e) {
    throw new ApiError(0, 'the server cannot be reached');
  }
  if (r.status === 403 && /authentication required/.test(await r.clone().text())) {
    location.href = '/login?next=' + encodeURIComponent(location.pathname);
  }
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try {
      const j = await r.json();
      if (j && j.message) msg = j.message;
    } catch { /* not JSON */ }
    throw new ApiError(r.status, msg);
  }
  if (r.status === 204) return undefined as T;
  const text = await r.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export interface ContentsModel {
  name: string;
  path: string;
  type: 'directory' | 'file' | 'notebook';
  last_modified: string;
  created: string;
  size: number | null;
  mimetype: string | null;
  format: string | null;
  content: any;
  hash?: string;
}

const contentsUrl = (p: string) => '/api/contents/' + encodePath(p);

export const contents = {
  get(p: string, opts: { content?: boolean; type?: string; format?: string } = {}): Promise<ContentsModel> {
    const q = new URLSearchParams();
    q.set('content', opts.content === false ? '0' : '1');
    if (opts.type) q.set('type', opts.type);
    if (opts.format) q.set('format', opts.format);
    return api('GET', contentsUrl(p) + '?' + q.toString());
  },
  save(p: string, model: Partial<ContentsModel>): Promise<ContentsModel> {
    return api('PUT', contentsUrl(p), model);
  },
  newUntitled(dir: string, type: 'notebook' | 'directory' | 'file'): Promise<ContentsModel> {
    return api('POST', contentsUrl(dir), type === 'file' ? { type, ext: '.txt' } : { type });
  },
  rename(from: string, to: string): Promise<ContentsModel> {
    return api('PATCH', contentsUrl(from), { path: to });
  },
  remove(p: string): Promise<void> {
    return api('DELETE', contentsUrl(p));
  },
  /** Deletes p (to the trash when the hub keeps one): the trash item's id, or null. */
  async trash(p: string): Promise<string | null> {
    const r = await fetch(contentsUrl(p), { method: 'DELETE', headers: { 'X-XSRFToken': xsrfToken() }, credentials: 'same-origin' })
      .catch(() => { throw new ApiError(0, 'the server cannot be reached'); });
    if (!r.ok) {
      let msg = `${r.status} ${r.statusText}`;
      try { const j = await r.json(); if (j && j.message) msg = j.message; } catch { /* not JSON */ }
      throw new ApiError(r.status, msg);
    }
    const loc = r.headers.get('location') || '';
    const m = loc.match(/^\/api\/drive\/trash\/([0-9a-f]{32})$/);
    return m ? m[1] : null;
  },
  async exists(p: string): Promise<boolean> {
    try {
      await contents.get(p, { content: false });
      return true;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return false;
      throw e;
    }
  },
};

function base64Of(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function putWithProgress(url: string, body: string | Blob, onProgress: (loaded: number) => void, type = 'application/json'): Promise<void> {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('PUT', url);
    x.setRequestHeader('Content-Type', type);
    x.setRequestHeader('X-XSRFToken', xsrfToken());
    x.upload.onprogress = (e) => onProgress(e.loaded / Math.max(1, e.total));
    x.onload = () => {
      if (x.status >= 200 && x.status < 300) resolve();
      else {
        let msg = `${x.status} ${x.statusText}`;
        try { msg = JSON.parse(x.responseText).message || msg; } catch { /* not JSON */ }
        reject(new ApiError(x.status, msg));
      }
    };
    x.onerror = () => reject(new ApiError(0, 'the server cannot be reached'));
    x.send(body);
  });
}

const CHUNK = 4 << 20;

/** Uploads a file into the drive at `dest`, in 4 MiB chunks (JupyterLab's chunked
 * PUT), reporting progress from 0 to 1. */
export async function uploadFile(file: File, dest: string, onProgress: (f: number) => void): Promise<void> {
  const url = contentsUrl(dest);
  const total = Math.max(1, file.size);
  if (file.size <= CHUNK) {
    const b64 = base64Of(new Uint8Array(await file.arrayBuffer()));
    await putWithProgress(url, JSON.stringify({ type: 'file', format: 'base64', name: file.name, path: dest, content: b64 }),
      (f) => onProgress(f));
    onProgress(1);
    return;
  }
  for (let off = 0, n = 1; off < file.size; off += CHUNK, n++) {
    const last = off + CHUNK >= file.size;
    const b64 = base64Of(new Uint8Array(await file.slice(off, off + CHUNK).arrayBuffer()));
    const body = JSON.stringify({ type: 'file', format: 'base64', name: file.name, path: dest, content: b64, chunk: last ? -1 : n });
    const size = Math.min(CHUNK, file.size - off);
    await putWithProgress(url, body, (f) => onProgress((off + f * size) / total));
  }
  onProgress(1);
}

/** Downloads a drive file to the user's computer: the browser fetches it from the
 * hub's /files/ (streamed, resumable by range), not through JavaScript memory. */
export async function downloadFile(p: string): Promise<void> {
  const a = document.createElement('a');
  a.href = '/files/' + encodePath(p) + '?download=1';
  a.download = p.split('/').pop() || '';
  document.body.appendChild(a);
  a.click();
  a.remove();
}

/** One entry of a runtime's /content, as its agent lists it (mtime in Unix seconds). */
export interface RuntimeEntry { name: string; type: 'file' | 'directory' | 'symlink' | 'other'; size: number; mtime: number }

const runtimeFilesUrl = (id: string, p: string) => `/api/runtimes/${encodeURIComponent(id)}/files/${encodePath(p)}`;

/** A runtime's /content, which the hub reaches through the runtime's agent
 * (/api/runtimes/{id}/files/): a request moves at most 64 MiB, so big files go
 * through the drive. */
export const runtimeFiles = {
  list(id: string, dir: string): Promise<{ path: string; entries: RuntimeEntry[] }> {
    return api('GET', runtimeFilesUrl(id, dir));
  },
  /** Uploads a file as it is (one PUT of its bytes), reporting progress from 0 to 1. */
  upload(id: string, dest: string, file: File, onProgress: (f: number) => void): Promise<void> {
    return putWithProgress(runtimeFilesUrl(id, dest), file, onProgress, 'application/octet-stream');
  },
  download(id: string, p: string): void {
    const a = document.createElement('a');
    a.href = runtimeFilesUrl(id, p) + '?download=1';
    a.download = p.split('/').pop() || '';
    document.body.appendChild(a);
    a.click();
    a.remove();
  },
};

export function saveBlob(blob: Blob, name: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

export interface Me {
  identity: { username: string; display_name: string; initials: string };
  labbook?: { sandboxed: boolean; admin: boolean };
}

export function me(): Promise<Me> {
  return api('GET', '/api/me');
}

/** An item of the drive's trash (GET /api/drive/trash). */
export interface TrashItem { id: string; name: string; path: string; type: 'file' | 'directory'; deleted: string; size: number }

export const trash = {
  list(): Promise<{ items: TrashItem[]; truncated: boolean; days: number }> {
    return api('GET', '/api/drive/trash');
  },
  restore(id: string): Promise<{ path: string; name: string }> {
    return api('POST', `/api/drive/trash/${id}/restore`);
  },
  deleteForever(id: string): Promise<void> {
    return api('DELETE', `/api/drive/trash/${id}`);
  },
  empty(): Promise<{ deleted: number }> {
    return api('DELETE', '/api/drive/trash');
  },
};
