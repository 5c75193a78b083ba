// Colab forms in code cells: `#@title TEXT`, `#@markdown TEXT` and `NAME = VALUE
// #@param SPEC` lines show as a small form beside the code (or instead of it, when the
// cell's metadata says `cellView: "form"`); changing a field rewrites that line's
// value, so the cell stays plain Python (the kernel sees only comments) and runs anywhere.
import { h } from '../ui';
import { renderMarkdown } from './markdown';

export type Kind = 'string' | 'integer' | 'number' | 'boolean' | 'slider' | 'date' | 'raw' | 'list';

export interface Param {
  line: number;
  name: string;
  value: string; /* the Python literal as written */
  kind: Kind;
  options: string[]; /* for 'list': the choices, as the Python literals written in the list */
  /** A list that also takes typed values (`{allow-input: true}`). */
  allowInput: boolean;
  /** The `type` a list names (`["a", "b"] {type:"raw"}`), which says how typed values are written. */
  listType?: string;
  min?: number;
  max?: number;
  step?: number;
}

/** What a form shows, in the order of the lines. */
export type FormItem = { markdown: string } | { param: Param };

export interface Form {
  title: string | null;
  /** `#@title T { display-mode: "form" }`: Colab's older way of hiding the code. */
  displayMode: string | null;
  items: FormItem[];
  params: Param[];
}

const PARAM = /^(\s*)([A-Za-z_]\w*)\s*=\s*(.*?)\s*#\s*@param\b\s*(.*)$/;
const TITLE = /^\s*#\s*@title\b\s*(.*)$/;
const MARKDOWN = /^\s*#\s*@markdown\b ?(.*)$/;
const KINDS = ['string', 'integer', 'number', 'boolean', 'slider', 'date', 'raw'];

/** The top-level comma-separated pieces of `s` (quotes and brackets respected). */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0, quote = '', start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === ',' && depth === 0) { out.push(s.slice(start, i).trim()); start = i + 1; }
  }
  out.push(s.slice(start).trim());
  return out.filter((x) => x !== '');
}

/** Colab's options: a JSON-like object with unquoted keys, some with dashes
 * ({type:"slider", min:0, allow-input: true}); null when it is not one. */
