// A code cell's outputs: the nbformat output list (what is saved) and its view.
// Streams join as JupyterLab joins them and apply \r and \b, so a tqdm or Keras
// progress bar is one updating line; the view is redrawn at most once per animation
// frame, so typing stays instant while a cell streams. HTML and JavaScript outputs
// run only inside a sandboxed iframe on an opaque origin (allow-scripts without
// allow-same-origin): they can never act as the user.
import { AnsiUp } from 'ansi_up';
import { saveBlob } from '../api';
import { isDark } from '../theme';
import { renderLatex, renderMarkdown } from './markdown';
import { DOWNLOAD_MIME, Liveness, UPLOAD_MIME, colabView } from './colab';

export type Output = Record<string, any>;

/** Outputs that came from the kernel to this page (google.colab widgets act only on those). */
const liveness = new WeakMap<Output, Liveness>();

const ansi = new AnsiUp();
ansi.use_classes = true;

/** Appends a chunk of stream text to `prev`, applying carriage returns (what follows
 * overwrites the line from its start) and backspaces (remove the character before).
 * A trailing \r is kept so that the next chunk overwrites the line. */
export function appendStream(prev: string, chunk: string): string {
  let cr = prev.endsWith('\r');
  if (cr) prev = prev.slice(0, -1);
  const nl = prev.lastIndexOf('\n');
  let head = prev.slice(0, nl + 1);
  let line = Array.from(prev.slice(nl + 1));
  let col = cr ? 0 : line.length;
  const lines: string[] = [];
  cr = false;
  for (let i = 0; i < chunk.length; i++) {
    let c = chunk[i];
    const code = c.charCodeAt(0);
    if (code >= 0xd800 && code < 0xdc00 && i + 1 < chunk.length) c += chunk[++i];
    if (c === '\n' || (c === '\r' && chunk[i + 1] === '\n')) {
      if (c === '\r') i++;
      lines.push(line.join(''));
      line = [];
      col = 0;
      cr = false;
    } else if (c === '\r') {
      col = 0;
      cr = true;
    } else if (c === '\b') {
      if (col > 0) { line.splice(col - 1, 1); col--; }
    } else {
      if (col < line.length) line[col] = c;
      else line.push(c);
      col++;
      cr = false;
    }
  }
  if (lines.length) head += lines.join('\n') + '\n';
  return head + line.join('') + (cr && col === 0 && line.length ? '\r' : '');
}

/** Joins nbformat's multiline form (a list of lines) into one string. */
export function joinText(v: any): string {
  return Array.isArray(v) ? v.join('') : typeof v === 'string' ? v : v === undefined || v === null ? '' : JSON.stringify(v);
}

const HEAD_LINES = 200;
const TAIL_LINES = 200;
const BIG_CHARS = 200_000;

// HTML outputs live in frames loaded from the hub's frame page (its own strict origin
// rules: see web.c), which ask for their HTML once loaded and then report their height.
const frameHtml = new WeakMap<HTMLIFrameElement, string>();
function frameOf(w: MessageEventSource | null): HTMLIFrameElement | undefined {
  for (const f of document.querySelectorAll<HTMLIFrameElement>('iframe.out-frame')) if (f.contentWindow === w) return f;
  return undefined;
}
window.addEventListener('message', (e) => {
  if (!e.data || typeof e.data !== 'object') return;
  const f = frameOf(e.source);
  if (!f) return;
  if (e.data.labbookReady) (e.source as Window).postMessage({ labbookHtml: frameHtml.get(f) ?? '', labbookDark: isDark() }, '*');
  else if (typeof e.data.labbookHeight === 'number') f.style.height = Math.min(Math.max(20, e.data.labbookHeight + 4), 4000) + 'px';
});

// The page's theme changed: frames set their text colours to match.
window.addEventListener('labbook-theme', () => {
  for (const f of document.querySelectorAll<HTMLIFrameElement>('iframe.out-frame')) f.contentWindow?.postMessage({ labbookDark: isDark() }, '*');
});

