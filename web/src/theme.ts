// The colour theme: light, dark, or the system's (the default), chosen with the switch
// in the top bar and remembered in this browser. The stylesheet's colours are CSS
// variables with a dark set under `:root[data-theme=dark]`; this module sets that
// attribute and follows the system's `prefers-color-scheme` while the choice is "system".
import { h } from './ui';

export type ThemeChoice = 'system' | 'light' | 'dark';

const KEY = 'labbook:theme';
const dark = window.matchMedia('(prefers-color-scheme: dark)');

export function themeChoice(): ThemeChoice {
  const v = localStorage.getItem(KEY);
  return v === 'light' || v === 'dark' ? v : 'system';
}

/** Whether the page is dark now. */
export function isDark(): boolean {
  return document.documentElement.dataset.theme === 'dark';
}

/** Sets the page's theme from the choice and the system's; tells listeners of
 * `labbook-theme` (HTML output frames) when it changes. */
export function applyTheme(): void {
  const c = themeChoice();
  const t = c === 'system' ? (dark.matches ? 'dark' : 'light') : c;
  if (document.documentElement.dataset.theme === t) return;
  document.documentElement.dataset.theme = t;
  window.dispatchEvent(new Event('labbook-theme'));
}

export function setTheme(c: ThemeChoice): void {
  if (c === 'system') localStorage.removeItem(KEY);
  else localStorage.setItem(KEY, c);
  applyTheme();
}

dark.addEventListener('change', applyTheme);
// Another tab changed the choice.
window.addEventListener('storage', (e) => { if (e.key === KEY) applyTheme(); });

/** The switch: System / Light / Dark. */
export function themeSwitch(): HTMLElement {
  const sel = h('select', { class: 'theme-switch', 'aria-label': 'Theme', title: 'Theme', 'data-testid': 'theme' },
    ...(['system', 'light', 'dark'] as ThemeChoice[]).map((c) =>
      h('option', { value: c, text: c === 'system' ? 'System theme' : c === 'light' ? 'Light' : 'Dark', selected: c === themeChoice() })));
  sel.addEventListener('change', () => setTheme(sel.value as ThemeChoice));
  return sel;
}
