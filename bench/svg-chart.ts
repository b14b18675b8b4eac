/**
 * A small SVG bar chart, written by hand: a grid of panels (small multiples), each with its own
 * linear scale, one bar per system with its median printed above and a whisker for min–max.
 */

interface Bar {
  label: string;
  /** NaN = not measured (skipped or failed): drawn as a note instead of a bar. */
  median: number;
  min: number;
  max: number;
  color: string;
}

export interface Panel {
  title: string;
  unit: string;
  bars: Bar[];
  /** A goal, drawn as a dashed line across the panel. */
  target?: number;
}

export interface ChartOptions {
  title: string;
  subtitle: string;
  panels: Panel[];
  columns: number;
  /** Legend: label and colour of each system. */
  legend: { label: string; color: string }[];
}

const PANEL_W = 330;
const PANEL_H = 250;
const PLOT_TOP = 40;
const PLOT_BOTTOM = 58;
const PLOT_LEFT = 44;
const PLOT_RIGHT = 10;
const HEADER_H = 70;
const LEGEND_ROW_H = 18;
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function short(x: number): string {
  if (!Number.isFinite(x)) return 'n/a';
  const abs = Math.abs(x);
  if (abs >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (abs >= 1e4) return `${(x / 1e3).toFixed(0)}k`;
  if (abs >= 1e3) return `${(x / 1e3).toFixed(1)}k`;
  if (abs >= 10) return x.toFixed(0);
  if (abs >= 1) return x.toFixed(1);
  return x.toFixed(2);
}

function panelSvg(p: Panel, x0: number, y0: number): string {
  const out: string[] = [];
  out.push(
    `<text x="${x0 + PANEL_W / 2}" y="${y0 + 18}" text-anchor="middle" font-size="13" font-weight="bold" ${FONT}>${esc(p.title)}</text>`,
    `<text x="${x0 + PANEL_W / 2}" y="${y0 + 32}" text-anchor="middle" font-size="10" fill="#555" ${FONT}>${esc(p.unit)}</text>`,
  );
  const plotH = PANEL_H - PLOT_TOP - PLOT_BOTTOM;
  const baseY = y0 + PLOT_TOP + plotH;
  const target = p.target !== undefined && Number.isFinite(p.target) ? p.target : 0;
  const top = Math.max(target, ...p.bars.map((b) => (Number.isFinite(b.max) ? b.max : 0)));
  const scale = top > 0 ? (plotH - 14) / top : 0;
  const slot = (PANEL_W - PLOT_LEFT - PLOT_RIGHT) / Math.max(1, p.bars.length);
  const barW = Math.min(36, slot * 0.7);
  out.push(
    `<line x1="${x0 + PLOT_LEFT}" y1="${baseY}" x2="${x0 + PANEL_W - PLOT_RIGHT}" y2="${baseY}" stroke="#999"/>`,
  );
  if (target > 0) {
    const ty = baseY - target * scale;
    out.push(
      `<line x1="${x0 + PLOT_LEFT}" y1="${ty}" x2="${x0 + PANEL_W - PLOT_RIGHT}" y2="${ty}" stroke="#c0392b" stroke-dasharray="5 3"/>`,
      `<text x="${x0 + PANEL_W - PLOT_RIGHT}" y="${ty - 3}" text-anchor="end" font-size="9" fill="#c0392b" ${FONT}>target ${esc(short(target))}</text>`,
    );
  }
  p.bars.forEach((b, i) => {
    const cx = x0 + PLOT_LEFT + slot * (i + 0.5);
    if (!Number.isFinite(b.median)) {
      out.push(
        `<text x="${cx}" y="${baseY - 4}" text-anchor="middle" font-size="9" fill="#999" ${FONT}>n/a</text>`,
      );
    } else {
      const h = b.median * scale;
      out.push(
        `<rect x="${cx - barW / 2}" y="${baseY - h}" width="${barW}" height="${h}" fill="${b.color}"><title>${esc(
          `${b.label}: ${short(b.median)} (${short(b.min)}–${short(b.max)}) ${p.unit}`,
        )}</title></rect>`,
      );
      if (Number.isFinite(b.min) && Number.isFinite(b.max) && b.max > b.min) {
        const y1 = baseY - b.min * scale;
        const y2 = baseY - b.max * scale;
        out.push(
          `<line x1="${cx}" y1="${y1}" x2="${cx}" y2="${y2}" stroke="#222" stroke-width="1"/>`,
          `<line x1="${cx - 4}" y1="${y2}" x2="${cx + 4}" y2="${y2}" stroke="#222"/>`,
          `<line x1="${cx - 4}" y1="${y1}" x2="${cx + 4}" y2="${y1}" stroke="#222"/>`,
        );
      }
      const labelY = baseY - Math.max(h, Number.isFinite(b.max) ? b.max * scale : h) - 4;
      out.push(
        `<text x="${cx}" y="${labelY}" text-anchor="middle" font-size="10" ${FONT}>${esc(short(b.median))}</text>`,
      );
    }
    out.push(
      `<text x="${cx}" y="${baseY + 12}" text-anchor="end" font-size="9" ${FONT} transform="rotate(-30 ${cx} ${baseY + 12})">${esc(b.label)}</text>`,
    );
  });
  return out.join('\n');
}

export function renderChart(o: ChartOptions): string {
  const rows = Math.ceil(o.panels.length / o.columns);
  const legendRows = Math.ceil(o.legend.length / 4);
  const width = PANEL_W * o.columns;
  const height = HEADER_H + legendRows * LEGEND_ROW_H + rows * PANEL_H + 10;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="24" font-size="16" font-weight="bold" ${FONT}>${esc(o.title)}</text>`,
    `<text x="12" y="44" font-size="11" fill="#444" ${FONT}>${esc(o.subtitle)}</text>`,
  ];
  o.legend.forEach((l, i) => {
    const lx = 12 + (i % 4) * 240;
    const ly = 56 + Math.floor(i / 4) * LEGEND_ROW_H;
    parts.push(
      `<rect x="${lx}" y="${ly}" width="12" height="12" fill="${l.color}"/>`,
      `<text x="${lx + 16}" y="${ly + 10}" font-size="11" ${FONT}>${esc(l.label)}</text>`,
    );
  });
  const top = HEADER_H + legendRows * LEGEND_ROW_H;
  o.panels.forEach((p, i) => {
    parts.push(panelSvg(p, (i % o.columns) * PANEL_W, top + Math.floor(i / o.columns) * PANEL_H));
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
