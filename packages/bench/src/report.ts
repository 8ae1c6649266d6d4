/** Tables, JSON and an SVG chart for bench results. */
import type { ClientResult } from './client-process.js';
import { floorSeconds, type Scenario } from './harness.js';

export interface ScenarioResult {
  scenario: Scenario;
  floorSeconds: number;
  results: Array<ClientResult & { vsNodemailer: number | null; ofFloor: number | null; cpuVsNodemailer: number | null; cpuVsNative: number | null }>;
}

export function summarise(scenario: Scenario, results: ClientResult[]): ScenarioResult {
  const base = results.find((r) => r.sender === 'nodemailer-pool');
  const native = results.find((r) => r.sender === 'smtp-source');
  const floor = floorSeconds(scenario);
  return {
    scenario,
    floorSeconds: floor,
    results: results.map((r) => ({
      ...r,
      vsNodemailer: base ? r.perSecond / base.perSecond : null,
      ofFloor: floor > 0 ? floor / r.seconds : null,
      cpuVsNodemailer: base ? base.cpuPer1000 / r.cpuPer1000 : null,
      cpuVsNative: native ? r.cpuPer1000 / native.cpuPer1000 : null,
    })),
  };
}

const fmt = (n: number | null, digits = 0, suffix = '') => (n === null || !Number.isFinite(n) ? '—' : `${n.toFixed(digits)}${suffix}`);

export function table(s: ScenarioResult): string {
  const sc = s.scenario;
  const lines = [
    `\n## ${sc.name}: RTT ${sc.rtt} ms, ${sc.connections} connections × ${sc.perConnection} messages, ${sc.messages} messages of ${(sc.size / 1024).toFixed(0)} KiB, ${sc.recipients} recipient(s)${sc.pipelining ? '' : ', server without PIPELINING'}${sc.chunking ? '' : ', server without CHUNKING'}${sc.server === 'postfix' ? ', Postfix behind the delay proxy' : ''}`,
    `   round-trip floor: ${s.floorSeconds > 0 ? `${s.floorSeconds.toFixed(2)} s (${((sc.messages / s.floorSeconds) | 0).toString()} msg/s)` : '— (no latency: CPU-bound)'}`,
    '',
    `   ${'sender'.padEnd(20)} ${'ok'.padStart(7)} ${'msg/s'.padStart(8)} ${'vs nm'.padStart(6)} ${'floor'.padStart(6)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'CPU s/1k'.padStart(9)} ${'CPU vs nm'.padStart(9)} ${'vs C'.padStart(6)} ${'RSS MB'.padStart(7)} ${'ELD p99'.padStart(8)}`,
  ];
  for (const r of s.results) {
    lines.push(
      `   ${r.sender.padEnd(20)} ${String(r.delivered).padStart(7)} ${fmt(r.perSecond).padStart(8)} ${fmt(r.vsNodemailer, 2, '×').padStart(6)} ${fmt(r.ofFloor === null ? null : r.ofFloor * 100, 0, '%').padStart(6)} ${fmt(r.p50, 1).padStart(8)} ${fmt(r.p99, 1).padStart(8)} ${fmt(r.cpuPer1000, 3).padStart(9)} ${fmt(r.cpuVsNodemailer, 1, '×').padStart(9)} ${fmt(r.cpuVsNative, 2, '×').padStart(6)} ${fmt(r.peakRssMb).padStart(7)} ${fmt(r.eventLoopP99, 1).padStart(8)}`,
    );
  }
  return lines.join('\n');
}

const COLORS: Record<string, string> = {
  'nodemailer-naive': '#b0b0b0',
  'nodemailer-pool': '#7a7a7a',
  'sluice-default': '#045a8d',
  'sluice-no-resume': '#3690c0',
  'sluice-data': '#2b8cbe',
  'sluice-bdat': '#0868ac',
  'sluice-bdat-window': '#084081',
  'sluice-lockstep': '#4eb3d3',
  'smtp-source': '#d95f0e',
};

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** One block per scenario; bars are messages/s scaled to the fastest sender of that scenario. */
export function svg(all: ScenarioResult[]): string {
  const rowH = 22;
  const width = 900;
  const labelW = 190;
  const barW = width - labelW - 170;
  let y = 40;
  const parts: string[] = [];
  for (const s of all) {
    const sc = s.scenario;
    parts.push(`<text x="10" y="${y}" font-weight="bold">${esc(`${sc.name} — RTT ${sc.rtt} ms, ${sc.connections}×${sc.perConnection}, ${sc.messages} msgs`)}</text>`);
    y += 10;
    const max = Math.max(...s.results.map((r) => r.perSecond), s.floorSeconds > 0 ? sc.messages / s.floorSeconds : 0);
    for (const r of s.results) {
      const w = Math.max(1, (r.perSecond / max) * barW);
      parts.push(
        `<text x="10" y="${y + 15}">${esc(r.sender)}</text>`,
        `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${COLORS[r.sender] ?? '#555'}"/>`,
        `<text x="${labelW + w + 6}" y="${y + 15}">${esc(`${r.perSecond.toFixed(0)} msg/s${r.vsNodemailer ? ` (${r.vsNodemailer.toFixed(2)}×)` : ''}`)}</text>`,
      );
      y += rowH;
    }
    if (s.floorSeconds > 0) {
      const fx = labelW + ((sc.messages / s.floorSeconds) / max) * barW;
      parts.push(`<line x1="${fx.toFixed(1)}" x2="${fx.toFixed(1)}" y1="${y - rowH * s.results.length}" y2="${y}" stroke="#d7301f" stroke-dasharray="4 3"/>`);
      parts.push(`<text x="${(fx + 4).toFixed(1)}" y="${y + 12}" fill="#d7301f" font-size="11">round-trip floor</text>`);
    }
    y += 34;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif" font-size="13">
<title>sluice vs nodemailer: messages per second</title>
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="16" font-weight="bold">sluice vs nodemailer: messages per second (same run, same mock server)</text>
${parts.join('\n')}
</svg>
`;
}
