import { SpanKind, SpanStatusCode, context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { type Pool, createPool } from '@sluice/core';
import { type MockServer, startMockServer } from '@sluice/mock-server';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type SluiceInstrumentation, instrumentSluice } from '../src/index.js';

beforeAll(() => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
});
afterAll(() => {
  context.disable();
});

let server: MockServer;
let pool: Pool;
let instrumentation: SluiceInstrumentation;
afterEach(async () => {
  instrumentation?.disable();
  await pool?.destroy();
  await server?.close();
});

function setup(options: { recordPersonalData?: boolean } = {}) {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const metricsExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricsExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  instrumentation = instrumentSluice({ tracerProvider, meterProvider, ...options });
  /** The metrics as exported now, by name. */
  const collect = async (): Promise<Map<string, MetricData>> => {
    await reader.forceFlush();
    const last = metricsExporter.getMetrics().at(-1)!;
    return new Map(last.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
  };
  return { spans, tracerProvider, collect };
}

const message = (i: number, to = [`rcpt${i}@example.com`]) => ({
  envelope: { from: 'sender@example.com', to },
  body: `From: sender@example.com\r\nTo: ${to.join(', ')}\r\nSubject: ${i}\r\nMessage-ID: <m${i}@sluice.test>\r\n\r\nHello\r\n`,
});

async function start(options: Parameters<typeof startMockServer>[0] = {}, poolOptions: Record<string, unknown> = {}) {
  server = await startMockServer({ ...options, extensions: { starttls: false } });
  server.setFaults([{ command: 'RCPT', recipient: 'gone@example.com', reply: '550 5.1.1 No such user' }]);
  pool = createPool({ host: server.host, port: server.port, name: 'client.sluice.test', maxConnections: 2, retry: { minDelay: 5, maxDelay: 20 }, ...poolOptions });
}

describe('spans', () => {
  it('one CLIENT span per send, a child of the caller, with the outcome and no personal data', async () => {
    const { spans, tracerProvider } = setup();
    await start();
    const tracer = tracerProvider.getTracer('test');
    const settled = await tracer.startActiveSpan('request', async (parent) => {
      const r = await Promise.allSettled([pool.send(message(1)), pool.send(message(2, ['gone@example.com'])), pool.send(message(3))]);
      parent.end();
      return r;
    });
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);

    const finished = spans.getFinishedSpans();
    const parent = finished.find((s) => s.name === 'request')!;
    const sends = finished.filter((s) => s.name === 'smtp send');
    expect(sends).toHaveLength(3);
    for (const span of sends) {
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
      expect(span.spanContext().traceId).toBe(parent.spanContext().traceId);
      expect(span.attributes).toMatchObject({
        'server.address': server.host,
        'server.port': server.port,
        'url.scheme': 'smtp',
        'network.operation': 'send',
        'sluice.api': 'send',
        'sluice.recipients.count': 1,
      });
      // No personal data by default: no address, no message id, no reply text, no exception event.
      for (const value of Object.values(span.attributes)) expect(String(value)).not.toMatch(/@|sluice\.test/);
      expect(span.events).toEqual([]);
    }
    const delivered = sends.filter((s) => s.attributes['sluice.outcome'] === 'delivered');
    expect(delivered).toHaveLength(2);
    for (const span of delivered) {
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
      expect(span.attributes).toMatchObject({ 'smtp.response.status_code': 250, 'sluice.recipients.accepted': 1, 'sluice.attempts': 1 });
      expect(typeof span.attributes['sluice.connection.id']).toBe('number');
    }
    const error = (settled[1] as PromiseRejectedResult).reason as { code: string };
    const [rejected] = sends.filter((s) => s.attributes['sluice.outcome'] === 'rejected');
    expect(rejected!.status).toEqual({ code: SpanStatusCode.ERROR, message: error.code });
    expect(rejected!.attributes).toMatchObject({
      'error.type': error.code,
      'smtp.response.status_code': 550,
      'smtp.response.enhanced_status_code': '5.1.1',
      'smtp.command': 'RCPT',
    });
  });

  it('records the envelope, the message id and the failure when asked to', async () => {
    const { spans } = setup({ recordPersonalData: true });
    await start();
    await pool.send(message(1));
    await expect(pool.send(message(2, ['gone@example.com']))).rejects.toThrow();
    const [ok, failed] = spans.getFinishedSpans();
    expect(ok!.attributes).toMatchObject({ 'sluice.envelope.from': 'sender@example.com', 'sluice.envelope.to': ['rcpt1@example.com'], 'sluice.message.id': '<m1@sluice.test>' });
    expect(failed!.attributes['sluice.envelope.to']).toEqual(['gone@example.com']);
    expect(failed!.events.map((e) => e.name)).toEqual(['exception']);
    expect(failed!.status.message).toMatch(/No such user/);
  });

  it('stops when disabled', async () => {
    const { spans } = setup();
    await start();
    instrumentation.disable();
    await pool.send(message(1));
    expect(spans.getFinishedSpans()).toEqual([]);
  });
});

