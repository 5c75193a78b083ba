// Markdown cells and text/markdown outputs: marked, then DOMPurify (so markdown from
// someone else's notebook cannot run script as the viewer), then KaTeX for the math,
// which is cut out before marked sees it (so `_` and `*` in TeX are not emphasis).
// KaTeX and its stylesheet load only when a notebook has math.
import { marked } from 'marked';
import DOMPurify from 'dompurify';

type Katex = typeof import('katex').default;
let katexP: Promise<Katex> | null = null;

function loadKatex(): Promise<Katex> {
  if (!katexP) {
    const href = document.documentElement.dataset.katexCss;
    if (href && !document.querySelector(`link[href="${href}"]`)) {
      document.head.append(Object.assign(document.createElement('link'), { rel: 'stylesheet', href }));
    }
    katexP = import('katex').then((m) => m.default);
  }
  return katexP;
}

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.getAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

const MATH = /\$\$([\s\S]+?)\$\$|\\\[([\s\S]+?)\\\]|\\\(([\s\S]+?)\\\)|(?<![\\$\w])\$(?!\s)([^$\n]+?)(?<!\s)\$(?!\w)/g;

/** Renders markdown to sanitized HTML. `attachments` resolves `attachment:NAME` images. */
export async function renderMarkdown(src: string, attachments?: Record<string, Record<string, string>>): Promise<string> {
  const maths: { tex: string; display: boolean }[] = [];
  // Math is looked for outside code spans and fenced blocks only.
  const parts = src.split(/(```[\s\S]*?(?:```|$)|~~~[\s\S]*?(?:~~~|$)|`[^`\n]*`)/);
  for (let i = 0; i < parts.length; i += 2) {
    parts[i] = parts[i].replace(MATH, (_m, d1, d2, i1, i2) => {
      maths.push({ tex: d1 ?? d2 ?? i1 ?? i2, display: d1 !== undefined || d2 !== undefined });
      return `@@LBMATH${maths.length - 1}@@`;
    });
  }
  let html = marked.parse(parts.join(''), { async: false, gfm: true, breaks: false }) as string;
  // Attachments and math go in before sanitizing: what they bring comes from the
  // notebook too, and must not break out of an attribute or a tag.
  if (attachments) {
    html = html.replace(/src="attachment:([^"]+)"/g, (m, name) => {
      const a = attachments[decodeURIComponent(name)];
      const mime = a && Object.keys(a).find((k) => /^image\/(png|jpeg|gif|webp|svg\+xml)$/.test(k));
      if (!mime || typeof a[mime] !== 'string') return m;
      const data = mime === 'image/svg+xml' ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(a[mime])}` : `data:${mime};base64,${a[mime].replace(/[^A-Za-z0-9+/=]/g, '')}`;
      return `src="${data}"`;
    });
  }
  if (maths.length) {
    const katex = await loadKatex();
    html = html.replace(/@@LBMATH(\d+)@@/g, (_m, i) => {
      const { tex, display } = maths[Number(i)];
      // trust stays off, so \href and \html* do nothing.
      return katex.renderToString(tex, { displayMode: display, throwOnError: false, trust: false });
    });
  }
  html = DOMPurify.sanitize(html, { ADD_ATTR: ['target'] }) as unknown as string;
  // Relative image paths name drive files: the notebook page loads them itself.
  html = html.replace(/<img([^>]*?) src="(?![a-z][a-z0-9+.-]*:|\/\/)([^"]*)"/gi, '<img$1 data-drive-src="$2"');
  return html;
}

export async function renderLatex(tex: string): Promise<string> {
  const katex = await loadKatex();
  const t = tex.trim().replace(/^\$\$?|\$\$?$/g, '');
  return katex.renderToString(t, { displayMode: true, throwOnError: false });
}