function sandboxFrame(html: string): HTMLIFrameElement {
  const f = document.createElement('iframe');
  f.className = 'out-frame';
  // Links open in new windows (frame.html's <base target="_blank">) that keep this
  // sandbox: without allow-popups-to-escape-sandbox an output cannot open a window on
  // its own origin, outside the sandbox (docs/ui.md).
  f.setAttribute('sandbox', 'allow-scripts allow-popups allow-forms');
  f.setAttribute('referrerpolicy', 'no-referrer');
  f.src = document.documentElement.dataset.frame || '/assets/frame.html';
  f.style.height = '24px';
  frameHtml.set(f, html);
  return f;
}

function ansiPre(text: string, cls: string): HTMLElement {
  const pre = document.createElement('pre');
  pre.className = cls;
  pre.innerHTML = ansi.ansi_to_html(text);
  return pre;
}

/** A long text shows its head and tail, with buttons to see or download all of it. */
/** Offset just past the n-th newline from the start, or -1 if there are fewer. */
function afterLines(text: string, n: number): number {
  let at = 0;
  for (let k = 0; k < n; k++) {
    const nl = text.indexOf('\n', at);
    if (nl < 0) return -1;
    at = nl + 1;
  }
  return at;
}

/** Offset where the last n lines begin, or -1 if there are fewer. */
function beforeLines(text: string, n: number): number {
  let at = text.length;
  if (text.endsWith('\n')) at--;
  for (let k = 0; k < n; k++) {
    const nl = text.lastIndexOf('\n', at - 1);
    if (nl < 0) return -1;
    at = nl;
  }
  return at + 1;
}

function countLines(text: string, from: number, to: number): number {
  let n = 0;
  for (let at = text.indexOf('\n', from); at >= 0 && at < to; at = text.indexOf('\n', at + 1)) n++;
  return n;
}

/** A long text shows its head and tail, with buttons to see or download all of it.
 * Only the head and tail are looked at, so this costs the same for 1 MB or 100 MB. */
function bigText(text: string, cls: string, name: string): HTMLElement {
  let headEnd = afterLines(text, HEAD_LINES);
  let tailStart = beforeLines(text, TAIL_LINES);
  const fewLines = headEnd < 0 || tailStart < 0 || tailStart <= headEnd;
  if (text.length <= BIG_CHARS && fewLines) return ansiPre(text, cls);
  if (fewLines || headEnd > BIG_CHARS / 2) headEnd = BIG_CHARS / 2;
  if (fewLines || text.length - tailStart > BIG_CHARS / 2) tailStart = text.length - BIG_CHARS / 2;
  if (tailStart <= headEnd) return ansiPre(text, cls);
  const box = document.createElement('div');
  box.className = 'big-output';
  const bar = document.createElement('div');
  bar.className = 'big-bar';
  const hiddenLines = text.length < 20_000_000 ? countLines(text, headEnd, tailStart) : -1;
  bar.textContent = `… ${hiddenLines > 0 ? hiddenLines.toLocaleString() + ' more lines, ' : ''}${(tailStart - headEnd).toLocaleString()} characters not shown … `;
  const all = document.createElement('button');
  all.textContent = 'Show all';
  all.onclick = () => box.replaceWith(ansiPre(text, cls));
  const dl = document.createElement('button');
  dl.textContent = 'Download';
  dl.onclick = () => saveBlob(new Blob([text], { type: 'text/plain' }), name);
  bar.append(all, ' ', dl);
  box.append(ansiPre(text.slice(0, headEnd).replace(/\n$/, ''), cls), bar, ansiPre(text.slice(tailStart), cls));
  return box;
}

const MIME_ORDER = ['application/javascript', 'text/html', 'text/markdown', 'text/latex', 'image/svg+xml', 'image/png', 'image/jpeg', 'image/gif', 'application/json', 'text/plain'];

