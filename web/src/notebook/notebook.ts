// The notebook editor: cells, running them on a runtime, outputs, saving. Loaded as
// its own chunk when a /notebooks/... page opens.
import type { EditorView } from '@codemirror/view';
import { AnsiUp } from 'ansi_up';
import { ApiError, api, contents, runtimeFiles, saveBlob } from '../api';
import { navigate, setLeaveHook, topBar } from '../main';
import { uploadInto } from '../home';
import { clear, confirmBox, dialog, formatSize, h, notebookUrl, recent, toast } from '../ui';
import { icon } from '../icons';
import { hideTip, highlightInto, Lang } from './highlight';

// CodeMirror is a chunk of its own, loaded right after a notebook is shown: the
// cells appear (as highlighted text) without waiting for it.
type EditorModule = typeof import('./editor');
let editorMod: EditorModule | null = null;
let editorP: Promise<EditorModule> | null = null;
function loadEditor(): Promise<EditorModule> {
  if (!editorP) editorP = import('./editor').then((m) => (editorMod = m));
  return editorP;
}
import { KernelClient, JMsg } from './kernel';
import { OutputArea, Output, joinText } from './outputs';
import { renderMarkdown } from './markdown';
import { settleColabWidgets } from './colab';
import { Form, formView, parseForm } from './forms';
import { notebookSettings, SettingsChoice } from './settings';
import { drawSecrets } from './secrets';

interface CellModel {
  id: string;
  cell_type: 'code' | 'markdown' | 'raw';
  source: string;
  metadata: Record<string, any>;
  outputs: Output[];
  execution_count: number | null;
  attachments?: Record<string, any>;
}

interface Session { id: string; path: string; kernel: { id: string; name: string; execution_state?: string; queue_position?: number | null; reason?: string } }

const newId = () => (crypto as any).randomUUID ? crypto.randomUUID().replace(/-/g, '').slice(0, 16) : Math.random().toString(36).slice(2, 18);
const ansi = new AnsiUp();

/** nbformat's on-disk multiline form: a list of lines that keep their endings. */
function splitLines(s: string): string[] {
  const out = s.split(/(?<=\n)/);
  return out.length === 1 && out[0] === '' ? [] : out;
}

function stable(v: any): string {
  if (Array.isArray(v)) return '[' + v.map(stable).join(',') + ']';
  if (v && typeof v === 'object') return '{' + Object.keys(v).sort().map((k) => JSON.stringify(k) + ':' + stable(v[k])).join(',') + '}';
  return JSON.stringify(v);
}

/** What a person edits in a notebook: cells' types, ids and sources, and the metadata.
 * Outputs and execution counts are left out: the hub records those into the file while
 * a notebook runs, and that is not a conflicting edit. */
function structureKey(nb: any): string {
  const cells = (nb.cells || []).map((c: any) => ({ t: c.cell_type, id: c.id ?? null, s: joinText(c.source) }));
  const md = { ...(nb.metadata || {}) };
  return stable({ cells, md });
}

function fromFile(c: any): CellModel {
  const type = c.cell_type === 'markdown' || c.cell_type === 'raw' ? c.cell_type : 'code';
  return {
    id: typeof c.id === 'string' && c.id ? c.id : newId(),
    cell_type: type,
    source: joinText(c.source),
    metadata: c.metadata && typeof c.metadata === 'object' ? c.metadata : {},
    outputs: type === 'code' && Array.isArray(c.outputs) ? c.outputs : [],
    execution_count: type === 'code' && typeof c.execution_count === 'number' ? c.execution_count : null,
    attachments: c.attachments,
  };
}

/** Most of one text output written into the file, as the hub's recorder keeps (8 MiB):
 * the page still shows, and downloads, all of it. */
const FILE_TEXT_MAX = 8 << 20;

function capText(t: string): string {
  if (t.length <= FILE_TEXT_MAX) return t;
  let head = t.slice(0, FILE_TEXT_MAX / 2);
  let tail = t.slice(-FILE_TEXT_MAX / 2);
  head = head.slice(0, head.lastIndexOf('\n') + 1) || head;
  tail = tail.slice(tail.indexOf('\n') + 1) || tail;
  const cut = t.length - head.length - tail.length;
  return `${head}[labbook] ${cut.toLocaleString('en')} characters of this output are not saved in the notebook (it passed 8 MiB); the page that ran it showed all of it.\n${tail}`;
}

function outputToFile(o: Output): Output {
  const x: Output = { ...o };
  if (x.output_type === 'stream') x.text = splitLines(capText(joinText(x.text)));
  if (x.data) {
    const d: Record<string, any> = {};
    for (const [k, v] of Object.entries(x.data)) d[k] = typeof v === 'string' && (k.startsWith('text/') || k === 'application/javascript' || k === 'image/svg+xml') ? splitLines(k === 'text/plain' ? capText(v) : v) : v;
    x.data = d;
  }
  return x;
}

class Cell {
  el: HTMLElement;
  input: HTMLElement;
  view: EditorView | null = null;
  out: OutputArea;
  countEl: HTMLElement;
  timeEl: HTMLElement;
  rendered: HTMLElement;
  /** Why the last run ended badly (the runtime crashed while it ran): shown under the
   * outputs until the cell runs again; not part of the notebook. */
  noteEl: HTMLElement;
  /** A Colab form (#@title, #@param) beside the code, when the source has one. */
  formEl: HTMLElement | null = null;
  running = false;
  queued = false;
  /** This page changed the outputs (ran or cleared the cell) since it loaded them. */
  touched = false;
  msgId: string | null = null;
  startedAt = 0;
  private timer = 0;

  constructor(public nb: NotebookPage, public m: CellModel) {
    this.countEl = h('div', { class: 'count' });
    this.timeEl = h('div', { class: 'time' });
    this.input = h('div', { class: 'input' });
    this.rendered = h('div', { class: 'rendered markdown' });
    const outEl = h('div', { class: 'outputs empty', 'aria-live': 'polite' });
    this.noteEl = h('div', { class: 'cell-note', role: 'status', hidden: true });
    this.out = new OutputArea(outEl);
    this.out.onChange = () => { this.m.outputs = this.out.outputs; nb.changed(false); };
    this.el = h('div', { class: 'cell', 'data-cell-id': m.id, tabindex: -1 },
      h('div', { class: 'gutter' },
        h('button', { class: 'run', title: 'Run cell (Ctrl+Enter)', 'aria-label': 'Run cell', onclick: (e: Event) => { e.stopPropagation(); nb.select(this); nb.runCell(this); } }),
        this.countEl, this.timeEl),
      h('div', { class: 'body' }, this.input, this.rendered, outEl, this.noteEl),
      h('div', { class: 'cell-tools' },
        h('button', { class: 'icon', title: 'Move cell up', onclick: () => nb.moveCell(this, -1) }, icon('up')),
        h('button', { class: 'icon', title: 'Move cell down', onclick: () => nb.moveCell(this, 1) }, icon('down')),
        h('button', { class: 'icon', title: 'Copy cell', onclick: () => nb.copyCells([this]) }, icon('copy')),
        h('button', { class: 'icon', title: 'Clear output', onclick: () => { this.touched = true; this.out.clear(); this.m.execution_count = null; this.updateGutter(); } }, icon('clear')),
        h('button', { class: 'icon', title: 'Delete cell', onclick: () => nb.deleteCell(this) }, icon('trash'))),
      h('div', { class: 'adder' },
        h('button', { title: 'Add a code cell below', onclick: () => nb.insertCell(this, 'code', 1) }, icon('plus'), ' Code'),
        h('button', { title: 'Add a text cell below', onclick: () => nb.insertCell(this, 'markdown', 1) }, icon('plus'), ' Text')));
    this.el.addEventListener('mousedown', () => nb.select(this));
    this.input.addEventListener('mousedown', (e) => {
      if (!this.view) { e.preventDefault(); this.edit(); }
    });
    this.rendered.addEventListener('dblclick', () => this.edit());
    this.out.set(m.outputs);
    this.refresh();
    this.showRunInfo();
  }

  get lang(): Lang {
    return this.m.cell_type === 'code' ? 'python' : this.m.cell_type === 'markdown' ? 'markdown' : 'text';
  }

  /** Redraws the static parts after a model change. */
  refresh(): void {
    const t = this.m.cell_type;
    this.el.classList.toggle('code', t === 'code');
    this.el.classList.toggle('text', t !== 'code');
    if (this.view) {
      this.view.destroy();
      this.view = null;
    }
    this.el.classList.toggle('md-editing', t === 'markdown' && this.editingText);
    if (t === 'markdown' && !this.editingText) {
      this.input.hidden = true;
      this.rendered.hidden = false;
      this.renderMarkdown();
    } else {
      this.input.hidden = false;
      // A text cell being edited shows its rendering beside the source, kept up to date.
      this.rendered.hidden = t !== 'markdown';
      if (t === 'markdown') this.renderMarkdown();
      const pre = h('pre', { class: 'static cm-like' });
      highlightInto(pre, this.m.source, this.lang);
      if (!this.m.source && t === 'code') pre.append(h('span', { class: 'ph', text: ' ' }));
      this.input.replaceChildren(pre);
    }
    this.drawForm();
    this.updateGutter();
  }

  private formTimer = 0;

  /** Draws the cell's Colab form again (not while one of its fields is being used,
   * unless `force`), and hides the code when the cell shows only its form. */
  drawForm(force = false): void {
    const form = this.m.cell_type === 'code' ? parseForm(this.m.source) : null;
    if (!form && !this.formEl) return;
    const hidden = !!form && this.codeHidden(form);
    if (this.m.cell_type === 'code') this.input.hidden = hidden;
    this.el.classList.toggle('form-only', hidden);
    if (!force && this.formEl && this.formEl.contains(document.activeElement)) return;
    const el = form ? formView(form, {
      source: () => this.m.source,
      onSource: (src) => this.setFormSource(src),
      codeHidden: hidden,
      toggleCode: () => this.setCodeHidden(!hidden, form),
    }) : null;
    if (el) el.addEventListener('dblclick', (e) => { if (hidden && !(e.target as HTMLElement).closest('input, select, button')) this.setCodeHidden(false, form!); });
    if (this.formEl && el) this.formEl.replaceWith(el);
    else if (el) this.input.after(el);
    else this.formEl?.remove();
    this.formEl = el;
    this.el.classList.toggle('has-form', !!el);
  }

  /** Whether only the form shows: Colab's `cellView: "form"` in the cell's metadata,
   * or, without that key, `{display-mode: "form"}` on the #@title line. */
  codeHidden(form: Form): boolean {
    const v = this.m.metadata.cellView;
    return v === undefined ? form.displayMode === 'form' : v === 'form';
  }

