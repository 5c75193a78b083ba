// A few line icons drawn for labbook (24x24 viewBox, currentColor), inline so that no
// icon font or emoji font is needed.
const paths: Record<string, string> = {
  folder: 'M3 6h6l2 2h10v11H3z',
  notebook: 'M6 3h12v18H6zM9 7h6M9 11h6M9 15h4M4 6h2M4 10h2M4 14h2M4 18h2',
  file: 'M6 3h8l4 4v14H6zM14 3v4h4',
  trash: 'M4 7h16M9 7V4h6v3M6 7l1 14h10l1-14M10 11v6M14 11v6',
  download: 'M12 4v11M7 10l5 5 5-5M5 20h14',
  upload: 'M12 20V9M7 14l5-5 5 5M5 4h14',
  unpack: 'M4 8h16v12H4zM3 4h18v4H3zM12 11v6M9 14l3 3 3-3',
  edit: 'M4 20h4L19 9l-4-4L4 16zM13 7l4 4',
  move: 'M4 12h14M13 7l5 5-5 5',
  plus: 'M12 5v14M5 12h14',
  search: 'M10.5 4a6.5 6.5 0 1 0 0 13 6.5 6.5 0 1 0 0-13zM15.5 15.5 20 20',
  toc: 'M4 6h16M4 12h16M4 18h10',
  menu: 'M3 6h18M3 12h18M3 18h18',
  play: 'M8 5v14l11-7z',
  stop: 'M6 6h12v12H6z',
  up: 'M12 19V5M6 11l6-6 6 6',
  down: 'M12 5v14M6 13l6 6 6-6',
  copy: 'M8 8h12v12H8zM4 16V4h12',
  clear: 'M6 6l12 12M18 6 6 18',
  key: 'M8 11a4 4 0 1 0 0 8 4 4 0 1 0 0-8zM11 13l9-9M17 7l3 3M15 9l2 2',
  eye: 'M2 12s4-7 10-7 10 7 10 7-4 7-10 7S2 12 2 12zM12 9a3 3 0 1 0 0 6 3 3 0 1 0 0-6z',
};

/** An inline SVG icon; `label` makes it readable to screen readers. */
export function icon(name: string, label?: string): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'ico');
  if (label) svg.setAttribute('aria-label', label);
  else svg.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', paths[name] || paths.file);
  const filled = name === 'play' || name === 'stop';
  p.setAttribute('fill', filled ? 'currentColor' : 'none');
  p.setAttribute('stroke', 'currentColor');
  p.setAttribute('stroke-width', '1.8');
  p.setAttribute('stroke-linejoin', 'round');
  p.setAttribute('stroke-linecap', 'round');
  svg.append(p);
  return svg;
}
