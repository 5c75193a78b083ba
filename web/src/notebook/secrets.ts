// The Secrets panel (key icon): the user's secrets for google.colab.userdata, as Colab's
// panel shows them: each with its name, a masked value to reveal, and a "Notebook access"
// toggle for this notebook; add, edit and delete. The values live encrypted in the hub
// (/api/secrets, docs/colab.md); this panel asks for one only to reveal it.

import { api, ApiError } from '../api';
import { icon } from '../icons';
import { h, confirmBox, toast } from '../ui';

interface Secret { name: string; created: string; updated: string; notebook_access?: boolean }

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const MASK = '••••••••';

const url = (name: string) => `/api/secrets/${encodeURIComponent(name)}`;

/** Draws the panel into side for the notebook at notebookPath. */
export async function drawSecrets(side: HTMLElement, notebookPath: string): Promise<void> {
  const list = h('div', { class: 'secrets-list' });
  const redraw = () => drawSecrets(side, notebookPath);
  side.replaceChildren(
    h('h3', { text: 'Secrets' }),
    h('p', { class: 'hint', text: 'Keep API keys and passwords here instead of in the notebook. They are private to you; turn on Notebook access to let this notebook read one:' }),
    h('code', { class: 'hint', text: "from google.colab import userdata\nuserdata.get('NAME')" }),
    list,
    h('button', { class: 'secrets-add', onclick: () => list.append(editor(notebookPath, null, redraw)) }, icon('plus'), ' Add new secret'));
  let secrets: Secret[];
  try {
    secrets = await api<Secret[]>('GET', `/api/secrets?notebook=${encodeURIComponent(notebookPath)}`);
  } catch (e) {
    list.replaceChildren(h('p', { class: 'error', text: (e as Error).message }));
    return;
  }
  list.replaceChildren(...secrets.map((s) => row(notebookPath, s, redraw)));
  if (!secrets.length) list.append(h('p', { class: 'empty', text: 'No secrets yet.' }));
}

function row(nb: string, s: Secret, redraw: () => void): HTMLElement {
  const value = h('input', { class: 'secret-value', type: 'password', value: MASK, readOnly: true, 'aria-label': `Value of ${s.name}` });
  let shown = false;
  const toggle = h('input', {
    type: 'checkbox', class: 'secret-access', checked: !!s.notebook_access, title: 'Notebook access', 'aria-label': `Notebook access for ${s.name}`,
    onchange: async () => {
      try {
        await api('PUT', `${url(s.name)}/access`, { notebook: nb, access: toggle.checked });
      } catch (e) {
        toggle.checked = !toggle.checked;
        toast(`Notebook access for ${s.name}: ${(e as Error).message}`, 'error');
      }
    },
  });
  const reveal = h('button', {
    class: 'icon', title: 'Show the value', 'aria-label': `Show ${s.name}`,
    onclick: async () => {
      if (shown) { value.type = 'password'; value.value = MASK; shown = false; return; }
      try {
        const full = await api<{ value: string }>('GET', `${url(s.name)}?value=1`);
        value.value = full.value;
        value.type = 'text';
        shown = true;
      } catch (e) { toast((e as Error).message, 'error'); }
    },
  }, icon('eye'));
  const el: HTMLElement = h('div', { class: 'secret', 'data-name': s.name },
    h('label', { class: 'switch', title: 'Notebook access' }, toggle),
    h('span', { class: 'secret-name', text: s.name, title: s.name }),
    value, reveal,
    h('button', { class: 'icon', title: 'Edit', 'aria-label': `Edit ${s.name}`, onclick: () => el.replaceWith(editor(nb, s, redraw)) }, icon('edit')),
    h('button', {
      class: 'icon', title: 'Delete', 'aria-label': `Delete ${s.name}`,
      onclick: async () => {
        if (!(await confirmBox('Delete secret', `Delete the secret ${s.name}? Notebooks that read it will fail.`, 'Delete'))) return;
        try { await api('DELETE', url(s.name)); redraw(); } catch (e) { toast((e as Error).message, 'error'); }
      },
    }, icon('trash')));
  return el;
}

/** A row to add a secret (s null) or change one: name, value, notebook access, Save. */
function editor(nb: string, s: Secret | null, redraw: () => void): HTMLElement {
  const name = h('input', { class: 'secret-name-input', type: 'text', value: s?.name ?? '', placeholder: 'Name', 'aria-label': 'Name', spellcheck: false });
  const value = h('input', { class: 'secret-value-input', type: 'password', placeholder: 'Value', 'aria-label': 'Value', autocomplete: 'off' });
  const access = h('input', { type: 'checkbox', class: 'secret-access', checked: s ? !!s.notebook_access : true, 'aria-label': 'Notebook access' });
  const err = h('p', { class: 'error', hidden: true });
  const save = async () => {
    const n = name.value.trim();
    if (!NAME_RE.test(n)) {
      err.textContent = 'A name is letters, digits and underscores, not starting with a digit (at most 128).';
      err.hidden = false;
      return;
    }
    try {
      if (s && s.name !== n) {
        // A rename: the value must be given again (the old one is not read back).
        if (!value.value) throw new ApiError(400, 'Enter the value to save it under the new name.');
      }
      if (value.value || !s) {
        await api('PUT', url(n), { value: value.value, notebook: nb, notebook_access: access.checked });
      }
      if (s && s.name !== n) await api('DELETE', url(s.name));
      await api('PUT', `${url(n)}/access`, { notebook: nb, access: access.checked });
      redraw();
    } catch (e) {
      err.textContent = (e as Error).message;
      err.hidden = false;
    }
  };
  const onKey = (e: KeyboardEvent) => { if (e.key === 'Enter') { e.preventDefault(); save(); } };
  name.addEventListener('keydown', onKey);
  value.addEventListener('keydown', onKey);
  if (s) value.placeholder = 'New value (empty: keep)';
  setTimeout(() => (s ? value : name).focus());
  return h('div', { class: 'secret editing' },
    h('label', { class: 'switch', title: 'Notebook access' }, access),
    name, value,
    h('button', { class: 'primary', text: 'Save', onclick: save }),
    h('button', { text: 'Cancel', onclick: redraw }),
    err);
}
