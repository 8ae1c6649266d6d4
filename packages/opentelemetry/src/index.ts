import { type MeterProvider, type TracerProvider, metrics, trace } from '@opentelemetry/api';
import { measure } from './metrics.js';
import { traceSends } from './tracing.js';

export { ATTR } from './attributes.js';
export { DURATION_BUCKETS } from './metrics.js';

export interface SluiceInstrumentationOptions {
  /** Default: the global tracer provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
  /** Default: the global meter provider (`metrics.getMeterProvider()`). */
  meterProvider?: MeterProvider;
  /** Spans, one per send. Default true. */
  tracing?: boolean;
  /** Metrics. Default true. */
  metrics?: boolean;
  /**
   * Put personal data on spans: the envelope's addresses (`sluice.envelope.from`, `sluice.envelope.to`),
   * the message id, a failure's message (it may quote the server's reply) and its exception. Default false.
   */
  recordPersonalData?: boolean;
}

export interface SluiceInstrumentation {
  /** Unsubscribes from sluice's channels: no more spans or measurements. */
  disable(): void;
}

const NAME = '@sluice/opentelemetry';
const VERSION = '0.0.0';

/**
 * Turns sluice's diagnostics channels (every pool in this process, any copy of @sluice/core) into
 * OpenTelemetry spans and metrics. Call once, after your SDK is set up.
 */
export function instrumentSluice(options: SluiceInstrumentationOptions = {}): SluiceInstrumentation {
  const stops: Array<() => void> = [];
  if (options.tracing !== false) {
    const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(NAME, VERSION);
    stops.push(traceSends({ tracer, recordPersonalData: options.recordPersonalData === true }));
  }
  if (options.metrics !== false) {
    const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(NAME, VERSION);
    stops.push(measure(meter));
  }
  return {
    disable() {
      for (const stop of stops.splice(0)) stop();
    },
  };
}
