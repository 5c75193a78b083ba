// Builds the UI into web/dist: index.html and hashed files under dist/assets/.
// The home page's bundle is small; the notebook editor (CodeMirror, marked,
// DOMPurify, ansi_up) and KaTeX are chunks loaded when first needed.
// `node build.mjs --check` also type-checks with tsc first.
import * as esbuild from 'esbuild';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
process.chdir(here);
if (process.argv.includes('--check')) {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', '.'], { stdio: 'inherit' });
}

const dist = path.join(here, 'dist');
const tmp = path.join(here, 'dist.tmp');
fs.rmSync(tmp, { recursive: true, force: true });

const result = await esbuild.build({
  entryPoints: {
    app: 'src/main.ts',
    style: 'src/style.css',
    katex: 'katex/dist/katex.min.css',
  },
  bundle: true,
  splitting: true,
  format: 'esm',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  outdir: path.join(tmp, 'assets'),
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  assetNames: '[name]-[hash]',
  loader: { '.woff2': 'file', '.woff': 'file', '.ttf': 'file' },
  minify: true,
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
});

// The entry files, by their entry point.
const outputs = result.metafile.outputs;
const entry = (src) => {
  const out = Object.keys(outputs).find((o) => outputs[o].entryPoint === src);
  if (!out) throw new Error(`no output for ${src}`);
  return '/assets/' + path.basename(out);
};
const appJs = entry('src/main.ts');
const styleCss = entry('src/style.css');
const katexCss = entry('node_modules/katex/dist/katex.min.css');

// The frame that HTML and JavaScript outputs run in, under a name with its hash.
const frameSrc = fs.readFileSync('src/frame.html');
const frameName = `frame-${crypto.createHash('sha256').update(frameSrc).digest('hex').slice(0, 10)}.html`;
fs.writeFileSync(path.join(tmp, 'assets', frameName), frameSrc);

const html = `<!doctype html>
<html lang="en" data-katex-css="${katexCss}" data-frame="/assets/${frameName}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>labbook</title>
<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Cpath d='M8 1 15 8 8 15 1 8z' fill='%23f9ab00'/%3E%3C/svg%3E">
<link rel="stylesheet" href="${styleCss}">
<script type="module" src="${appJs}"></script>
</head>
<body><div id="app"><p class="boot">Loading…</p></div></body>
</html>
`;
fs.writeFileSync(path.join(tmp, 'index.html'), html);

// Sizes, for docs/ui.md: what the first page loads, and each lazy chunk.
const sizes = {};
for (const [out, info] of Object.entries(outputs)) {
  if (!/\.(js|css)$/.test(out)) continue;
  const bytes = fs.readFileSync(out);
  const gz = zlib.gzipSync(bytes, { level: 9 });
  sizes[path.basename(out)] = { bytes: info.bytes, gzip: gz.length };
  // The hub sends NAME.gz to browsers that take gzip (it compresses nothing itself).
  if (bytes.length > 1024) fs.writeFileSync(out + '.gz', gz);
}
fs.writeFileSync(path.join(tmp, 'sizes.json'), JSON.stringify(sizes, null, 1) + '\n');

// Replace dist in one step, so a running hub never serves half a build.
fs.rmSync(dist, { recursive: true, force: true });
fs.renameSync(tmp, dist);
// What each step loads: a module's file and what it imports statically, less what
// was loaded before. The first page: the app entry and the stylesheet; then the
// notebook page, the editor (CodeMirror, just after), KaTeX (when there is math).
const closure = (out, seen = new Set()) => {
  if (seen.has(out)) return seen;
  seen.add(out);
  for (const i of outputs[out].imports) if (i.kind === 'import-statement') closure(i.path, seen);
  return seen;
};
const outputOf = (input) => Object.keys(outputs).find((o) => outputs[o].entryPoint === input ||
  (!outputs[o].entryPoint && Object.keys(outputs[o].inputs).includes(input) && o.endsWith('.js')));
const loaded = new Set();
const step = (name, outs) => {
  const files = [];
  for (const o of outs) for (const f of closure(o)) if (!loaded.has(f)) { loaded.add(f); files.push(path.basename(f)); }
  const sum = files.reduce((a, f) => ({ bytes: a.bytes + sizes[f].bytes, gzip: a.gzip + sizes[f].gzip }), { bytes: 0, gzip: 0 });
  sizes[`(${name})`] = { files, ...sum };
  return sum;
};
const first = step('first page', [outputOf('src/main.ts'), Object.keys(outputs).find((o) => outputs[o].entryPoint === 'src/style.css')]);
step('notebook page', [outputOf('src/notebook/notebook.ts')]);
step('editor', [outputOf('src/notebook/editor.ts')]);
step('katex', [outputOf('node_modules/katex/dist/katex.mjs'), Object.keys(outputs).find((o) => outputs[o].entryPoint === 'node_modules/katex/dist/katex.min.css')]);
fs.writeFileSync(path.join(dist, 'sizes.json'), JSON.stringify(sizes, null, 1) + '\n');
const kb = (n) => (n / 1024).toFixed(1) + ' KiB';
console.log('web/dist: ' + ['first page', 'notebook page', 'editor', 'katex'].map((n) => `${n} ${kb(sizes[`(${n})`].bytes)} (${kb(sizes[`(${n})`].gzip)} gzip)`).join(', '));