  /** "Hide code" / "Show code": writes the metadata as Colab does (`cellView: "form"`,
   * removed again when the code shows; `"both"` where the title itself asks for the
   * form only, so that the choice sticks). */
  setCodeHidden(hide: boolean, form: Form): void {
    if (hide) this.m.metadata.cellView = 'form';
    else if (form.displayMode === 'form') this.m.metadata.cellView = 'both';
    else delete this.m.metadata.cellView;
    if (hide && this.view) this.refresh(); /* the editor goes, with the code */
    this.drawForm(true);
    this.nb.changed(true);
  }

  /** A form field changed its line: the source follows, the form stays as it is. */
  setFormSource(src: string): void {
    this.m.source = src;
    if (this.view) this.view.dispatch({ changes: { from: 0, to: this.view.state.doc.length, insert: src } });
    else {
      const pre = h('pre', { class: 'static cm-like' });
      highlightInto(pre, src, this.lang);
      this.input.replaceChildren(pre);
    }
    this.nb.changed(true);
  }

  editingText = false;

  async renderMarkdown(): Promise<void> {
    const src = this.m.source;
    if (!src.trim()) {
      this.rendered.innerHTML = '<p class="ph">Empty text cell. Double-click to edit.</p>';
      return;
    }
    const html = await renderMarkdown(src, this.m.attachments);
    if (src === this.m.source) {
      this.rendered.innerHTML = html;
      this.nb.loadDriveImages(this.rendered);
      this.nb.tocChanged();
    }
  }

  private previewTimer = 0;

  /** Redraws a text cell's preview shortly after typing stops for a moment. */
  previewSoon(): void {
    clearTimeout(this.previewTimer);
    this.previewTimer = window.setTimeout(() => this.renderMarkdown(), 150);
  }

  /** Turns the static text into an editor and focuses it. */
  edit(at?: 'start' | 'end'): void {
    if (this.m.cell_type === 'code' && this.input.hidden) return; /* only its form shows */
    if (this.m.cell_type === 'markdown' && !this.editingText) {
      this.editingText = true;
      this.refresh();
    }
    if (!this.view) {
      if (!editorMod) {
        loadEditor().then(() => { if (this.nb.sel === this && !this.view) this.edit(at); });
        return;
      }
      this.input.textContent = '';
      this.view = editorMod.createEditor(this.input, this.m.source, this.lang, {
        onChange: (text) => { this.m.source = text; this.nb.changed(true); if (this.m.cell_type === 'markdown') this.previewSoon(); else { clearTimeout(this.formTimer); this.formTimer = window.setTimeout(() => this.drawForm(), 300); } },
        onFocus: () => this.nb.select(this, false),
        complete: this.m.cell_type === 'code' ? (code, pos) => this.nb.complete(code, pos) : undefined,
        inspect: this.m.cell_type === 'code' ? (code, pos) => this.nb.inspect(code, pos) : undefined,
      });
    }
    this.view.focus();
    if (at) {
      const pos = at === 'start' ? 0 : this.view.state.doc.length;
      this.view.dispatch({ selection: { anchor: pos } });
    }
  }

  /** Closes the editor's completion popup and help, and drops answers on their way. */
  closePopups(): void {
    if (this.view && editorMod) editorMod.closePopups(this.view);
    hideTip();
  }

  /** Leaves the editor (markdown cells show their rendering again). */
  stopEditing(): void {
    this.closePopups();
    if (this.m.cell_type === 'markdown' && this.editingText) {
      this.editingText = false;
      this.refresh();
    } else if (this.view && this.view.hasFocus) {
      this.view.contentDOM.blur();
    }
  }

  setSource(text: string): void {
    this.m.source = text;
    if (this.view) this.view.dispatch({ changes: { from: 0, to: this.view.state.doc.length, insert: text } });
    else this.refresh();
  }

  updateGutter(): void {
    const t = this.m.cell_type;
    this.el.classList.toggle('running', this.running);
    this.el.classList.toggle('queued', this.queued && !this.running);
    if (t !== 'code') { this.countEl.textContent = ''; return; }
    this.countEl.textContent = this.running || this.queued ? '[*]' : this.m.execution_count ? `[${this.m.execution_count}]` : '[ ]';
  }

  setNote(text: string): void {
    this.noteEl.textContent = text;
    this.noteEl.hidden = !text;
  }

  setQueued(): void {
    this.setNote('');
    this.queued = true;
    this.running = false;
    this.timeEl.textContent = '';
    this.updateGutter();
  }

  /** `since`: when the run started (ms since the epoch), for a run this page joined late. */
  /** The kernel started this run (its execute_input came): an aborted one never does. */
  executed = false;

  setRunning(since?: number): void {
    const at = performance.now() - (since && since < Date.now() ? Date.now() - since : 0);
    if (this.running) {
      if (since) this.startedAt = at;
      return;
    }
    this.executed = false;
    this.running = true;
    this.startedAt = at;
    clearInterval(this.timer);
    this.timer = window.setInterval(() => { this.timeEl.textContent = ((performance.now() - this.startedAt) / 1000).toFixed(0) + 's'; }, 1000);
    this.updateGutter();
  }

  setDone(aborted = false): void {
    clearInterval(this.timer);
    if (this.running && !aborted && this.executed) {
      // Kept in the notebook as Colab keeps it (cell metadata.executionInfo).
      const elapsed = Math.round(performance.now() - this.startedAt);
      this.m.metadata = { ...this.m.metadata, executionInfo: {
        elapsed, status: this.out.outputs.some((o) => o.output_type === 'error') ? 'error' : 'ok',
        timestamp: Date.now() - elapsed, user_tz: new Date().getTimezoneOffset() } };
      this.running = false;
      this.showRunInfo();
    }
    this.running = false;
    this.queued = false;
    this.msgId = null;
    this.out.setExtra(null);
    this.out.draw(); // a finished cell shows all its output at once, not a frame later
    settleColabWidgets(this.out.el);
    this.updateGutter();
  }

  /** The last run's time and duration, from metadata.executionInfo (saved with the
   * notebook, so shown after a reload too). */
  showRunInfo(): void {
    const info = this.m.metadata?.executionInfo;
    if (this.m.cell_type !== 'code' || !info || typeof info.elapsed !== 'number' || this.running) return;
    const s = info.elapsed / 1000;
    this.timeEl.textContent = s < 10 ? s.toFixed(1) + 's' : s < 3600 ? Math.round(s) + 's' : `${Math.floor(s / 3600)}h${Math.round((s % 3600) / 60)}m`;
    const at = typeof info.timestamp === 'number' ? new Date(info.timestamp).toLocaleString() : '';
    this.timeEl.title = `${at ? `ran ${at} ` : ''}for ${s.toFixed(2)} s${info.status === 'error' ? ', ended with an error' : ''}`;
  }

  toJSON(): any {
    const base: any = { cell_type: this.m.cell_type, id: this.m.id, metadata: this.m.metadata, source: splitLines(this.m.source) };
    if (this.m.cell_type === 'code') {
      base.execution_count = this.m.execution_count;
      base.outputs = this.out.outputs.map(outputToFile);
    } else if (this.m.attachments) {
      base.attachments = this.m.attachments;
    }
    return base;
  }
}

type Conn = 'none' | 'starting' | 'connected';

export class NotebookPage {
  cells: Cell[] = [];
  sel: Cell | null = null;
  meta: Record<string, any> = {};
  nbformatMinor = 5;
  readOnly = false;
  lastModified = '';
  baseKey = '';
  seq = 0;
  savedSeq = 0;
  saving = false;
  saveTimer = 0;
  draftTimer = 0;
  conflictOpen = false;
  session: Session | null = null;
  kernel: KernelClient | null = null;
  conn: Conn = 'none';
  kernelState = '';
  runQueue: Cell[] = [];
  clipboard: any[] = [];
  undo: (() => void)[] = [];
  chord = 0;
  gaugeTimer = 0;
  startPoll = 0;

  root: HTMLElement;
  list: HTMLElement;
  titleInput: HTMLInputElement;
  statusEl: HTMLElement;
  gaugesEl: HTMLElement;
  saveEl: HTMLElement;
  side: HTMLElement;
  bannerEl: HTMLElement;
  sidePanel = '';
  private cleanup: (() => void)[] = [];

  constructor(root: HTMLElement, public path: string) {
    this.root = root;
    this.list = h('div', { class: 'cells', role: 'list' });
    this.titleInput = h('input', { class: 'title', 'aria-label': 'Notebook name', value: this.name });
    this.statusEl = h('div', { class: 'runtime-status', 'data-testid': 'runtime-status' });
    this.gaugesEl = h('div', { class: 'gauges' });
    this.saveEl = h('span', { class: 'save-state', 'data-testid': 'save-state' });
    this.side = h('aside', { class: 'nb-side', hidden: true });
    this.bannerEl = h('div', { class: 'nb-banner', role: 'alert', 'data-testid': 'banner', hidden: true });
  }

  /** A message about the runtime that stays until dismissed (or replaced): the user may
   * come back to the tab long after it happened. */
  banner(text: string, kind: 'error' | 'info' = 'error', actions: [string, () => void][] = []): void {
    const close = () => { this.bannerEl.hidden = true; this.bannerEl.textContent = ''; };
    this.bannerEl.className = 'nb-banner ' + kind;
    this.bannerEl.replaceChildren(h('span', { class: 'text', text }),
      ...actions.map(([label, fn]) => h('button', { text: label, onclick: () => { close(); fn(); } })),
      h('button', { class: 'dismiss', text: 'Dismiss', onclick: close }));
    this.bannerEl.hidden = false;
  }

  hideBanner(): void {
    this.bannerEl.hidden = true;
    this.bannerEl.textContent = '';
  }

  get name(): string {
    return this.path.split('/').pop() || this.path;
  }

  get draftKey(): string {
    return 'labbook:draft:' + this.path;
  }

  // --- loading ---

  async open(): Promise<void> {
    clear(this.root);
    document.title = this.name + ' - labbook';
    this.buildChrome();
    let m;
    try {
      m = await contents.get(this.path, { type: 'notebook' });
    } catch (e) {
      this.showBroken((e as Error).message, e instanceof ApiError ? e.status : 0);
      return;
    }
    const nb = m.content;
    if (!nb || typeof nb !== 'object' || nb.nbformat !== 4 || !Array.isArray(nb.cells)) {
      this.showBroken(`This file is not an nbformat 4 notebook (nbformat ${JSON.stringify(nb?.nbformat)}).`, 400);
      return;
    }
    recent.add(this.path);
    this.load(nb, m.last_modified);
    setTimeout(() => loadEditor().catch(() => toast('The editor could not be loaded: reload the page', 'error')));
    this.restoreDraft(nb, m.last_modified);
    this.attachExisting();
  }