function renderData(data: Record<string, any>, metadata: Record<string, any> = {}): HTMLElement {
  const mime = MIME_ORDER.find((m) => m in data) ?? Object.keys(data)[0];
  const el = document.createElement('div');
  el.className = 'out-data';
  if (!mime) return el;
  const v = data[mime];
  switch (mime) {
    case 'application/javascript':
      el.append(sandboxFrame(`<div id="output"></div><script>var element=document.getElementById("output");${joinText(v).replace(/<\/script/gi, '<\\/script')}</script>`));
      break;
    case 'text/html':
      el.append(sandboxFrame(joinText(v)));
      break;
    case 'text/markdown':
      el.classList.add('markdown');
      renderMarkdown(joinText(v)).then((html) => { el.innerHTML = html; });
      break;
    case 'text/latex':
      renderLatex(joinText(v)).then((html) => { el.innerHTML = html; });
      break;
    case 'image/svg+xml': {
      const img = document.createElement('img');
      img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(joinText(v));
      el.append(img);
      break;
    }
    case 'image/png': case 'image/jpeg': case 'image/gif': {
      const img = document.createElement('img');
      img.src = `data:${mime};base64,${joinText(v).replace(/\n/g, '')}`;
      const md = metadata[mime] || metadata;
      if (md && md.width) img.width = md.width;
      if (md && md.height) img.height = md.height;
      img.alt = 'output image';
      el.append(img);
      break;
    }
    case 'application/json':
      el.append(ansiPre(JSON.stringify(v, null, 2), 'out-text'));
      break;
    default:
      el.append(bigText(joinText(v), 'out-text', 'output.txt'));
  }
  return el;
}

export function renderOutput(o: Output): HTMLElement {
  let el: HTMLElement;
  switch (o.output_type) {
    case 'stream':
      el = bigText(joinText(o.text), 'out-stream ' + (o.name === 'stderr' ? 'stderr' : 'stdout'), `${o.name}.txt`);
      break;
    case 'error': {
      const tb = Array.isArray(o.traceback) && o.traceback.length ? o.traceback.join('\n') : `${o.ename}: ${o.evalue}`;
      el = bigText(tb, 'out-error', 'traceback.txt');
      break;
    }
    case 'display_data':
    case 'execute_result': {
      const colab = o.data && [UPLOAD_MIME, DOWNLOAD_MIME].find((m) => m in o.data);
      el = colab ? colabView(o, colab, o.data[colab], liveness.get(o)) : renderData(o.data || {}, o.metadata);
      break;
    }
    default:
      el = ansiPre(`[output of unknown type ${o.output_type}]`, 'out-text');
  }
  const wrap = document.createElement('div');
  wrap.className = 'output ' + o.output_type;
  wrap.append(el);
  return wrap;
}

/** The outputs of one cell: model plus view, redrawn per animation frame. */
export class OutputArea {
  outputs: Output[] = [];
  private views: (HTMLElement | null)[] = [];
  private dirty = new Set<number>();
  private full = true;
  private frame = 0;
  private clearWait = false;
  /** display_id -> output indices, for update_display_data. */
  displays = new Map<string, Output[]>();
  extra: HTMLElement | null = null; // an input() prompt, kept after the outputs
  onChange: () => void = () => {};

  constructor(public el: HTMLElement) {}

  /** Replaces the outputs; `live` says they come from the kernel to this page (the
   * hub's account of a run in flight), as for handle(). */
  set(outputs: Output[], live?: Liveness): void {
    this.outputs = outputs.slice();
    if (live) for (const o of this.outputs) if (o.output_type === 'display_data') liveness.set(o, live);
    this.displays.clear();
    this.full = true;
    this.schedule();
  }

