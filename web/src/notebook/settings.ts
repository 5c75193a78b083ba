// Notebook settings (Edit > Notebook settings, Runtime > Change runtime type): the
// runtime types of GET /api/runtimes/types said in people's words (the GPU model and
// memory, the RAM, the time limits, what is free now), not kernelspec names.
import { api } from '../api';
import { dialog, h } from '../ui';

/** One runtime type (a profile) as GET /api/runtimes/types answers it (docs/runtimes.md). */
export interface RuntimeType {
  name: string;
  display_name: string;
  default: boolean;
  kernel_suffix: string;
  gpus: number;
  gpu_models: { name: string; memory_mb: number; count: number }[];
  gpus_total?: number;
  gpus_free?: number;
  queued?: number;
  memory_mb: number;
  cpu_shares: number;
  host_cpus: number;
  disk_mb: number;
  network: boolean;
  idle_timeout_s: number;
  max_lifetime_s: number;
  max_per_user: number;
  yours: number;
  note: string | null;
}

const plural = (n: number, one: string, many = one + 's') => `${n} ${n === 1 ? one : many}`;
const trim1 = (x: number) => (Math.round(x * 10) / 10).toString();

/** Megabytes as people say them: "16 GB", "80 GB" (NVML's 81559 MiB), "512 MB". */
export function sizeWords(mb: number): string {
  if (mb < 1024) return `${mb} MB`;
  const gb = mb / 1024;
  return `${gb >= 10 ? Math.round(gb) : trim1(gb)} GB`;
}

/** Seconds as people say them: "45 min", "1.5 h", "12 h", "3 days". */
export function durationWords(s: number): string {
  if (s < 60) return plural(s, 'second');
  if (s < 3600) return `${Math.round(s / 60)} min`;
  if (s < 2 * 86400) return `${trim1(s / 3600)} h`;
  return `${trim1(s / 86400)} days`;
}

/** The accelerator: "NVIDIA H100 80 GB ×1", several models joined by "or", or "none". */
export function acceleratorWords(t: RuntimeType): string {
  if (!t.gpus) return 'none';
  if (!t.gpu_models.length) return `${plural(t.gpus, 'GPU')} (this server has none)`;
  return t.gpu_models.map((m) => `${m.name} ${sizeWords(m.memory_mb)} ×${t.gpus}`).join(' or ');
}

export function timeWords(t: RuntimeType): string {
  const idle = t.idle_timeout_s, life = t.max_lifetime_s;
  if (idle && life) return `stops after ${durationWords(idle)} idle, ${durationWords(life)} at most`;
  if (idle) return `stops after ${durationWords(idle)} idle; no other time limit`;
  if (life) return `runs ${durationWords(life)} at most`;
  return 'no time limits';
}

export function cpuWords(t: RuntimeType): string {
  const share = t.cpu_shares && t.cpu_shares !== 1024 ? `, ${trim1(t.cpu_shares / 1024)}× the usual share` : '';
  return `${plural(t.host_cpus, 'CPU core')}, shared${share}`;
}

/** What is free now, for a GPU type: "1 of 4 GPUs free, 2 waiting"; '' for a CPU type. */
export function availabilityWords(t: RuntimeType): string {
  if (!t.gpus || t.gpus_total === undefined) return '';
  const free = t.gpus_free ?? 0, queued = t.queued ?? 0;
  let s = `${free} of ${plural(t.gpus_total, 'GPU')} free`;
  if (queued) s += `, ${queued} waiting in the queue`;
  if (free < t.gpus || queued) s += ': a new runtime waits for its turn';
  return s;
}

export function yoursWords(t: RuntimeType): string {
  if (!t.max_per_user) return `you have ${t.yours}; no limit`;
  return `you have ${t.yours} of ${t.max_per_user}` + (t.yours >= t.max_per_user ? ': at the limit, a new one is refused' : '');
}

/** The facts shown on a type's card, in order: [label, words]. */
export function typeFacts(t: RuntimeType): [string, string][] {
  const facts: [string, string][] = [
    ['Accelerator', acceleratorWords(t)],
    ['Memory', `${sizeWords(t.memory_mb)} RAM`],
    ['CPU', cpuWords(t)],
    ['Disk', t.disk_mb ? `${sizeWords(t.disk_mb)} disk` : 'no disk limit of its own'],
    ['Time limits', timeWords(t)],
  ];
  if (!t.network) facts.push(['Network', 'no internet access']);
  const avail = t.note ? '' : availabilityWords(t);
  if (avail) facts.push(['Available now', avail]);
  facts.push(['Your runtimes', yoursWords(t)]);
  return facts;
}