describe('metrics', () => {
  const points = (m: MetricData | undefined) => (m?.dataPoints ?? []) as Array<DataPoint<number | Histogram>>;
  const byOutcome = (m: MetricData | undefined) =>
    Object.fromEntries(points(m).map((p) => [String(p.attributes['sluice.outcome']), typeof p.value === 'number' ? p.value : p.value.count]));

  it('operation duration and count by outcome, open connections, their lifetimes and the limit in force', async () => {
    const { collect } = setup();
    await start();
    await Promise.allSettled([pool.send(message(1)), pool.send(message(2, ['gone@example.com'])), pool.send(message(3)), pool.send(message(4))]);

    let m = await collect();
    expect(byOutcome(m.get('smtp.client.operation.count'))).toEqual({ delivered: 3, rejected: 1 });
    const duration = m.get('smtp.client.operation.duration')!;
    expect(duration.descriptor.unit).toBe('s');
    expect(byOutcome(duration)).toEqual({ delivered: 3, rejected: 1 });
    for (const p of points(duration)) {
      expect(p.attributes).toMatchObject({ 'server.address': server.host, 'server.port': server.port, 'network.operation': 'send' });
      const h = p.value as Histogram;
      expect(h.sum).toBeGreaterThan(0);
      expect(h.max).toBeLessThan(10);
    }
    const opened = pool.stats.connections;
    expect(opened).toBeGreaterThan(0);
    expect(points(m.get('sluice.pool.connections')).map((p) => p.value)).toEqual([opened]);
    expect(points(m.get('sluice.pool.connection.limit')).map((p) => p.value)).toEqual([2]);
    expect(points(m.get('sluice.pool.queued')).map((p) => p.value)).toEqual([0]);

    await pool.close();
    m = await collect();
    expect(points(m.get('sluice.pool.connections')).map((p) => p.value)).toEqual([0]);
    const lifetimes = points(m.get('smtp.client.connection.duration'));
    expect(lifetimes.reduce((n, p) => n + (p.value as Histogram).count, 0)).toBe(opened);
    for (const p of lifetimes) expect(p.attributes['error.type']).toBeUndefined(); // QUIT: an orderly close
  });

  it('the limit lowered after "421 too many connections", and the refusals as connection errors', async () => {
    const { collect } = setup();
    await start({ maxConnections: 1 }, { maxConnections: 4, maxMessagesPerConnection: 100 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => pool.send(message(i))));
    const m = await collect();
    expect(points(m.get('sluice.pool.connection.limit')).map((p) => p.value)).toEqual([pool.stats.maxConnections]);
    expect(pool.stats.maxConnections).toBe(1);
    expect(points(m.get('sluice.pool.throttles'))[0]!.value).toBeGreaterThan(0);
    const errors = points(m.get('sluice.connection.errors'));
    expect(errors.length).toBeGreaterThan(0);
    for (const p of errors) expect(p.attributes).toMatchObject({ 'sluice.connection.phase': 'connect', 'error.type': 'ECONNECTION' });
  });
});