  load(nb: any, lastModified: string): void {
    this.meta = nb.metadata && typeof nb.metadata === 'object' ? nb.metadata : {};
    this.nbformatMinor = Math.max(5, nb.nbformat_minor || 0);
    this.lastModified = lastModified;
    this.baseKey = structureKey(nb);
    for (const c of this.cells) c.el.remove();
    this.cells = (nb.cells as any[]).map((c) => new Cell(this, fromFile(c)));
    if (!this.cells.length) this.cells.push(new Cell(this, fromFile({ cell_type: 'code', source: '' })));
    this.list.replaceChildren(...this.cells.map((c) => c.el));
    this.select(this.cells[0], false);
    this.seq = this.savedSeq = 0;
    this.updateSaveState();
    this.tocChanged();
  }

  showBroken(message: string, status: number): void {
    this.readOnly = true;
    const text = status === 404 ? `There is no notebook at "${this.path}".` : `This notebook cannot be opened: ${message}`;
    this.list.replaceChildren(h('div', { class: 'broken', role: 'alert' },
      h('h2', { text: 'Cannot open this notebook' }),
      h('p', { text }),
      h('p', { text: 'The file has not been changed. Fix it in a text editor, or download it from My Drive.' }),
      h('button', { class: 'primary', text: 'Back to My Drive', onclick: () => navigate('/tree') })));
  }

  restoreDraft(disk: any, lastModified: string): void {
    let d: any;
    try { d = JSON.parse(localStorage.getItem(this.draftKey) || 'null'); } catch { d = null; }
    if (!d || !d.content) return;
    if (structureKey(d.content) === structureKey(disk)) {
      // Same edits; the draft may still hold outputs newer than the last save (a
      // reload while a cell printed), which are kept when the file is the draft's base.
      if (d.lastModified === lastModified && !d.noOutputs && stable(d.content.cells) !== stable(disk.cells)) {
        this.load({ ...disk, cells: d.content.cells }, lastModified);
        this.changed(false);
      } else {
        localStorage.removeItem(this.draftKey);
      }
      return;
    }
    const apply = () => {
      const outputsById = new Map(this.cells.map((c) => [c.m.id, c.m.outputs]));
      const nb = { ...d.content, cells: d.content.cells.map((c: any) => (d.noOutputs && outputsById.has(c.id) ? { ...c, outputs: outputsById.get(c.id) } : c)) };
      this.load(nb, lastModified);
      this.changed(true);
      toast('Restored changes made while the server could not be reached.');
    };
    if (d.lastModified === lastModified || d.baseKey === structureKey(disk)) {
      apply();
      return;
    }
    dialog('Unsaved changes', 'This browser has changes to this notebook that were never saved, and the file has also changed elsewhere since. Which version do you want?', [
      { label: 'Keep the file', value: 'file' },
      { label: 'Use my unsaved changes', value: 'mine', primary: true },
    ]).then((v) => {
      if (v === 'mine') apply();
      else localStorage.removeItem(this.draftKey);
    });
  }

  // --- the page around the cells ---

