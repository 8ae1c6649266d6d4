/** Tables, JSON and an SVG chart for bench results. */
import type { ClientResult } from './client-process.js';
import { floorSeconds, type Scenario } from './harness.js';
import type { LinkProbe } from './link-probe.js';

export interface ScenarioResult {
  scenario: Scenario;
  floorSeconds: number;
  /** The simulated link's measured round trip (link-probe.ts), and the floor at that round trip. */
  link?: LinkProbe & { floorSeconds: number };
  results: Array<
    ClientResult & {
      vsNodemailer: number | null;
      ofFloor: number | null;
      cpuVsNodemailer: number | null;
      cpuVsNative: number | null;
      /** With more than one round: the seconds of each run, and each round's ratio to nodemailer's pool. */
      runs?: Array<{ seconds: number; vsNodemailer: number | null }>;
    }
  >;
}

function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * `rounds`: each round ran every sender once, in turn. A sender's row is its median run (by time); its
 * ratio to nodemailer's pool is the median of the rounds' ratios, each taken between runs made close
 * together, so that load drifting on a shared machine between rounds does not move it.
 */
export function summarise(scenario: Scenario, rounds: ClientResult[][], link?: LinkProbe): ScenarioResult {
  const floor = floorSeconds(scenario);
  const vs = (round: ClientResult[], r: ClientResult) => {
    const base = round.find((b) => b.sender === 'nodemailer-pool');
    return base ? r.perSecond / base.perSecond : null;
  };
  const senders = [...new Set(rounds.flat().map((r) => r.sender))];
  const rows = senders.map((sender) => {
    const runs = rounds.flatMap((round) => round.filter((r) => r.sender === sender).map((r) => ({ r, vsNodemailer: vs(round, r) })));
    const mid = runs.slice().sort((a, b) => a.r.seconds - b.r.seconds)[(runs.length - 1) >> 1]!;
    const ratios = runs.map((x) => x.vsNodemailer).filter((x): x is number => x !== null);
    return { ...mid.r, vsNodemailer: ratios.length ? median(ratios) : null, runs: runs.map((x) => ({ seconds: x.r.seconds, vsNodemailer: x.vsNodemailer })) };
  });
  const base = rows.find((r) => r.sender === 'nodemailer-pool');
  const native = rows.find((r) => r.sender === 'smtp-source');
  return {
    scenario,
    floorSeconds: floor,
    ...(link && scenario.rtt > 0 ? { link: { ...link, floorSeconds: (floor * link.roundTrip) / scenario.rtt } } : {}),
    results: rows.map(({ runs, ...r }) => ({
      ...r,
      ofFloor: floor > 0 ? floor / r.seconds : null,
      cpuVsNodemailer: base ? base.cpuPer1000 / r.cpuPer1000 : null,
      cpuVsNative: native ? r.cpuPer1000 / native.cpuPer1000 : null,
      ...(runs.length > 1 ? { runs } : {}),
    })),
  };
}

const fmt = (n: number | null, digits = 0, suffix = '') => (n === null || !Number.isFinite(n) ? '—' : `${n.toFixed(digits)}${suffix}`);

export function table(s: ScenarioResult): string {
  const sc = s.scenario;
  const lines = [
    `\n## ${sc.name}: RTT ${sc.rtt} ms, ${sc.connections} connections × ${sc.perConnection} messages, ${sc.messages} messages of ${(sc.size / 1024).toFixed(0)} KiB, ${sc.recipients} recipient(s)${sc.pipelining ? '' : ', server without PIPELINING'}${sc.chunking ? '' : ', server without CHUNKING'}${sc.server === 'postfix' ? ', Postfix behind the delay proxy' : ''}`,
    `   round-trip floor: ${s.floorSeconds > 0 ? `${s.floorSeconds.toFixed(2)} s (${((sc.messages / s.floorSeconds) | 0).toString()} msg/s)` : '— (no latency: CPU-bound)'}`,
    ...(s.link
      ? [
          `   simulated link, measured: a round trip ${s.link.roundTrip.toFixed(1)} ms (nominal ${sc.rtt}); the floor at that round trip: ${s.link.floorSeconds.toFixed(2)} s`,
        ]
      : []),
    '',
    `   ${'sender'.padEnd(20)} ${'ok'.padStart(7)} ${'msg/s'.padStart(8)} ${'vs nm'.padStart(6)} ${'floor'.padStart(6)} ${'p50 ms'.padStart(8)} ${'p99 ms'.padStart(8)} ${'CPU s/1k'.padStart(9)} ${'CPU vs nm'.padStart(9)} ${'vs C'.padStart(6)} ${'RSS MB'.padStart(7)} ${'ELD p99'.padStart(8)}`,
  ];
  for (const r of s.results) {
    lines.push(
      `   ${r.sender.padEnd(20)} ${String(r.delivered).padStart(7)} ${fmt(r.perSecond).padStart(8)} ${fmt(r.vsNodemailer, 2, '×').padStart(6)} ${fmt(r.ofFloor === null ? null : r.ofFloor * 100, 0, '%').padStart(6)} ${fmt(r.p50, 1).padStart(8)} ${fmt(r.p99, 1).padStart(8)} ${fmt(r.cpuPer1000, 3).padStart(9)} ${fmt(r.cpuVsNodemailer, 1, '×').padStart(9)} ${fmt(r.cpuVsNative, 2, '×').padStart(6)} ${fmt(r.peakRssMb).padStart(7)} ${fmt(r.eventLoopP99, 1).padStart(8)}`,
    );
  }
  if (s.results.some((r) => r.runs)) {
    lines.push('', `   ${s.results[0]?.runs?.length ?? 0} rounds; each row is the median run, "vs nm" the median of the rounds' ratios:`);
    for (const r of s.results) {
      const runs = (r.runs ?? []).map((x) => `${x.seconds.toFixed(2)} s${x.vsNodemailer === null || r.sender === 'nodemailer-pool' ? '' : ` (${x.vsNodemailer.toFixed(2)}×)`}`);
      lines.push(`   ${r.sender.padEnd(20)} ${runs.join(', ')}`);
    }
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