  clear(wait = false): void {
    if (wait) { this.clearWait = true; return; }
    this.outputs = [];
    this.displays.clear();
    this.full = true;
    this.schedule();
    this.onChange();
  }

  private takeWait(): void {
    if (this.clearWait) {
      this.clearWait = false;
      this.outputs = [];
      this.full = true;
    }
  }

  /** Adds what an iopub message brings; `live` says it comes from a run of this page
   * (colab.ts). Returns true if it was an output. */
  handle(type: string, c: any, live?: Liveness): boolean {
    if (type === 'clear_output') { this.clear(!!c.wait); return true; }
    if (type === 'update_display_data') {
      const id = c.transient?.display_id;
      for (const o of (id && this.displays.get(id)) || []) {
        o.data = c.data;
        o.metadata = c.metadata || {};
        const i = this.outputs.indexOf(o);
        if (i >= 0) this.dirty.add(i);
      }
      this.schedule();
      this.onChange();
      return true;
    }
    if (type === 'stream') {
      this.takeWait();
      const last = this.outputs[this.outputs.length - 1];
      if (last && last.output_type === 'stream' && last.name === c.name) {
        last.text = appendStream(joinText(last.text), c.text);
        this.dirty.add(this.outputs.length - 1);
      } else {
        this.outputs.push({ output_type: 'stream', name: c.name, text: appendStream('', c.text) });
        this.dirty.add(this.outputs.length - 1);
      }
    } else if (type === 'display_data' || type === 'execute_result' || type === 'error') {
      this.takeWait();
      let o: Output;
      if (type === 'error') o = { output_type: 'error', ename: c.ename, evalue: c.evalue, traceback: c.traceback };
      else if (type === 'display_data') o = { output_type: 'display_data', data: c.data, metadata: c.metadata || {} };
      else o = { output_type: 'execute_result', data: c.data, metadata: c.metadata || {}, execution_count: c.execution_count };
      this.outputs.push(o);
      if (live) liveness.set(o, live);
      const id = c.transient?.display_id;
      if (id) this.displays.set(id, [...(this.displays.get(id) || []), o]);
      this.dirty.add(this.outputs.length - 1);
    } else {
      return false;
    }
    this.schedule();
    this.onChange();
    return true;
  }

  private slowTimer = 0;

  private schedule(): void {
    if (this.frame || this.slowTimer) return;
    // A stream past a megabyte is redrawn four times a second, not every frame.
    const last = this.outputs[this.outputs.length - 1];
    if (last && last.output_type === 'stream' && typeof last.text === 'string' && last.text.length > 1_000_000) {
      this.slowTimer = window.setTimeout(() => {
        this.slowTimer = 0;
        if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
      }, 250);
      return;
    }
    this.frame = requestAnimationFrame(() => this.draw());
  }

  /** Draws now what is pending (also used before a screenshot or a test looks). */
  draw(): void {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    clearTimeout(this.slowTimer);
    this.slowTimer = 0;
    if (this.full) {
      this.full = false;
      this.dirty.clear();
      this.el.textContent = '';
      this.views = this.outputs.map((o) => renderOutput(o));
      this.el.append(...(this.views as HTMLElement[]));
    } else {
      for (const i of [...this.dirty].sort((a, b) => a - b)) {
        const o = this.outputs[i];
        if (!o) continue;
        const v = renderOutput(o);
        const old = this.views[i];
        if (old && old.parentNode === this.el) old.replaceWith(v);
        else this.el.insertBefore(v, this.extra && this.extra.parentNode === this.el ? this.extra : null);
        this.views[i] = v;
      }
      this.dirty.clear();
    }
    if (this.extra && this.extra.parentNode !== this.el) this.el.append(this.extra);
    this.el.classList.toggle('empty', this.outputs.length === 0 && !this.extra);
  }

  setExtra(el: HTMLElement | null): void {
    this.extra?.remove();
    this.extra = el;
    this.schedule();
  }
}