  buildChrome(): void {
    const menu = (label: string, items: [string, () => void, string?][]) => {
      const pop = h('div', { class: 'menu-pop', role: 'menu', hidden: true });
      for (const [text, fn, key] of items) {
        pop.append(h('button', { role: 'menuitem', onclick: () => { pop.hidden = true; fn(); } }, h('span', { text }), key ? h('kbd', { text: key }) : null));
      }
      const btn = h('button', { class: 'menu-btn', text: label, 'aria-haspopup': 'true', onclick: (e: Event) => {
        e.stopPropagation();
        const was = pop.hidden;
        for (const p of this.root.querySelectorAll<HTMLElement>('.menu-pop')) p.hidden = true;
        pop.hidden = !was;
        // A menu near the window's right edge opens leftwards, so none of it is cut off.
        pop.style.left = pop.style.right = '';
        if (!pop.hidden && pop.getBoundingClientRect().right > document.documentElement.clientWidth) { pop.style.left = 'auto'; pop.style.right = '0'; }
        if (!pop.hidden && pop.getBoundingClientRect().left < 0) { pop.style.right = 'auto'; pop.style.left = `${8 - pop.parentElement!.getBoundingClientRect().left}px`; }
      } });
      return h('div', { class: 'menu' }, btn, pop);
    };
    const closeMenus = () => { for (const p of this.root.querySelectorAll<HTMLElement>('.menu-pop')) p.hidden = true; };
    document.addEventListener('click', closeMenus);
    this.cleanup.push(() => document.removeEventListener('click', closeMenus));

    this.titleInput.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { e.preventDefault(); this.titleInput.blur(); }
      if (e.key === 'Escape') { this.titleInput.value = this.name; this.titleInput.blur(); }
    });
    this.titleInput.addEventListener('change', () => this.renameTo(this.titleInput.value));

    const menus = h('nav', { class: 'menubar' },
      menu('File', [
        ['Save', () => this.save(true), 'Ctrl+S'],
        ['Rename', () => this.titleInput.focus()],
        ['Download .ipynb', () => saveBlob(new Blob([JSON.stringify(this.serialize(), null, 1)], { type: 'application/x-ipynb+json' }), this.name)],
        ['Open My Drive', () => navigate('/tree')],
      ]),
      menu('Edit', [
        ['Undo cell operation', () => this.undoOp(), 'Ctrl+M Z'],
        ['Copy cell', () => this.sel && this.copyCells([this.sel])],
        ['Cut cell', () => { if (this.sel) { this.copyCells([this.sel]); this.deleteCell(this.sel); } }],
        ['Paste cell below', () => this.pasteCells()],
        ['Delete cell', () => this.sel && this.deleteCell(this.sel), 'Ctrl+M D'],
        ['Find and replace', () => this.showSide('find'), 'Ctrl+H'],
        ['Clear all outputs', () => this.clearAllOutputs()],
        ['Notebook settings', () => this.changeRuntimeType('Notebook settings')],
      ]),
      menu('View', [
        ['Table of contents', () => this.showSide('toc')],
        ['Files', () => this.showSide('files')],
      ]),
      menu('Insert', [
        ['Code cell', () => this.insertCell(this.sel, 'code', 1), 'Ctrl+M B'],
        ['Text cell', () => this.insertCell(this.sel, 'markdown', 1)],
      ]),
      menu('Runtime', [
        ['Run all', () => this.runAll(), 'Ctrl+F9'],
        ['Run before', () => this.runRange(0, this.index(this.sel)), 'Ctrl+F8'],
        ['Run selected cell', () => this.sel && this.runCell(this.sel), 'Ctrl+Enter'],
        ['Run after', () => this.runRange(this.index(this.sel), this.cells.length), 'Ctrl+F10'],
        ['Interrupt execution', () => this.interrupt(), 'Ctrl+M I'],
        ['Restart runtime', () => this.restart(false), 'Ctrl+M .'],
        ['Restart and run all', () => this.restart(true)],
        ['Disconnect and delete runtime', () => this.disconnect(true)],
        ['Change runtime type', () => this.changeRuntimeType()],
        ['Manage sessions', () => this.manageSessions()],
        ['Factory reset runtime', () => this.factoryReset()],
      ]),
      menu('Help', [
        ['Keyboard shortcuts', () => this.showShortcuts(), 'Ctrl+M H'],
      ]));

    const connectBtn = h('button', { class: 'connect', 'data-testid': 'connect', onclick: () => {
      if (this.conn === 'none') this.connect().catch((e) => this.startFailed(e));
      else this.showRuntimeInfo();
    } });
    // While a GPU runtime waits in the queue, Colab's way out: a CPU runtime now.
    const cpuBtn = h('button', { class: 'use-cpu link', 'data-testid': 'use-cpu', text: 'Use a CPU runtime instead', hidden: true,
      onclick: () => { this.useCpuInstead().catch((e) => this.startFailed(e)); } });
    this.statusEl.append(connectBtn, h('span', { class: 'dot' }), h('span', { class: 'label' }), cpuBtn);
    this.setStatus('Connect', 'none');

    const head = topBar(this.titleInput, this.saveEl);
    const bar = h('div', { class: 'nb-bar' }, menus,
      h('div', { class: 'nb-actions' },
        h('button', { title: 'Insert code cell below (Ctrl+M B)', onclick: () => this.insertCell(this.sel, 'code', 1) }, icon('plus'), ' Code'),
        h('button', { title: 'Insert text cell below', onclick: () => this.insertCell(this.sel, 'markdown', 1) }, icon('plus'), ' Text'),
        h('button', { title: 'Run all (Ctrl+F9)', onclick: () => this.runAll() }, icon('play'), ' Run all'),
        h('button', { title: 'Interrupt execution (Ctrl+M I)', 'aria-label': 'Interrupt', onclick: () => this.interrupt() }, icon('stop')),
        h('button', { class: 'icon', title: 'Table of contents', onclick: () => this.showSide('toc') }, icon('toc')),
        h('button', { class: 'icon', title: 'Files', onclick: () => this.showSide('files') }, icon('folder')),
        h('button', { class: 'icon', title: 'Find and replace', onclick: () => this.showSide('find') }, icon('search')),
        h('button', { class: 'icon', title: 'Secrets', 'aria-label': 'Secrets', onclick: () => this.showSide('secrets') }, icon('key'))),
      h('span', { class: 'spacer' }), this.gaugesEl, this.statusEl);

    this.root.append(head, bar, this.bannerEl, h('div', { class: 'nb-main' }, this.side, h('main', { class: 'nb-scroll' }, this.list)));

    const onKey = (e: KeyboardEvent) => this.onKey(e);
    document.addEventListener('keydown', onKey, true);
    this.cleanup.push(() => document.removeEventListener('keydown', onKey, true));
    const onOnline = () => { this.kernel?.reconnectNow(); this.save(false); };
    window.addEventListener('online', onOnline);
    this.cleanup.push(() => window.removeEventListener('online', onOnline));
    const onHide = () => { if (document.visibilityState === 'hidden') this.writeDraftNow(); };
    const onPageHide = () => this.writeDraftNow();
    window.addEventListener('pagehide', onPageHide);
    this.cleanup.push(() => window.removeEventListener('pagehide', onPageHide));
    document.addEventListener('visibilitychange', onHide);
    this.cleanup.push(() => document.removeEventListener('visibilitychange', onHide));
  }

  dispose(): void {
    this.writeDraftNow();
    if (this.seq !== this.savedSeq) this.save(false);
    for (const f of this.cleanup) f();
    clearInterval(this.gaugeTimer);
    clearTimeout(this.startPoll);
    this.kernel?.close();
    hideTip();
  }

  setStatus(label: string, cls: string, title = ''): void {
    const btn = this.statusEl.querySelector('.connect') as HTMLElement;
    btn.textContent = label;
    btn.title = title || label;
    this.statusEl.dataset.state = cls;
    (this.statusEl.querySelector('.use-cpu') as HTMLElement).hidden = cls !== 'queued';
  }

  /** Leaves the GPU queue for the server's default runtime type (CPU): the queued
   * runtime is shut down, the notebook's type and accelerator follow. */
  async useCpuInstead(): Promise<void> {
    const specs = await api<any>('GET', '/api/kernelspecs');
    const name: string = specs.default;
    const spec = specs.kernelspecs[name];
    this.meta.kernelspec = { name, display_name: spec.spec.display_name, language: spec.spec.language || 'python' };
    delete this.meta.accelerator;
    this.changed(true);
    await this.disconnect(true);
    await this.saveNow(); /* the hub reads metadata.accelerator from the file */
    await this.connect(name);
  }

  /** Saves now, after any save under way: before a new session, whose runtime type the
   * hub also takes from the notebook file (metadata.accelerator, as Colab writes it). */
  async saveNow(): Promise<void> {
    for (let i = 0; i < 200 && this.saving; i++) await new Promise((r) => setTimeout(r, 25));
    await this.save(true);
  }

  updateSaveState(text?: string): void {
    if (text) { this.saveEl.textContent = text; return; }
    this.saveEl.textContent = this.readOnly ? '' : this.seq === this.savedSeq ? 'All changes saved' : this.saving ? 'Saving…' : 'Unsaved changes';
  }

  // --- selection and keys ---

  index(c: Cell | null): number {
    return c ? this.cells.indexOf(c) : -1;
  }

  select(c: Cell | null, scroll = true): void {
    if (!c) return;
    if (this.sel && this.sel !== c) {
      this.sel.closePopups();
      this.sel.el.classList.remove('selected');
      if (this.sel.m.cell_type === 'markdown' && this.sel.editingText) this.sel.stopEditing();
    }
    this.sel = c;
    c.el.classList.add('selected');
    if (scroll) c.el.scrollIntoView({ block: 'nearest' });
  }

  private editing(): boolean {
    const a = document.activeElement;
    return !!a && !!a.closest('.cm-editor');
  }

  onKey(e: KeyboardEvent): void {
    if (document.querySelector('.modal-back')) return;
    const t = e.target as HTMLElement;
    const inField = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT') && !t.closest('.cm-editor');
    const ctrl = e.ctrlKey || e.metaKey;
    const k = e.key.toLowerCase();
    if (['control', 'shift', 'alt', 'meta'].includes(k)) return;
    const stop = () => { e.preventDefault(); e.stopPropagation(); };
    // Ctrl+M, then a letter (with or without Ctrl held).
    if (this.chord && Date.now() - this.chord < 3000) {
      this.chord = 0;
      const acts: Record<string, () => void> = {
        b: () => this.insertCell(this.sel, 'code', 1),
        a: () => this.insertCell(this.sel, 'code', 0),
        d: () => this.sel && this.deleteCell(this.sel),
        m: () => this.sel && this.setType(this.sel, 'markdown'),
        y: () => this.sel && this.setType(this.sel, 'code'),
        z: () => this.undoOp(),
        k: () => this.sel && this.moveCell(this.sel, -1),
        j: () => this.sel && this.moveCell(this.sel, 1),
        i: () => this.interrupt(),
        '.': () => this.restart(false),
        h: () => this.showShortcuts(),
        l: () => { /* line numbers: not offered */ },
      };
      if (acts[k]) { stop(); acts[k](); return; }
    }
    if (ctrl && k === 'm' && !e.shiftKey && !e.altKey) { stop(); this.chord = Date.now(); return; }
    if (inField) return;
    if (e.key === 'Enter' && (ctrl || e.shiftKey || e.altKey)) {
      stop();
      const c = this.sel;
      if (!c) return;
      if (ctrl && !e.shiftKey) this.runCell(c);
      else if (e.shiftKey) {
        this.runCell(c);
        const i = this.index(c);
        if (i === this.cells.length - 1) this.insertCell(c, 'code', 1);
        else { this.select(this.cells[i + 1]); this.cells[i + 1].edit('start'); }
      } else {
        this.runCell(c);
        this.insertCell(c, 'code', 1);
      }
      return;
    }
    if (ctrl && k === 's') { stop(); this.save(true); return; }
    if (ctrl && k === 'h') { stop(); this.showSide('find'); return; }
    if (ctrl && e.key === 'F9') { stop(); this.runAll(); return; }
    if (ctrl && e.key === 'F8') { stop(); this.runRange(0, this.index(this.sel)); return; }
    if (ctrl && e.key === 'F10') { stop(); this.runRange(this.index(this.sel), this.cells.length); return; }
    if (e.key === 'Escape' && this.sel) {
      // The first Escape closes a completion popup (CodeMirror's own key), the next leaves.
      const v = this.sel.view;
      if (v && v.hasFocus && editorMod && editorMod.hasPopup(v)) return;
      this.sel.stopEditing();
      return;
    }
    if (!this.editing() && this.sel && !ctrl && !e.altKey) {
      const i = this.index(this.sel);
      if ((k === 'arrowdown' || k === 'j') && i < this.cells.length - 1) { stop(); this.select(this.cells[i + 1]); }
      else if ((k === 'arrowup' || k === 'k') && i > 0) { stop(); this.select(this.cells[i - 1]); }
      else if (e.key === 'Enter') { stop(); this.sel.edit(); }
    } else if (!this.editing() && ctrl && k === 'z' && !e.shiftKey) {
      stop();
      this.undoOp();
    }
  }

  // --- cell operations (each one can be undone) ---

  private place(c: Cell, at: number): void {
    this.cells.splice(at, 0, c);
    const next = this.cells[at + 1];
    this.list.insertBefore(c.el, next ? next.el : null);
  }

  private unplace(c: Cell): number {
    const i = this.index(c);
    if (i >= 0) this.cells.splice(i, 1);
    c.el.remove();
    return i;
  }

  insertCell(ref: Cell | null, type: 'code' | 'markdown', offset: 0 | 1, model?: CellModel): Cell {
    const c = new Cell(this, model ?? fromFile({ cell_type: type, source: '' }));
    const i = ref ? this.index(ref) + offset : this.cells.length;
    this.place(c, Math.max(0, i));
    this.undo.push(() => { this.unplace(c); this.select(this.cells[Math.min(i, this.cells.length - 1)]); });
    this.select(c);
    c.edit();
    this.changed(true);
    return c;
  }

  deleteCell(c: Cell): void {
    const i = this.unplace(c);
    if (i < 0) return;
    this.undo.push(() => { this.place(c, i); c.refresh(); this.select(c); this.changed(true); });
    if (!this.cells.length) this.place(new Cell(this, fromFile({ cell_type: 'code', source: '' })), 0);
    this.select(this.cells[Math.min(i, this.cells.length - 1)]);
    this.changed(true);
  }

  moveCell(c: Cell, d: -1 | 1): void {
    const i = this.index(c);
    const j = i + d;
    if (j < 0 || j >= this.cells.length) return;
    this.unplace(c);
    this.place(c, j);
    this.undo.push(() => { this.unplace(c); this.place(c, i); this.select(c); this.changed(true); });
    this.select(c);
    this.changed(true);
  }

  setType(c: Cell, type: 'code' | 'markdown'): void {
    const old = c.m.cell_type;
    if (old === type) return;
    const outputs = c.m.outputs;
    c.m.cell_type = type;
    if (type !== 'code') { c.m.outputs = []; c.out.set([]); c.m.execution_count = null; }
    // As in Colab, the cell stays in its editor (a text cell with its preview beside).
    const editing = !!c.view && c.view.hasFocus;
    c.editingText = type === 'markdown' && editing;
    c.refresh();
    if (editing) c.edit('end');
    this.undo.push(() => { c.m.cell_type = old; c.m.outputs = outputs; c.out.set(outputs); c.refresh(); this.changed(true); });
    this.changed(true);
  }

  undoOp(): void {
    const f = this.undo.pop();
    if (f) f();
    else toast('Nothing to undo');
  }

  copyCells(cs: Cell[]): void {
    this.clipboard = cs.map((c) => JSON.parse(JSON.stringify(c.toJSON())));
    try { localStorage.setItem('labbook:clipboard', JSON.stringify(this.clipboard)); } catch { /* too big: this tab only */ }
    toast(cs.length === 1 ? 'Cell copied' : `${cs.length} cells copied`);
  }

  pasteCells(): void {
    let clip = this.clipboard;
    if (!clip.length) { try { clip = JSON.parse(localStorage.getItem('labbook:clipboard') || '[]'); } catch { clip = []; } }
    let ref = this.sel;
    for (const j of clip) {
      const m = fromFile({ ...j, id: undefined });
      ref = this.insertCell(ref, m.cell_type === 'code' ? 'code' : 'markdown', 1, m);
    }
  }

  clearAllOutputs(): void {
    for (const c of this.cells) if (c.m.cell_type === 'code') { c.touched = true; c.out.clear(); c.m.execution_count = null; c.updateGutter(); }
    this.changed(false);
  }

  // --- running ---

  async ensureKernel(): Promise<KernelClient> {
    if (this.kernel && this.conn === 'connected' && this.kernelState !== 'dead') return this.kernel;
    // A dead runtime is not coming back: replace it with a new one.
    if (this.conn === 'connected') await this.disconnect(true);
    await this.connect();
    return this.kernel!;
  }

  wsSessionId(): string {
    const key = 'labbook:ws:' + this.path;
    let id = sessionStorage.getItem(key);
    if (!id) { id = newId() + newId(); sessionStorage.setItem(key, id); }
    return id;
  }

  /** The notebook's kernelspec; the hub itself starts the GPU variant of a plain one
   * for a notebook whose saved metadata.accelerator is "GPU" (Colab's field). */
  kernelName(): string {
    return this.meta.kernelspec?.name || 'python3';
  }

  /** If this notebook already has a runtime (left running, or open in another tab),
   * attaches to it so that output still being produced shows up. */
  async attachExisting(): Promise<void> {
    try {
      const list = await api<Session[]>('GET', '/api/sessions');
      if (list.some((s) => s.path === this.path)) await this.connect();
      else if (localStorage.getItem(this.runtimeKey)) this.runtimeGone();
    } catch { /* not connected: the Connect button stays */ }
  }

  private connecting: Promise<void> | null = null;

  connect(kernelName?: string): Promise<void> {
    if (this.conn === 'connected' && !kernelName) return Promise.resolve();
    if (this.connecting) return this.connecting;
    this.connecting = (async () => {
      this.conn = 'starting';
      this.setStatus('Connecting…', 'connecting');
      try {
        const want = kernelName || this.kernelName();
        const start = (name: string) => api<Session>('POST', '/api/sessions', { path: this.path, type: 'notebook', name: this.name, kernel: { name } });
        let s: Session;
        try {
          s = await start(want);
        } catch (e) {
          // A notebook from another server may name a runtime type this one lacks.
          if (!(e instanceof ApiError && e.status === 404 && want !== 'python3')) throw e;
          toast(`This server has no runtime type "${want}": using the default one.`, 'error', 8000);
          s = await start('python3');
        }
        this.session = s;
        this.rememberRuntime(s.kernel.id);
        this.hideBanner();
        if (!this.meta.kernelspec) {
          // As JupyterLab and Colab write it, so that other tools pick the same kernel.
          this.meta.kernelspec = { name: s.kernel.name, display_name: s.kernel.name === 'python3' ? 'Python 3 (ipykernel)' : s.kernel.name, language: 'python' };
          this.changed(true);
        }
        this.kernel?.close();
        const k = new KernelClient(s.kernel.id, this.wsSessionId());
        this.kernel = k;
        k.onStatus = (st, reason) => this.onKernelStatus(st, reason);
        k.onConn = (cs) => this.onConnState(cs);
        k.onNotice = (level, text) => toast(text, level === 'error' || level === 'warning' ? 'error' : 'info', 15000);
        k.onOther = (m) => this.onOtherOutput(m);
        this.conn = 'connected';
        this.kernelState = s.kernel.execution_state || 'starting';
        if (this.sidePanel === 'files') this.drawFiles();
        this.pollStart();
        this.showStatus();
        clearInterval(this.gaugeTimer);
        this.gaugeTimer = window.setInterval(() => this.updateGauges(), 5000);
        this.updateGauges();
        setTimeout(() => this.updateGauges(), 2500); // a new runtime's first figures come from its second sample
      } catch (e) {
        this.conn = 'none';
        this.setStatus('Connect', 'none');
        throw e;
      } finally {
        this.connecting = null;
      }
    })();
    return this.connecting;
  }

  /** While a runtime starts (or waits in the GPU queue), asks the hub where it stands. */
  pollStart(): void {
    clearTimeout(this.startPoll);
    const k = this.session?.kernel;
    if (!k) return;
    const st = this.kernelState;
    if (st !== 'starting' && st !== 'queued' && st !== 'unknown' && st !== 'restarting') return;
    this.startPoll = window.setTimeout(async () => {
      try {
        const m = await api<any>('GET', `/api/kernels/${encodeURIComponent(k.id)}`);
        if (this.session?.kernel.id !== k.id) return;
        if (this.kernel?.executionState === 'unknown' || ['starting', 'queued', 'restarting'].includes(this.kernelState)) {
          this.kernelState = m.queue_position ? 'queued' : m.execution_state || this.kernelState;
          this.queuePos = m.queue_position || 0;
          this.reason = m.reason || '';
          this.showStatus();
        }
      } catch { /* shown by the connection state */ }
      this.pollStart();
    }, 1500);
  }

  queuePos = 0;
  reason = '';
  /** Requests of runs given up (restart, reset, a dead kernel): a kernel on its way out
   * may still print for them, which must not make their cells run again. */
  private abandoned = new Set<string>();

  /** Runs in flight will never finish (the runtime restarts, is reset, or died): their
   * cells stop showing as running, and whatever still comes for them is ignored. */
  abandonRuns(note = ''): void {
    for (const c of this.cells) {
      if (c.running && note) c.setNote(note);
      if (c.running || c.queued) c.setDone(true);
    }
    this.runQueue = [];
    for (const id of this.kernel?.dropRuns() ?? []) this.abandoned.add(id);
    for (const id of this.foreign.keys()) this.abandoned.add(id);
    this.foreign.clear();
  }

  onKernelStatus(st: string, reason?: string): void {
    this.kernelState = st;
    if (reason) this.reason = reason;
    if (st === 'restarting' || st === 'dead') {
      // A reason means the runtime crashed (a restart or reset asked for has none).
      const oom = !!reason && /out of memory/i.test(reason);
      const what = st === 'dead' ? 'The runtime died' : 'The runtime crashed and restarted';
      this.abandonRuns(reason ? (oom ? `${what} while this cell ran: it used all the memory it may have (${reason}).` : `${what} while this cell ran: ${reason}.`) : '');
      if (reason) {
        const text = oom ? `Your session crashed after using all available RAM (${reason}).` : `Your session crashed: ${reason}.`;
        this.banner(st === 'dead' ? `${text} The runtime is gone: running a cell starts a new one.` : `${text} The runtime restarted: its variables are gone.`);
      }
    }
    if (st === 'restarting' || st === 'starting') this.awaitReady();
    this.showStatus();
  }

  private readyAsked = false;

  /** After a restart (a factory reset, an out-of-memory restart) the kernel announces
   * only that it starts: a kernel_info request, which the hub holds until the runtime
   * is back, tells when it is ready, and the hub's own state is polled meanwhile. */
  awaitReady(): void {
    const k = this.kernel;
    if (!k || this.readyAsked) return;
    this.readyAsked = true;
    k.request('kernel_info_request', {}, 'shell', 120000).then(() => {
      if (this.kernel === k && ['starting', 'restarting', 'unknown'].includes(this.kernelState)) {
        this.kernelState = 'idle';
        this.showStatus();
      }
    }).catch(() => {}).finally(() => { this.readyAsked = false; });
    this.pollStart();
  }

  onConnState(cs: string): void {
    this.showStatus();
    if (cs === 'connected') this.save(false);
  }

  showStatus(): void {
    if (this.conn === 'none') { this.setStatus('Connect', 'none'); return; }
    if (this.kernel && this.kernel.state === 'reconnecting') { this.setStatus('Reconnecting…', 'connecting', 'The connection to the server was lost; trying again'); return; }
    const st = this.kernelState;
    if (st === 'queued') this.setStatus(`Queued (position ${this.queuePos})`, 'queued', 'Waiting for a GPU');
    else if (st === 'starting' || st === 'unknown') this.setStatus('Connecting…', 'connecting');
    else if (st === 'busy') this.setStatus('Busy', 'busy');
    else if (st === 'idle') this.setStatus('Connected', 'idle', `Runtime: ${this.session?.kernel.name}`);
    else if (st === 'restarting') this.setStatus('Restarting…', 'connecting', this.reason);
    else if (st === 'dead') this.setStatus(this.reason ? `Dead: ${this.reason}` : 'Dead', 'dead', this.reason || 'The runtime is dead');
    else this.setStatus(st, 'connecting');
  }

  async updateGauges(): Promise<void> {
    const k = this.session?.kernel;
    if (!k || this.conn !== 'connected') { this.gaugesEl.textContent = ''; return; }
    try {
      const r = await api<any>('GET', `/api/runtimes/${encodeURIComponent(k.id)}`);
      const gauge = (label: string, used: number | null, limit: number | null) => {
        if (used === null || used === undefined) return null;
        const f = limit ? Math.min(1, used / limit) : 0;
        const bar = h('span', { class: 'fill' });
        bar.style.width = `${Math.max(2, Math.round(f * 100))}%`;
        if (f > 0.9) bar.classList.add('high');
        return h('div', { class: 'gauge', title: `${label}: ${formatSize(used)}${limit ? ' of ' + formatSize(limit) : ''}`, role: 'meter', 'aria-label': label, 'aria-valuenow': Math.round(f * 100) },
          h('span', { text: `${label} ${formatSize(used)}` }), h('span', { class: 'bar' }, bar));
      };
      const g = [gauge('RAM', r.memory?.used ?? null, r.memory?.limit ?? null), gauge('Disk', r.disk?.used ?? null, r.disk?.quota ?? null)];
      for (const gpu of r.gpus || []) g.push(gauge(`GPU ${gpu.index}`, gpu.memory_used ?? null, gpu.memory_total ?? null));
      this.gaugesEl.replaceChildren(...g.filter(Boolean) as HTMLElement[]);
      if (r.state === 'queued') { this.kernelState = 'queued'; this.queuePos = r.queue_position || 0; this.showStatus(); }
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && this.session?.kernel.id === k.id) {
        // Shut down elsewhere (another tab, idle culling, its maximum lifetime).
        this.runtimeGone();
      }
    }
  }

  /** Which runtime this notebook was last connected to, kept in this browser: on
   * coming back, a runtime that ended meanwhile is announced, not silently missing. */
  private get runtimeKey(): string {
    return 'labbook:runtime:' + this.path;
  }

  rememberRuntime(id: string | null): void {
    try {
      if (id) localStorage.setItem(this.runtimeKey, JSON.stringify({ id, time: Date.now() }));
      else localStorage.removeItem(this.runtimeKey);
    } catch { /* storage full: only the announcement suffers */ }
  }

  /** The runtime ended without this page asking (idle reclaim, maximum lifetime, shut
   * down from elsewhere): said where the user looks, until dismissed. */
  runtimeGone(): void {
    this.rememberRuntime(null);
    this.abandonRuns('The runtime was shut down while this cell ran.');
    this.disconnect(false);
    this.banner('Runtime disconnected: the runtime was shut down (left idle too long, at its maximum lifetime, or from elsewhere). Its variables are gone; the outputs are kept in the notebook. Running a cell starts a new one.',
      'info', [['Connect', () => { this.connect().catch((e) => this.startFailed(e)); }]]);
  }

  async runCell(c: Cell): Promise<void> {
    if (c.m.cell_type === 'markdown') {
      c.editingText = false;
      c.refresh();
      return;
    }
    if (c.m.cell_type !== 'code' || c.running || c.queued) return;
    c.closePopups();
    c.touched = true;
    c.out.clear();
    c.m.execution_count = null;
    c.setQueued();
    this.changed(false);
    let k: KernelClient;
    try {
      k = await this.ensureKernel();
    } catch (e) {
      c.setDone(true);
      this.startFailed(e, 'Cannot connect to a runtime: ');
      return;
    }
    if (!c.queued) return; // restarted meanwhile
    const code = c.m.source;
    c.msgId = k.execute(code, c.m.id, {
      onIOPub: (m: JMsg) => {
        const t = m.header.msg_type;
        if (t === 'status') {
          if (m.content.execution_state === 'busy') c.setRunning();
          else if (m.content.execution_state === 'idle') { c.setDone(); k.forget(m.parent_header.msg_id!); this.changed(false); }
          return;
        }
        if (t === 'execute_input') {
          c.setRunning();
          c.executed = true;
          c.m.execution_count = m.content.execution_count;
          c.updateGutter();
          return;
        }
        c.out.handle(t, m.content, 'run');
      },
      onReply: (m: JMsg) => {
        if (typeof m.content.execution_count === 'number') c.m.execution_count = m.content.execution_count;
        if (m.content.status === 'aborted') c.setDone(true);
        c.updateGutter();
        for (const p of m.content.payload || []) {
          if (p.source === 'set_next_input' && p.text) {
            if (p.replace) c.setSource(p.text);
            else this.insertCell(c, 'code', 1, fromFile({ cell_type: 'code', source: p.text }));
          } else if (p.source === 'page' && p.data) {
            c.out.handle('display_data', { data: p.data, metadata: {} });
          }
        }
      },
      onInput: (m: JMsg) => this.askInput(c, m.content.prompt, !!m.content.password),
    });
    this.rememberRun(c.msgId, c.m.id);
  }

  askInput(c: Cell, prompt: string, password: boolean): void {
    const input = h('input', { type: password ? 'password' : 'text', class: 'stdin-input', 'aria-label': prompt || 'Input' });
    const box = h('div', { class: 'stdin' }, h('span', { class: 'prompt', text: prompt }), input);
    input.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter') return;
      e.preventDefault();
      e.stopPropagation();
      const v = input.value;
      c.out.setExtra(null);
      // What was typed shows as the kernel's own echo would: prompt and value.
      c.out.handle('stream', { name: 'stdout', text: `${prompt}${password ? '········' : v}\n` });
      this.kernel?.inputReply(v);
    });
    c.out.setExtra(box);
    c.out.draw();
    setTimeout(() => input.focus());
  }

  runRange(from: number, to: number): void {
    for (let i = Math.max(0, from); i < Math.min(to, this.cells.length); i++) this.runCell(this.cells[i]);
  }

  runAll(): void {
    this.runRange(0, this.cells.length);
  }

  async interrupt(): Promise<void> {
    const k = this.session?.kernel;
    if (!k) return;
    try { await api('POST', `/api/kernels/${encodeURIComponent(k.id)}/interrupt`); } catch (e) { toast((e as Error).message, 'error'); }
  }

  async restart(runAll: boolean): Promise<void> {
    const k = this.session?.kernel;
    if (!k || this.conn !== 'connected') { if (runAll) this.runAll(); return; }
    if (!(await confirmBox(runAll ? 'Restart and run all' : 'Restart runtime', 'The runtime\'s state, variables included, will be lost.', 'Restart'))) return;
    this.abandonRuns();
    this.setStatus('Restarting…', 'connecting');
    try {
      await api('POST', `/api/kernels/${encodeURIComponent(k.id)}/restart`);
    } catch (e) { toast(`Restart failed: ${(e as Error).message}`, 'error'); }
    this.kernelState = 'idle';
    this.showStatus();
    if (runAll) this.runAll();
  }

  async disconnect(deleteRuntime: boolean): Promise<void> {
    const s = this.session;
    this.kernel?.close();
    this.kernel = null;
    this.conn = 'none';
    this.session = null;
    if (this.sidePanel === 'files') this.drawFiles();
    clearInterval(this.gaugeTimer);
    this.gaugesEl.textContent = '';
    for (const c of this.cells) if (c.running || c.queued) c.setDone(true);
    if (deleteRuntime) this.rememberRuntime(null);
    if (deleteRuntime && s) {
      try { await api('DELETE', `/api/sessions/${encodeURIComponent(s.id)}`); } catch { /* already gone */ }
      try { await api('DELETE', `/api/kernels/${encodeURIComponent(s.kernel.id)}`); } catch { /* already gone */ }
    }
    this.showStatus();
  }

  /** Runs this tab started, by request id, kept for the tab's life (sessionStorage):
   * after a reload the hub replays what they printed meanwhile. */
  private runsKey(): string {
    return 'labbook:runs:' + this.path;
  }
  private runMap(): Record<string, string> {
    try { return JSON.parse(sessionStorage.getItem(this.runsKey()) || '{}'); } catch { return {}; }
  }
  rememberRun(msgId: string, cellId: string): void {
    const m = this.runMap();
    m[msgId] = cellId;
    const keys = Object.keys(m);
    for (const k of keys.slice(0, Math.max(0, keys.length - 200))) delete m[k];
    try { sessionStorage.setItem(this.runsKey(), JSON.stringify(m)); } catch { /* full: only replay suffers */ }
  }

  foreign = new Map<string, Cell>();

  /** Output of a run this page has no handler for: one started before a reload (known
   * by its request id), or by another tab or program (known by its code when its
   * execute_input is seen). Shown in its cell; anything else is left to the file. */
  onOtherOutput(m: JMsg): void {
    const parent = m.parent_header?.msg_id;
    if (!parent || m.parent_header?.msg_type !== 'execute_request' || this.abandoned.has(parent)) return;
    const t = m.header.msg_type;
    if (t === 'labbook_run') { this.adoptRun(parent, m.content); return; }
    let c = this.foreign.get(parent);
    if (!c) {
      const id = this.runMap()[parent];
      c = id ? this.cells.find((x) => x.m.id === id) : undefined;
      if (!c && t === 'execute_input') c = this.cells.find((x) => x.m.cell_type === 'code' && x.m.source === m.content.code && !x.msgId);
      if (!c || c.msgId) return;
      c.touched = true;
      this.foreign.set(parent, c);
    }
    if (t === 'status') {
      if (m.content.execution_state === 'idle') {
        c.setDone();
        this.foreign.delete(parent);
        this.changed(false);
      } else c.setRunning();
    } else if (t === 'execute_input') {
      c.out.clear();
      c.m.execution_count = m.content.execution_count;
      c.setRunning();
      c.executed = true;
    } else {
      c.setRunning();
      c.executed = true; // it printed: it ran
      // A run of this tab replayed after a reload may still wait for an upload.
      c.out.handle(t, m.content, this.runMap()[parent] ? 'replay' : undefined);
    }
  }

  /** The hub's account of a run in flight, sent when this page connects (labbook_run:
   * its cell, running or queued, and its outputs so far): the cell shows it, and what
   * the kernel sends for it from now on goes on in that cell. The outputs replace what
   * the file or a replay showed, which they include. */
  adoptRun(parent: string, r: any): void {
    const own = this.runMap()[parent];
    const id = own || r.cell_id;
    let c = this.foreign.get(parent) || (id ? this.cells.find((x) => x.m.id === id) : undefined);
    if (!c && !id) c = this.cells.find((x) => x.m.cell_type === 'code' && x.m.source === r.code && !x.msgId);
    if (!c || c.msgId || c.m.cell_type !== 'code') return;
    c.touched = true;
    this.foreign.set(parent, c);
    c.out.set(Array.isArray(r.outputs) ? r.outputs : [], own ? 'replay' : undefined);
    c.m.outputs = c.out.outputs;
    if (typeof r.execution_count === 'number') c.m.execution_count = r.execution_count;
    if (r.state === 'running') {
      c.setRunning(typeof r.started === 'number' ? r.started : undefined);
      c.executed = true;
    } else c.setQueued();
    this.changed(false);
  }

  async complete(code: string, pos: number): Promise<{ matches: string[]; start: number; end: number } | null> {
    if (!this.kernel || this.conn !== 'connected' || this.kernel.state !== 'connected') return null;
    const r = await this.kernel.request('complete_request', { code, cursor_pos: pos }, 'shell', 5000);
    if (r.content.status !== 'ok') return null;
    return { matches: r.content.matches || [], start: r.content.cursor_start, end: r.content.cursor_end };
  }

  async inspect(code: string, pos: number): Promise<string | null> {
    if (!this.kernel || this.conn !== 'connected') { toast('Connect to a runtime to see help'); return null; }
    const r = await this.kernel.request('inspect_request', { code, cursor_pos: pos, detail_level: 0 }, 'shell', 5000);
    if (r.content.status !== 'ok' || !r.content.found) return null;
    const text = r.content.data?.['text/plain'] || '';
    return `<pre>${ansi.ansi_to_html(text)}</pre>`;
  }

  /** Markdown images with a relative path are files of the drive, beside the
   * notebook: read through the Contents API (the page cannot fetch them by URL). */
  loadDriveImages(el: HTMLElement): void {
    const dir = this.path.includes('/') ? this.path.slice(0, this.path.lastIndexOf('/')) : '';
    for (const img of el.querySelectorAll<HTMLImageElement>('img[data-drive-src]')) {
      const rel = img.dataset.driveSrc!;
      const parts = (rel.startsWith('/') ? rel.slice(1) : (dir ? dir + '/' : '') + rel).split('/');
      const out: string[] = [];
      for (const p of parts) {
        if (p === '..') out.pop();
        else if (p && p !== '.') out.push(decodeURIComponent(p));
      }
      contents.get(out.join('/'), { type: 'file', format: 'base64' }).then((m) => {
        img.src = `data:${m.mimetype || 'image/png'};base64,${(m.content as string).replace(/\n/g, '')}`;
      }).catch(() => { img.alt = img.alt || `missing image: ${rel}`; img.classList.add('missing'); });
    }
  }

  showShortcuts(): void {
    const rows: [string, string][] = [
      ['Ctrl+Enter', 'Run the cell'], ['Shift+Enter', 'Run the cell and go to the next one'], ['Alt+Enter', 'Run the cell and insert one below'],
      ['Ctrl+M B / A', 'Insert a code cell below / above'], ['Ctrl+M D', 'Delete the cell'], ['Ctrl+M M / Y', 'Make it text / code'],
      ['Ctrl+M K / J', 'Move the cell up / down'], ['Ctrl+M Z', 'Undo the last cell operation'], ['Ctrl+M I', 'Interrupt'],
      ['Ctrl+M .', 'Restart the runtime'], ['Ctrl+F9 / F8 / F10', 'Run all / before / after'], ['Ctrl+S', 'Save now'],
      ['Ctrl+H', 'Find and replace'], ['Ctrl+Space', 'Complete (from the kernel)'], ['Shift+Tab', 'Help on the name before the cursor'],
      ['Esc, then ↑ ↓ or K J', 'Leave the editor; move between cells'], ['Enter', 'Edit the selected cell'],
    ];
    dialog('Keyboard shortcuts', h('table', { class: 'shortcuts' }, h('tbody', {}, ...rows.map(([k, what]) => h('tr', {}, h('td', {}, h('kbd', { text: k })), h('td', { text: what }))))),
      [{ label: 'Close', value: 'close', primary: true }]);
  }

  // --- runtime dialogs ---

  showRuntimeInfo(): void {
    const s = this.session;
    if (!s) return;
    const body = h('div', {},
      h('p', { text: `Runtime ${s.kernel.name} (${s.kernel.id.slice(0, 8)}): ${this.statusEl.querySelector('.connect')!.textContent}` }),
      this.reason ? h('p', { class: 'error', text: this.reason }) : null);
    dialog('Runtime', body, [
      { label: 'Disconnect and delete runtime', value: 'delete' },
      { label: 'Manage sessions', value: 'manage' },
      { label: 'Close', value: 'close', primary: true },
    ]).then((v) => {
      if (v === 'delete') this.disconnect(true);
      if (v === 'manage') this.manageSessions();
    });
  }

  /** Notebook settings (Colab's dialog, also Runtime > Change runtime type): the runtime
   * type in people's words. Saving sets metadata.kernelspec and metadata.accelerator as
   * Colab does, and offers to move a running runtime onto the new type. */
  async changeRuntimeType(title = 'Change runtime type'): Promise<void> {
    let choice: SettingsChoice | null;
    try {
      choice = await notebookSettings(title, this.kernelName(), String(this.meta.accelerator || '').toUpperCase() === 'GPU');
    } catch (e) { toast((e as Error).message, 'error'); return; }
    if (!choice) return;
    const wasGpu = !!this.meta.accelerator;
    if (choice.kernel === this.kernelName() && wasGpu === choice.type.gpus > 0) return;
    this.meta.kernelspec = { name: choice.kernel, display_name: choice.display_name, language: choice.language };
    if (choice.type.gpus > 0) this.meta.accelerator = 'GPU';
    else delete this.meta.accelerator;
    this.changed(true);
    if (this.conn === 'none' || choice.same) return;
    const v = await dialog('Restart the runtime?', `This notebook now runs on ${choice.type.display_name}. The runtime it has now is deleted (its variables are lost; the outputs stay in the notebook) and one of the new type starts.`,
      [{ label: 'Later', value: 'later' }, { label: `Restart on ${choice.type.display_name}`, value: 'restart', primary: true }], { enter: 'restart' });
    if (v !== 'restart') {
      toast(`${choice.type.display_name} is used from the next runtime on`);
      return;
    }
    await this.disconnect(true);
    await this.saveNow(); /* the hub reads metadata.accelerator from the file */
    this.connect(choice.kernel).catch((e) => this.startFailed(e));
  }

  /** A runtime that could not start: a refusal at the user's limit of a type (403) says
   * so in a dialog that stays, with Manage sessions, as Colab does; anything else is a toast. */
  startFailed(e: unknown, prefix = ''): void {
    const msg = (e as Error).message;
    if (!(e instanceof ApiError && e.status === 403 && /limit/.test(msg))) { toast(prefix + msg, 'error'); return; }
    const body = h('div', { 'data-testid': 'limit-refusal' },
      h('p', { text: `Cannot start a runtime: ${msg}.` }),
      h('p', { text: 'Terminate one of your runtimes in Manage sessions, or pick another type in Notebook settings.' }));
    dialog('Runtime limit reached', body, [{ label: 'Close', value: 'close' }, { label: 'Manage sessions', value: 'manage', primary: true }], { enter: 'manage' })
      .then((v) => { if (v === 'manage') this.manageSessions(); });
  }

  async manageSessions(): Promise<void> {
    const body = h('div', { class: 'sessions' }, h('p', { text: 'Loading…' }));
    const load = async () => {
      let rts: any[];
      try { rts = await api('GET', '/api/runtimes'); } catch (e) { body.replaceChildren(h('p', { class: 'error', text: (e as Error).message })); return; }
      if (!rts.length) { body.replaceChildren(h('p', { text: 'You have no runtimes.' })); return; }
      body.replaceChildren(h('table', { class: 'files' },
        h('thead', {}, h('tr', {}, h('th', { text: 'Notebook' }), h('th', { text: 'Type' }), h('th', { text: 'State' }), h('th', { text: 'RAM' }), h('th', {}))),
        h('tbody', {}, ...rts.map((r) => h('tr', {},
          h('td', { text: r.path || '(none)' }),
          h('td', { text: r.display_name || r.name }),
          h('td', { text: r.state === 'queued' ? `queued (${r.queue_position})` : `${r.state} ${r.execution_state || ''}` }),
          h('td', { text: r.memory?.used != null ? formatSize(r.memory.used) : '' }),
          h('td', {}, h('button', { text: 'Terminate', onclick: async () => {
            try { await api('DELETE', `/api/kernels/${encodeURIComponent(r.id)}`); } catch (e) { toast((e as Error).message, 'error'); }
            if (this.session?.kernel.id === r.id) { this.rememberRuntime(null); this.disconnect(false); }
            load();
          } })))))));
    };
    load();
    await dialog('Active sessions', body, [{ label: 'Close', value: 'close', primary: true }], { wide: true });
  }

  async factoryReset(): Promise<void> {
    const k = this.session?.kernel;
    if (!k) { toast('Not connected to a runtime'); return; }
    if (!(await confirmBox('Factory reset runtime', 'The runtime\'s files (installed packages, /content) and its state are wiped. Your drive is kept.', 'Reset'))) return;
    this.abandonRuns();
    try {
      await api('POST', `/api/runtimes/${encodeURIComponent(k.id)}/reset`);
      toast('The runtime was reset');
    } catch (e) { toast(`Reset failed: ${(e as Error).message}`, 'error'); }
  }

  // --- side panels: table of contents, files, find and replace ---

  showSide(which: string): void {
    if (this.sidePanel === which) { this.side.hidden = true; this.sidePanel = ''; return; }
    this.sidePanel = which;
    this.side.hidden = false;
    if (which === 'toc') this.drawToc();
    else if (which === 'files') this.drawFiles();
    else if (which === 'find') this.drawFind();
    else if (which === 'secrets') drawSecrets(this.side, this.path);
  }

  private tocTimer = 0;
  tocChanged(): void {
    if (this.sidePanel !== 'toc') return;
    clearTimeout(this.tocTimer);
    this.tocTimer = window.setTimeout(() => this.drawToc(), 300);
  }

  drawToc(): void {
    const ul = h('ul', { class: 'toc' });
    for (const c of this.cells) {
      if (c.m.cell_type !== 'markdown') continue;
      for (const line of c.m.source.split('\n')) {
        const m = line.match(/^(#{1,6})\s+(.*)$/);
        if (!m) continue;
        ul.append(h('li', { class: `l${m[1].length}` }, h('a', { href: '#', text: m[2].replace(/[*_`]/g, ''), onclick: (e: Event) => { e.preventDefault(); this.select(c); c.el.scrollIntoView({ block: 'start' }); } })));
      }
    }
    if (!ul.childElementCount) ul.append(h('li', { class: 'empty', text: 'No headings: a text cell starting with # makes one.' }));
    this.side.replaceChildren(h('h3', { text: 'Table of contents' }), ul);
  }

  /** The files panel: the runtime's /content (through its agent) when connected, and
   * the drive; each a tree to browse, upload into (at its top) and download from. */
  drawFiles(): void {
    const item = (name: string, type: string, path: string, sub: (ul: HTMLElement) => void, open: () => void, download: () => void) => {
      const li = h('li', { class: type });
      const label = h('a', { href: '#', text: (type === 'directory' ? '▸ ' : '') + name, title: path });
      li.append(label);
      if (type === 'directory') {
        const ul = h('ul', { hidden: true });
        li.append(ul);
        label.onclick = (e) => { e.preventDefault(); ul.hidden = !ul.hidden; if (!ul.hidden) sub(ul); };
      } else {
        label.onclick = (e) => { e.preventDefault(); open(); };
        li.append(h('button', { class: 'icon', title: 'Download', onclick: download }, icon('download')));
      }
      return li;
    };
    const show = async (ul: HTMLElement, load: () => Promise<HTMLElement[]>) => {
      ul.replaceChildren(h('li', { class: 'empty', text: 'Loading…' }));
      try {
        const items = await load();
        ul.replaceChildren(...(items.length ? items : [h('li', { class: 'empty', text: '(empty)' })]));
      } catch (e) { ul.replaceChildren(h('li', { class: 'error', text: (e as Error).message })); }
    };
    const dirsFirst = (a: { type: string; name: string }, b: { type: string; name: string }) =>
      (a.type === 'directory' ? 0 : 1) - (b.type === 'directory' ? 0 : 1) || a.name.localeCompare(b.name);

    // The drive, through the Contents API.
    const tree = h('ul', { class: 'tree', 'data-root': 'drive' });
    const uploads = h('div', { class: 'uploads' });
    const input = h('input', { type: 'file', multiple: true, hidden: true });
    const dirOf = this.path.includes('/') ? this.path.slice(0, this.path.lastIndexOf('/')) : '';
    const fill = (ul: HTMLElement, dir: string): Promise<void> => show(ul, async () => {
      const m = await contents.get(dir, { type: 'directory' });
      return (m.content as any[]).filter((x) => !x.name.startsWith('.')).sort(dirsFirst).map((it) =>
        item(it.name, it.type, it.path, (sub) => fill(sub, it.path),
          () => { if (it.type === 'notebook') window.open(notebookUrl(it.path), '_blank'); },
          () => import('../api').then((a) => a.downloadFile(it.path))));
    });
    input.addEventListener('change', async () => {
      if (input.files?.length) await uploadInto(dirOf, input.files, uploads);
      input.value = '';
      fill(tree, '');
    });
    fill(tree, '');
    const drive = h('section', { class: 'files-root', 'data-root': 'drive' },
      h('h4', { text: 'drive' }),
      h('p', { class: 'hint', text: 'My Drive, at /content/drive/MyDrive in the runtime.' }),
      h('div', { class: 'row' }, h('button', { text: 'Upload', onclick: () => input.click() }), h('button', { text: 'Refresh', onclick: () => fill(tree, '') })),
      input, uploads, tree);

    // The runtime's /content, through its agent (which leaves out drive/: it is below).
    const id = this.conn === 'connected' ? this.session?.kernel.id : undefined;
    let content: HTMLElement;
    if (!id) {
      content = h('section', { class: 'files-root', 'data-root': 'content' }, h('h4', { text: 'content' }),
        h('p', { class: 'hint', text: 'Connect to a runtime to see its /content.' }));
    } else {
      const ctree = h('ul', { class: 'tree', 'data-root': 'content' });
      const cuploads = h('div', { class: 'uploads' });
      const cinput = h('input', { type: 'file', multiple: true, hidden: true, 'data-testid': 'content-upload-input' });
      const cfill = (ul: HTMLElement, dir: string): Promise<void> => show(ul, async () => {
        const m = await runtimeFiles.list(id, dir);
        return m.entries.filter((x) => !x.name.startsWith('.')).sort(dirsFirst).map((it) => {
          const p = dir ? `${dir}/${it.name}` : it.name;
          return item(it.name, it.type, '/content/' + p, (sub) => cfill(sub, p), () => {}, () => runtimeFiles.download(id, p));
        });
      });
      cinput.addEventListener('change', async () => {
        for (const f of Array.from(cinput.files ?? [])) {
          const bar = h('progress', { max: 1, value: 0 });
          const pct = h('span', { class: 'pct', text: '0%' });
          const row = h('div', { class: 'upload-row', 'data-name': f.name }, h('span', { text: f.name }), bar, pct);
          cuploads.append(row);
          try {
            await runtimeFiles.upload(id, f.name, f, (x) => { bar.value = x; pct.textContent = `${Math.floor(x * 100)}%`; });
            row.classList.add('done');
            pct.textContent = '100%';
            setTimeout(() => row.remove(), 3000);
          } catch (e) {
            row.classList.add('error');
            pct.textContent = (e as Error).message;
          }
        }
        cinput.value = '';
        cfill(ctree, '');
      });
      cfill(ctree, '');
      content = h('section', { class: 'files-root', 'data-root': 'content' }, h('h4', { text: 'content' }),
        h('p', { class: 'hint', text: "The runtime's /content: gone when the runtime is. Up to 64 MiB a file; bigger ones go through the drive." }),
        h('div', { class: 'row' }, h('button', { text: 'Upload', onclick: () => cinput.click() }), h('button', { text: 'Refresh', onclick: () => cfill(ctree, '') })),
        cinput, cuploads, ctree);
    }
    this.side.replaceChildren(h('h3', { text: 'Files' }), content, drive);
  }

  drawFind(): void {
    const find = h('input', { type: 'text', 'aria-label': 'Find', placeholder: 'Find' });
    const repl = h('input', { type: 'text', 'aria-label': 'Replace with', placeholder: 'Replace with' });
    const count = h('p', { class: 'hint' });
    let pos = { cell: 0, from: -1 };
    const update = () => {
      const q = find.value;
      const n = q ? this.cells.reduce((a, c) => a + c.m.source.split(q).length - 1, 0) : 0;
      count.textContent = q ? `${n} match${n === 1 ? '' : 'es'}` : '';
    };
    const next = () => {
      const q = find.value;
      if (!q) return false;
      for (let k = 0; k <= this.cells.length; k++) {
        const ci = (pos.cell + k) % this.cells.length;
        const c = this.cells[ci];
        const at = c.m.source.indexOf(q, k === 0 ? pos.from + 1 : 0);
        if (at >= 0) {
          pos = { cell: ci, from: at };
          this.select(c);
          c.edit();
          c.view?.dispatch({ selection: { anchor: at, head: at + q.length }, scrollIntoView: true });
          return true;
        }
      }
      return false;
    };
    find.addEventListener('input', () => { pos = { cell: 0, from: -1 }; update(); });
    find.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); next(); find.focus(); } });
    this.side.replaceChildren(h('h3', { text: 'Find and replace' }), find, repl, count,
      h('div', { class: 'row' },
        h('button', { text: 'Find next', onclick: () => next() }),
        h('button', { text: 'Replace', onclick: () => {
          const q = find.value;
          const c = this.cells[pos.cell];
          if (q && c && pos.from >= 0 && c.m.source.substr(pos.from, q.length) === q) {
            c.setSource(c.m.source.slice(0, pos.from) + repl.value + c.m.source.slice(pos.from + q.length));
            pos.from += repl.value.length - 1;
            this.changed(true);
          }
          next();
          update();
        } }),
        h('button', { text: 'Replace all', onclick: () => {
          const q = find.value;
          if (!q) return;
          for (const c of this.cells) if (c.m.source.includes(q)) c.setSource(c.m.source.split(q).join(repl.value));
          this.changed(true);
          update();
        } })));
    setTimeout(() => find.focus());
  }

  // --- saving ---

  serialize(): any {
    return { cells: this.cells.map((c) => c.toJSON()), metadata: this.meta, nbformat: 4, nbformat_minor: this.nbformatMinor };
  }

  /** Something changed: saved within a couple of seconds, and kept in this browser
   * until then. `edit` is true for changes of what the person wrote. */
  changed(edit: boolean): void {
    if (this.readOnly) return;
    this.seq++;
    if (edit) this.tocChanged();
    this.updateSaveState();
    // What was typed goes to this browser's storage at once; outputs only when the page
    // goes away (the hub records them too, and a big output is costly to copy).
    if (edit) this.writeDraft();
    if (!this.saveTimer) this.saveTimer = window.setTimeout(() => { this.saveTimer = 0; this.save(false); }, edit ? 1500 : 2500);
  }

  writeDraft(): void {
    if (!this.draftTimer) this.draftTimer = window.setTimeout(() => { this.draftTimer = 0; this.writeDraftNow(); }, 400);
  }

  writeDraftNow(): void {
    if (this.readOnly || this.seq === this.savedSeq) return;
    const nb = this.serialize();
    const d = { content: nb, lastModified: this.lastModified, baseKey: this.baseKey, time: Date.now(), noOutputs: false };
    try {
      localStorage.setItem(this.draftKey, JSON.stringify(d));
    } catch {
      // Too big with its outputs: keep what was typed, which is what matters.
      for (const c of nb.cells) if (c.outputs) c.outputs = [];
      d.noOutputs = true;
      try { localStorage.setItem(this.draftKey, JSON.stringify(d)); } catch { /* nothing more to do */ }
    }
  }

  private retryTimer = 0;

  async save(explicit: boolean): Promise<void> {
    if (this.readOnly || this.conflictOpen) return;
    if (this.saving) { this.changedDuringSave = true; return; }
    if (!explicit && this.seq === this.savedSeq) return;
    clearTimeout(this.saveTimer);
    this.saveTimer = 0;
    this.saving = true;
    this.updateSaveState();
    const seq = this.seq;
    let content = this.serialize();
    try {
      let disk: any = null;
      try { disk = await contents.get(this.path, { content: false }); } catch (e) { if (!(e instanceof ApiError && e.status === 404)) throw e; }
      if (disk && this.lastModified && disk.last_modified !== this.lastModified) {
        const full = await contents.get(this.path, { type: 'notebook' });
        if (structureKey(full.content) !== this.baseKey) {
          // Changed elsewhere (another tab, VS Code, the API): the person decides.
          this.saving = false;
          await this.conflict(full);
          return;
        }
        // Only outputs changed: the hub recorded runs while no page was connected. Cells
        // this page has not run since it loaded take the file's outputs, which are newer.
        if (this.adoptOutputs(full.content)) content = this.serialize();
      }
      const r = await contents.save(this.path, { type: 'notebook', format: 'json', content });
      this.lastModified = r.last_modified;
      this.baseKey = structureKey(content);
      if (this.seq === seq) {
        this.savedSeq = seq;
        localStorage.removeItem(this.draftKey);
      } else {
        this.savedSeq = seq;
        this.writeDraftNow();
      }
      clearTimeout(this.retryTimer);
      this.saving = false;
      this.updateSaveState();
    } catch (e) {
      this.saving = false;
      this.writeDraftNow();
      this.updateSaveState(e instanceof ApiError && e.status === 0 ? 'Offline: changes kept in this browser' : `Save failed: ${(e as Error).message}`);
      clearTimeout(this.retryTimer);
      this.retryTimer = window.setTimeout(() => this.save(false), 5000);
      return;
    }
    if (this.changedDuringSave || this.seq !== this.savedSeq) {
      this.changedDuringSave = false;
      if (!this.saveTimer) this.saveTimer = window.setTimeout(() => { this.saveTimer = 0; this.save(false); }, 1000);
    }
  }

  changedDuringSave = false;

  /** Takes the outputs of the file's cells for cells whose outputs this page has not
   * changed since it loaded them. Returns whether any changed. */
  adoptOutputs(disk: any): boolean {
    const byId = new Map<string, any>((disk.cells || []).map((c: any) => [c.id, c]));
    let any = false;
    for (const c of this.cells) {
      const d = byId.get(c.m.id);
      if (!d || c.touched || c.m.cell_type !== 'code' || c.running || c.queued) continue;
      const outputs = Array.isArray(d.outputs) ? d.outputs : [];
      if (stable(outputs.map(outputToFile)) === stable(c.out.outputs.map(outputToFile)) && d.execution_count === c.m.execution_count) continue;
      c.out.set(outputs);
      c.m.outputs = outputs;
      c.m.execution_count = typeof d.execution_count === 'number' ? d.execution_count : null;
      c.updateGutter();
      any = true;
    }
    return any;
  }

  async conflict(disk: any): Promise<void> {
    this.conflictOpen = true;
    this.updateSaveState('Changed elsewhere: not saved');
    const v = await dialog('This notebook changed elsewhere',
      h('div', {}, h('p', { text: `"${this.name}" was changed outside this tab (${new Date(disk.last_modified).toLocaleString()}) after you last saved or opened it.` }),
        h('p', { text: 'Keep your version (the other changes are overwritten), or load the file (your unsaved changes here are dropped; they are downloaded first).' })),
      [{ label: 'Load the file', value: 'reload' }, { label: 'Keep my version', value: 'overwrite', primary: true }]);
    this.conflictOpen = false;
    if (v === 'overwrite') {
      this.lastModified = disk.last_modified;
      this.baseKey = structureKey(disk.content);
      await this.save(true);
    } else if (v === 'reload') {
      saveBlob(new Blob([JSON.stringify(this.serialize(), null, 1)], { type: 'application/x-ipynb+json' }), this.name.replace(/\.ipynb$/, '') + '-unsaved.ipynb');
      localStorage.removeItem(this.draftKey);
      this.load(disk.content, disk.last_modified);
    } else {
      this.updateSaveState('Not saved: the file changed elsewhere (File > Save to decide)');
    }
  }

  async renameTo(name: string): Promise<void> {
    name = name.trim();
    if (!name || name === this.name) { this.titleInput.value = this.name; return; }
    if (!name.endsWith('.ipynb')) name += '.ipynb';
    if (name.includes('/')) { toast('A name cannot contain "/"', 'error'); this.titleInput.value = this.name; return; }
    const dir = this.path.includes('/') ? this.path.slice(0, this.path.lastIndexOf('/') + 1) : '';
    const to = dir + name;
    try {
      await this.save(false);
      const r = await contents.rename(this.path, to);
      const old = this.path;
      localStorage.removeItem(this.draftKey);
      this.path = to;
      this.lastModified = r.last_modified;
      recent.rename(old, to);
      if (this.session) await api('PATCH', `/api/sessions/${encodeURIComponent(this.session.id)}`, { path: to, name }).catch(() => {});
      history.replaceState(null, '', notebookUrl(to));
      document.title = name + ' - labbook';
      this.titleInput.value = name;
    } catch (e) {
      toast(`Rename failed: ${(e as Error).message}`, 'error');
      this.titleInput.value = this.name;
    }
  }
}

/** Opens the notebook page for a drive path. */
export async function openNotebook(root: HTMLElement, path: string): Promise<void> {
  const page = new NotebookPage(root, path);
  (window as any).__labbookCleanup = () => page.dispose();
  (window as any).labbook = page; // for tests and the curious: the page's state
  setLeaveHook(() => { page.writeDraftNow(); return true; });
  await page.open();
}

