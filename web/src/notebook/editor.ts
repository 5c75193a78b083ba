// CodeMirror 6 for cells, created only when a cell is first edited: until then a
// cell shows its source as highlighted text (the same lezer parser and classes), so
// a notebook of hundreds of cells opens without building hundreds of editors.
import { EditorState, Extension, Prec } from '@codemirror/state';
import { EditorView, KeyBinding, drawSelection, keymap, placeholder } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { Language, LanguageSupport, bracketMatching, defineLanguageFacet, indentOnInput, indentUnit, syntaxHighlighting } from '@codemirror/language';
import { autocompletion, closeBrackets, closeBracketsKeymap, completionKeymap, CompletionContext, CompletionResult } from '@codemirror/autocomplete';
import { highlightSelectionMatches, search, searchKeymap } from '@codemirror/search';
import { python, pythonLanguage } from '@codemirror/lang-python';
import { GFM, parser as markdownParser } from '@lezer/markdown';
import { classHighlighter, highlightCode } from '@lezer/highlight';

// Markdown straight from @lezer/markdown: @codemirror/lang-markdown would bring the
// HTML, CSS and JavaScript parsers along (about 150 KiB) for HTML inside markdown.
const markdownLanguage = new Language(defineLanguageFacet({ commentTokens: { block: { open: '<!--', close: '-->' } } }),
  markdownParser.configure([GFM]), [], 'markdown');
const markdown = () => new LanguageSupport(markdownLanguage);

export type Lang = 'python' | 'markdown' | 'text';

export interface EditorHooks {
  onChange(text: string): void;
  onFocus(): void;
  complete?(code: string, pos: number): Promise<{ matches: string[]; start: number; end: number } | null>;
  inspect?(code: string, pos: number): Promise<string | null>;
  keys?: KeyBinding[];
}

/** Code points before a UTF-16 offset: Jupyter's cursor_pos counts code points. */
function cpOffset(s: string, utf16: number): number {
  let n = 0;
  for (let i = 0; i < utf16; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c >= 0xdc00) n++;
  }
  return n;
}
function utf16Offset(s: string, cp: number): number {
  let i = 0;
  for (let n = 0; n < cp && i < s.length; n++) {
    const c = s.charCodeAt(i);
    i += c >= 0xd800 && c < 0xdc00 ? 2 : 1;
  }
  return i;
}

let tip: HTMLElement | null = null;
export function hideTip(): void {
  tip?.remove();
  tip = null;
}

function showTip(view: EditorView, html: string): void {
  hideTip();
  const at = view.coordsAtPos(view.state.selection.main.head);
  tip = document.createElement('div');
  tip.className = 'inspect-tip';
  tip.setAttribute('role', 'tooltip');
  tip.innerHTML = html;
  document.body.append(tip);
  const left = Math.min(at ? at.left : 100, window.innerWidth - 620);
  tip.style.left = Math.max(8, left) + 'px';
  tip.style.top = ((at ? at.bottom : 100) + window.scrollY + 4) + 'px';
}

export function createEditor(parent: HTMLElement, doc: string, lang: Lang, hooks: EditorHooks): EditorView {
  const exts: Extension[] = [
    history(),
    drawSelection(),
    indentOnInput(),
    bracketMatching(),
    closeBrackets(),
    highlightSelectionMatches(),
    search({ top: true }),
    syntaxHighlighting(classHighlighter),
    indentUnit.of(lang === 'python' ? '    ' : '  '),
    EditorView.lineWrapping,
    keymap.of([...(hooks.keys || []), ...closeBracketsKeymap, ...completionKeymap, ...searchKeymap, ...historyKeymap, indentWithTab, ...defaultKeymap]),
    EditorView.updateListener.of((u) => {
      if (u.docChanged) hooks.onChange(u.state.doc.toString());
      if (u.focusChanged && u.view.hasFocus) hooks.onFocus();
    }),
    EditorView.domEventHandlers({ keydown: () => { hideTip(); return false; }, blur: () => { hideTip(); return false; } }),
  ];
  if (lang === 'python') {
    exts.push(python());
    if (hooks.complete) {
      const complete = hooks.complete;
      exts.push(autocompletion({
        activateOnTyping: true,
        override: [async (ctx: CompletionContext): Promise<CompletionResult | null> => {
          const word = ctx.matchBefore(/[\w.]*$/);
          if (!ctx.explicit && (!word || word.from === word.to || !/[\w]$|\.$/.test(word.text))) return null;
          const code = ctx.state.doc.toString();
          const r = await complete(code, cpOffset(code, ctx.pos)).catch(() => null);
          if (!r || !r.matches.length) return null;
          return {
            from: utf16Offset(code, r.start),
            to: utf16Offset(code, r.end),
            options: r.matches.slice(0, 500).map((m) => ({ label: m })),
            validFor: /^[\w]*$/,
          };
        }],
      }));
    }
    if (hooks.inspect) {
      const inspect = hooks.inspect;
      // Above indentWithTab's Shift-Tab (indent less), as in Colab.
      exts.push(Prec.high(keymap.of([{
        key: 'Shift-Tab',
        run: (view) => {
          const code = view.state.doc.toString();
          inspect(code, cpOffset(code, view.state.selection.main.head)).then((html) => {
            if (html) showTip(view, html);
          });
          return true;
        },
      }])));
    }
  } else if (lang === 'markdown') {
    exts.push(markdown(), placeholder('Double-click to edit text; Shift+Enter to render'));
  }
  return new EditorView({ state: EditorState.create({ doc, extensions: exts }), parent });
}

/** Writes `code` into `el` as highlighted text (no editor). */
export function highlightInto(el: HTMLElement, code: string, lang: Lang): void {
  el.textContent = '';
  if (lang !== 'python' || code.length > 200_000) {
    el.textContent = code;
    return;
  }
  const frag = document.createDocumentFragment();
  highlightCode(code, pythonLanguage.parser.parse(code), classHighlighter,
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
