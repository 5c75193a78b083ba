// CodeMirror 6 for cells, created only when a cell is first edited: until then a
// cell shows its source as highlighted text (highlight.ts: the same lezer parser and
// classes), so a notebook of hundreds of cells opens without building hundreds of
// editors. This module is its own chunk, loaded just after a notebook is shown.
import { EditorState, Extension, Prec } from '@codemirror/state';
import { EditorView, KeyBinding, drawSelection, highlightActiveLine, keymap, lineNumbers, placeholder } from '@codemirror/view';
import { defaultKeymap, history, historyKeymap, indentWithTab } from '@codemirror/commands';
import { Language, LanguageSupport, bracketMatching, defineLanguageFacet, indentOnInput, indentUnit, syntaxHighlighting } from '@codemirror/language';
import { autocompletion, closeBrackets, closeBracketsKeymap, closeCompletion, completionKeymap, completionStatus, CompletionContext, CompletionResult } from '@codemirror/autocomplete';
import { highlightSelectionMatches, search, searchKeymap } from '@codemirror/search';
import { python } from '@codemirror/lang-python';
import { GFM, parser as markdownParser } from '@lezer/markdown';
import { classHighlighter } from '@lezer/highlight';
import { Lang, hideTip, showTip } from './highlight';

// Markdown straight from @lezer/markdown: @codemirror/lang-markdown would bring the
// HTML, CSS and JavaScript parsers along (about 150 KiB) for HTML inside markdown.
const markdownLanguage = new Language(defineLanguageFacet({ commentTokens: { block: { open: '<!--', close: '-->' } } }),
  markdownParser.configure([GFM]), [], 'markdown');
const markdown = () => new LanguageSupport(markdownLanguage);

export type { Lang };

export interface EditorHooks {
  onChange(text: string): void;
  onFocus(): void;
  complete?(code: string, pos: number): Promise<{ matches: string[]; start: number; end: number } | null>;
  inspect?(code: string, pos: number): Promise<string | null>;
  keys?: KeyBinding[];
  /** How lines are joined (the file's own, '\r\n' for a Windows file); default '\n'. */
  lineSeparator?: string;
  /** What an empty markdown editor says; a cell's hint by default. */
  placeholder?: string;
  /** A file's editor (not a cell's): line numbers and the current line shown. */
  fileEditor?: boolean;
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
      if (u.docChanged) hooks.onChange(u.state.sliceDoc()); // joined with lineSeparator
      if (u.focusChanged && u.view.hasFocus) hooks.onFocus();
    }),
    EditorView.domEventHandlers({ keydown: () => { hideTip(); return false; }, blur: () => { hideTip(); return false; } }),
  ];
  if (hooks.fileEditor) exts.push(lineNumbers(), highlightActiveLine());
  if (hooks.lineSeparator) exts.push(EditorState.lineSeparator.of(hooks.lineSeparator));
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
          // The kernel answers after a run it was busy with: by then the cell may have
          // been run or left, and a popup must not open over its outputs.
          if (!r || !r.matches.length || ctx.aborted || !ctx.view?.hasFocus) return null;
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
            if (html) showTip(view.coordsAtPos(view.state.selection.main.head), html);
          });
          return true;
        },
      }])));
    }
  } else if (lang === 'markdown') {
    exts.push(markdown(), placeholder(hooks.placeholder ?? 'Double-click to edit text; Shift+Enter to render'));
  }
  return new EditorView({ state: EditorState.create({ doc, extensions: exts }), parent });
}

/** Whether the editor shows a completion popup (or waits for one). */
export function hasPopup(view: EditorView): boolean {
  return completionStatus(view.state) !== null;
}

/** Closes the completion popup and drops an answer still on its way. */
export function closePopups(view: EditorView): void {
  if (completionStatus(view.state) !== null) closeCompletion(view);
  hideTip();
}