function parseOptions(t: string): Record<string, any> | null {
  if (!/^\{[\s\S]*\}$/.test(t)) return null;
  const o: Record<string, any> = {};
  for (const part of splitTop(t.slice(1, -1))) {
    const m = part.match(/^["']?([A-Za-z_][\w-]*)["']?\s*:\s*([\s\S]*)$/);
    if (!m) return null;
    const v = m[2].trim();
    if (/^(true|True)$/.test(v)) o[m[1]] = true;
    else if (/^(false|False)$/.test(v)) o[m[1]] = false;
    else if (/^-?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(v)) o[m[1]] = Number(v);
    else o[m[1]] = unquote(v);
  }
  return o;
}

/** A #@param spec: an optional list of choices, then optional options. */
function parseSpec(spec: string): { list: string[] | null; opts: Record<string, any> } | null {
  const t = spec.trim();
  if (!t) return { list: null, opts: { type: 'raw' } };
  const m = t.match(/^(\[[\s\S]*\])?\s*(\{[^{}]*\})?$/);
  if (!m || (!m[1] && !m[2])) return null;
  const opts = m[2] ? parseOptions(m[2]) : {};
  if (!opts) return null;
  return { list: m[1] ? splitTop(m[1].slice(1, -1)) : null, opts };
}

/** The form of a cell's source, or null when it has none. */
export function parseForm(source: string): Form | null {
  if (!/@(title|param|markdown)/.test(source)) return null;
  const lines = source.split('\n');
  let title: string | null = null;
  let displayMode: string | null = null;
  const items: FormItem[] = [];
  const params: Param[] = [];
  let md: string[] | null = null; /* the #@markdown lines in a row */
  lines.forEach((l, i) => {
    const mdm = l.match(MARKDOWN);
    if (mdm) {
      if (!md) { md = []; items.push({ markdown: '' }); }
      md.push(mdm[1]);
      (items[items.length - 1] as { markdown: string }).markdown = md.join('\n');
      return;
    }
    md = null;
    const t = l.match(TITLE);
    if (t && title === null) {
      const o = t[1].match(/\s*(\{[^{}]*\})\s*$/);
      const opts = o ? parseOptions(o[1]) : null;
      if (opts && typeof opts['display-mode'] === 'string') displayMode = opts['display-mode'];
      title = (o ? t[1].slice(0, o.index) : t[1]).trim();
      return;
    }
    const m = l.match(PARAM);
    if (!m) return;
    const spec = parseSpec(m[4]);
    if (spec === null) return;
    const type = typeof spec.opts.type === 'string' ? spec.opts.type : undefined;
    const num = (k: string) => (typeof spec.opts[k] === 'number' ? spec.opts[k] : undefined);
    const p: Param = spec.list
      ? { line: i, name: m[2], value: m[3], kind: 'list', options: spec.list, allowInput: spec.opts['allow-input'] === true, listType: type }
      : { line: i, name: m[2], value: m[3], kind: type && KINDS.includes(type) ? (type as Kind) : 'raw', options: [], allowInput: false, min: num('min'), max: num('max'), step: num('step') };
    params.push(p);
    items.push({ param: p });
  });
  if (title === null && !items.length) return null;
  return { title, displayMode, items, params };
}

/** A Python string literal's text ("a", 'a'), or the literal itself. */
function unquote(v: string): string {
  const m = v.match(/^(['"])(.*)\1$/);
  if (!m) return v;
  try { return m[1] === '"' ? JSON.parse(v) : JSON.parse('"' + m[2].replace(/\\'/g, "'").replace(/"/g, '\\"') + '"'); } catch { return m[2]; }
}

/** The literal a typed value of a list that allows input is written as: a choice as
 * it is written in the list, else a string literal, or the text itself for raw and
 * numeric lists. */
function typedChoice(p: Param, v: string): string | null {
  const known = p.options.find((o) => unquote(o) === v);
  if (known) return known;
  const t = p.listType;
  if (t === 'integer' || t === 'number') return v !== '' && !isNaN(Number(v)) ? v : null;
  const strings = p.options.every((o) => /^['"]/.test(o));
  if (t === 'raw' || (t !== 'string' && p.options.length && !strings)) return v;
  return JSON.stringify(v);
}

/** The source with param p's value replaced by the literal `lit`. */
export function setParam(source: string, p: Param, lit: string): string {
  const lines = source.split('\n');
  const m = lines[p.line]?.match(PARAM);
  if (!m || m[2] !== p.name) return source;
  const rest = lines[p.line].slice(lines[p.line].indexOf('#', m[1].length + m[2].length));
  lines[p.line] = `${m[1]}${m[2]} = ${lit} ${rest.replace(/^#\s*@/, '#@')}`;
  return lines.join('\n');
}

export interface FormHooks {
  /** The cell's source now. */
  source(): string;
  /** A field changed: the new source. */
  onSource(s: string): void;
  /** Whether the code is hidden (only the form shows). */
  codeHidden: boolean;
  /** The "Show code" / "Hide code" button. */
  toggleCode(): void;
}

let listSeq = 0;

function fieldView(p: Param, set: (lit: string) => void): HTMLElement {
  if (p.kind === 'boolean') {
    const cb = h('input', { type: 'checkbox', checked: p.value === 'True' });
    cb.addEventListener('change', () => set(cb.checked ? 'True' : 'False'));
    return cb;
  }
  if (p.kind === 'list' && p.allowInput) {
    // A text box with the choices as suggestions: what is typed is written as typed.
    const id = `form-choices-${++listSeq}`;
    const input = h('input', { type: 'text', value: unquote(p.value), list: id });
    const choices = h('datalist', { id });
    for (const o of p.options) choices.append(h('option', { value: unquote(o) }));
    input.addEventListener('input', () => { const lit = typedChoice(p, input.value); if (lit !== null) set(lit); });
    const box = h('span', { class: 'form-combo' }, input, choices);
    (box as any).field = input;
    return box;
  }
  if (p.kind === 'list') {
    const sel = h('select', {});
    const cur = p.options.find((o) => o === p.value) ?? p.options.find((o) => unquote(o) === unquote(p.value));
    for (const o of p.options) sel.append(h('option', { value: o, text: unquote(o), selected: o === cur }));
    sel.addEventListener('change', () => set(sel.value));
    return sel;
  }
  const numeric = p.kind === 'integer' || p.kind === 'number' || p.kind === 'slider';
  const input = h('input', {
    type: p.kind === 'slider' ? 'range' : numeric ? 'number' : p.kind === 'date' ? 'date' : 'text',
    value: p.kind === 'string' || p.kind === 'date' ? unquote(p.value) : p.value,
  });
  if (p.min !== undefined) input.min = String(p.min);
  if (p.max !== undefined) input.max = String(p.max);
  if (p.step !== undefined) input.step = String(p.step);
  else if (p.kind === 'integer') input.step = '1';
  else if (p.kind === 'number') input.step = 'any';
  const shown = p.kind === 'slider' ? h('output', { class: 'form-value', text: p.value }) : null;
  input.addEventListener('input', () => {
    const v = input.value;
    if (shown) shown.textContent = v;
    if (numeric) { if (v !== '' && !isNaN(Number(v))) set(v); }
    else if (p.kind === 'raw') set(v);
    else set(JSON.stringify(v));
  });
  if (!shown) return input;
  const box = h('span', { class: 'form-slider' }, input, shown);
  (box as any).field = input;
  return box;
}

/** The form's view: its title, markdown and one field per param, with the button that
 * shows or hides the code. */
export function formView(form: Form, hooks: FormHooks): HTMLElement {
  const box = h('div', { class: 'colab-form', 'data-testid': 'colab-form' });
  const toggle = h('button', {
    class: 'link form-toggle', 'data-testid': 'form-toggle-code', text: hooks.codeHidden ? 'Show code' : 'Hide code',
    title: hooks.codeHidden ? 'Show the code of this form' : 'Show only the form (Colab\'s cellView: "form")',
    onclick: (e: Event) => { e.stopPropagation(); hooks.toggleCode(); },
  });
  box.append(h('div', { class: 'form-head' }, form.title ? h('div', { class: 'form-title', text: form.title }) : h('span', { class: 'spacer' }), toggle));
  for (const it of form.items) {
    if ('markdown' in it) {
      const el = h('div', { class: 'form-markdown markdown', 'data-testid': 'form-markdown' });
      renderMarkdown(it.markdown).then((html) => { el.innerHTML = html; });
      box.append(el);
      continue;
    }
    const p = it.param;
    const view = fieldView(p, (lit) => hooks.onSource(setParam(hooks.source(), p, lit)));
    const field: HTMLElement = (view as any).field ?? view;
    field.setAttribute('aria-label', p.name);
    field.dataset.param = p.name;
    box.append(h('label', { class: 'form-field' }, h('span', { class: 'form-name', text: p.name }), view));
  }
  return box;
}
