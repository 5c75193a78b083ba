// What a notebook shows before any editor exists: a cell's source as highlighted
// text (the lezer Python parser and @lezer/highlight's classes, the same CodeMirror
// uses, so nothing shifts when an editor replaces it), and the help tooltip.
import { parser as pythonParser } from '@lezer/python';
import { classHighlighter, highlightCode } from '@lezer/highlight';

export type Lang = 'python' | 'markdown' | 'text';

let tip: HTMLElement | null = null;
export function hideTip(): void {
  tip?.remove();
  tip = null;
}

/** Shows `html` (already escaped) under the point at screen coordinates. */
export function showTip(at: { left: number; bottom: number } | null, html: string): void {
  hideTip();
  tip = document.createElement('div');
  tip.className = 'inspect-tip';
  tip.setAttribute('role', 'tooltip');
  tip.innerHTML = html;
  document.body.append(tip);
  const left = Math.min(at ? at.left : 100, window.innerWidth - 620);
  tip.style.left = Math.max(8, left) + 'px';
  tip.style.top = ((at ? at.bottom : 100) + window.scrollY + 4) + 'px';
}

/** Writes `code` into `el` as highlighted text (no editor). */
export function highlightInto(el: HTMLElement, code: string, lang: Lang): void {
  el.textContent = '';
  if (lang !== 'python' || code.length > 200_000) {
    el.textContent = code;
    return;
  }
  const frag = document.createDocumentFragment();
  highlightCode(code, pythonParser.parse(code), classHighlighter,
    (text, classes) => {
      if (!classes) frag.append(text);
      else {
        const s = document.createElement('span');
        s.className = classes;
        s.textContent = text;
        frag.append(s);
      }
    },
    () => frag.append('\n'));
  el.append(frag);
}