/** A kernelspec from GET /api/kernelspecs. */
interface Spec { name: string; spec: { display_name: string; language?: string; metadata?: Record<string, any>; labbook_profile?: string } }

const specProfile = (s: Spec) => s.spec.metadata?.labbook_profile ?? s.spec.labbook_profile;

export interface SettingsChoice {
  /** the kernelspec to run: a base kernel with the type's suffix */
  kernel: string;
  display_name: string;
  language: string;
  type: RuntimeType;
  /** the same kernel and type the notebook runs on already (only the words may differ) */
  same: boolean;
}

/** Shows the settings dialog; resolves with the choice on Save, null on Cancel or Escape.
 * current: the notebook's kernelspec name; gpu: its metadata.accelerator asks for a GPU. */
export async function notebookSettings(title: string, current: string, gpu: boolean): Promise<SettingsChoice | null> {
  const [types, specs] = await Promise.all([api<RuntimeType[]>('GET', '/api/runtimes/types'), api<any>('GET', '/api/kernelspecs')]);
  const all: Record<string, Spec> = specs.kernelspecs || {};
  const deflt = types.find((t) => t.default) || types[0];
  // The kernels proper (Python 3, ...) are the default type's entries; the others are
  // their variants, named with a type's suffix.
  const bases = Object.values(all).filter((s) => !deflt || specProfile(s) === deflt.name || specProfile(s) === undefined);
  let curType = types.find((t) => t.name === specProfile(all[current] || ({ spec: {} } as Spec))) || deflt;
  let base = current;
  if (curType && curType.kernel_suffix && current.endsWith(curType.kernel_suffix)) base = current.slice(0, -curType.kernel_suffix.length);
  if (!all[base]) base = specs.default in all ? specs.default : bases[0]?.name;
  // A plain kernelspec with metadata.accelerator = "GPU" runs on the "gpu" type (the hub's rule).
  if (gpu && curType === deflt) curType = types.find((t) => t.name === 'gpu') || curType;

  const sel = h('select', { 'aria-label': 'Runtime type', 'data-testid': 'kernel-select' });
  for (const s of bases) sel.append(h('option', { value: s.name, text: s.spec.display_name || s.name, selected: s.name === base }));

  const group = h('div', { class: 'rt-cards', role: 'radiogroup', 'aria-label': 'Hardware accelerator' });
  for (const t of types) {
    const radio = h('input', { type: 'radio', name: 'rt-type', value: t.name, checked: t === curType, disabled: !!t.note && t !== curType });
    const facts = h('dl', { class: 'rt-facts' });
    for (const [k, v] of typeFacts(t)) facts.append(h('dt', { text: k }), h('dd', { text: v }));
    group.append(h('label', { class: 'rt-card' + (t.note ? ' unavailable' : ''), 'data-type': t.name },
      radio,
      h('div', { class: 'rt-text' },
        h('div', { class: 'rt-name', text: t.display_name }),
        facts,
        t.note ? h('div', { class: 'rt-note error', text: `Not available: ${t.note}` }) : null)));
  }
  const body = h('div', { class: 'nb-settings' },
    h('label', { class: 'field' }, h('span', { text: 'Runtime type' }), sel),
    h('div', { class: 'field' }, h('span', { text: 'Hardware accelerator' }), group));
  const v = await dialog(title, body, [{ label: 'Cancel', value: 'cancel' }, { label: 'Save', value: 'save', primary: true }],
    { enter: 'save', focus: 'input[name=rt-type]:checked', class: 'settings' });
  if (v !== 'save') return null;
  const chosen = group.querySelector<HTMLInputElement>('input[name=rt-type]:checked');
  const type = types.find((t) => t.name === chosen?.value) || curType;
  if (!type || !sel.value) return null;
  const kernel = sel.value + (type.kernel_suffix || '');
  const spec = all[kernel] || all[sel.value];
  const same = type === curType && sel.value === base;
  return { kernel, display_name: spec?.spec.display_name || kernel, language: spec?.spec.language || 'python', type, same };
}
