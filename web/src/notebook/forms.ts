// Colab forms in code cells: `#@title TEXT` and `NAME = VALUE #@param SPEC` lines show
// as a small form beside the code; changing a field rewrites that line's value, so
// the cell stays plain Python (the kernel sees only comments) and runs anywhere.
import { h } from '../ui';

export interface Param {
  line: number;
  name: string;
  value: string; /* the Python literal as written */
  kind: 'string' | 'integer' | 'number' | 'boolean' | 'slider' | 'date' | 'raw' | 'list';
  options: string[]; /* for 'list': the choices, as Python literals */
  min?: number;
  max?: number;
  step?: number;
}

export interface Form {
  title: string | null;
  params: Param[];
}

const PARAM = /^(\s*)([A-Za-z_]\w*)\s*=\s*(.*?)\s*#\s*@param\s*(.*)$/;

/** Colab's spec: a JSON-like object with unquoted keys ({type:"slider", min:0}), or a list. */
function parseSpec(spec: string): any {
  const t = spec.trim();
  if (!t) return { type: 'raw' };
  try {
    return JSON.parse(t.replace(/([{,]\s*)([A-Za-z_]\w*)\s*:/g, '$1"$2":').replace(/'/g, '"'));
  } catch {
    return null;
  }
}

/** The form of a cell's source, or null when it has none. */
export function parseForm(source: string): Form | null {
  if (!source.includes('@title') && !source.includes('@param')) return null;
  const lines = source.split('\n');
  let title: string | null = null;
  const params: Param[] = [];
  lines.forEach((l, i) => {
    const t = l.match(/^\s*#\s*@title\s*(.*)$/);
    if (t && title === null) { title = t[1].replace(/\s*\{.*\}\s*$/, '').trim(); return; }
    const m = l.match(PARAM);
    if (!m) return;
    const spec = parseSpec(m[4]);
    if (spec === null) return;
    if (Array.isArray(spec)) {
      params.push({ line: i, name: m[2], value: m[3], kind: 'list', options: spec.map((o) => JSON.stringify(o)) });
      return;
    }
    const kind = ['string', 'integer', 'number', 'boolean', 'slider', 'date', 'raw'].includes(spec.type) ? spec.type : 'raw';
    params.push({ line: i, name: m[2], value: m[3], kind, options: [], min: spec.min, max: spec.max, step: spec.step });
  });
  return title === null && !params.length ? null : { title, params };
}

/** A Python string literal's text ("a", 'a'), or the literal itself. */
function unquote(v: string): string {
  const m = v.match(/^(['"])(.*)\1$/);
  if (!m) return v;
  try { return m[1] === '"' ? JSON.parse(v) : JSON.parse('"' + m[2].replace(/\\'/g, "'").replace(/"/g, '\\"') + '"'); } catch { return m[2]; }
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

/** The form's view: a title and one field per param; `onSource` gets the new source. */
export function formView(form: Form, source: () => string, onSource: (s: string) => void): HTMLElement {
  const box = h('div', { class: 'colab-form', 'data-testid': 'colab-form' });
  if (form.title) box.append(h('div', { class: 'form-title', text: form.title }));
  for (const p of form.params) {
    const set = (lit: string) => onSource(setParam(source(), p, lit));
    let field: HTMLElement;
    if (p.kind === 'boolean') {
      const cb = h('input', { type: 'checkbox', checked: p.value === 'True' });
      cb.addEventListener('change', () => set(cb.checked ? 'True' : 'False'));
      field = cb;
    } else if (p.kind === 'list') {
      const sel = h('select', {});
      for (const o of p.options) sel.append(h('option', { value: o, text: unquote(o), selected: o === p.value || unquote(o) === unquote(p.value) }));
      sel.addEventListener('change', () => set(sel.value));
      field = sel;
    } else {
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
      input.addEventListener('input', () => {
        const v = input.value;
        if (numeric) { if (v !== '' && !isNaN(Number(v))) set(v); }
        else if (p.kind === 'raw') set(v);
        else set(JSON.stringify(v));
      });
      field = input;
    }
    field.setAttribute('aria-label', p.name);
    field.dataset.param = p.name;
    box.append(h('label', { class: 'form-field' }, h('span', { text: p.name }), field));
  }
  return box;
}
