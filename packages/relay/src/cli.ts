#!/usr/bin/env node
/** The `sluice-relay` command. */
import http from 'node:http';
import { createRequire } from 'node:module';
import { defaultSpoolDir, helpText, httpToken, layered, parseCommandLine, parseHostPort, resolveRelayOptions } from './cli-options.js';
import { RelayError, readTokenFile, spoolTokenFile } from './config.js';
import { jsonLogger } from './log.js';
import type { RelayStatus } from './options.js';
import { formatQueue, listQueue, type QueueItem } from './queue-list.js';
import { startRelay } from './relay.js';
import { Spool } from './spool.js';
import { formatStatus, releaseFromSpool, spoolStatus } from './status.js';

function version(): string {
  try {
    return (createRequire(import.meta.url)('../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function httpRequest(method: string, target: { host: string; port: number }, path: string, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const req = http.request({ method, host: target.host, port: target.port, path, headers, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The message of the control port's `{ "error": { "code", "message" } }`, or the body as it is. */
function errorMessage(body: string): string {
  try {
    const { error } = JSON.parse(body) as { error: { code: string; message: string } };
    return `${error.message} (${error.code})`;
  } catch {
    return body;
  }
}

/** `queue` asks the running relay (else reads the spool); `flush` needs the running relay and its token. */
async function queueCommand(
  command: 'queue' | 'flush',
  json: boolean,
  target: { host: string; port: number } | null,
  spoolDir: string,
  token: string | undefined,
  spoolOnly: boolean,
): Promise<number> {
  if (command === 'flush') {
    if (!target) throw new RelayError('ERELAYCONFIG', 'flush talks to the running relay: give --http ADDR:PORT (it is off)');
    let res: { status: number; body: string };
    try {
      res = await httpRequest('POST', target, '/flush', token);
    } catch (err) {
      process.stderr.write(`sluice-relay: no relay answers on http://${target.host}:${target.port} (${(err as Error).message})\n`);
      return 1;
    }
    if (res.status !== 200) {
      process.stderr.write(`sluice-relay: ${errorMessage(res.body)}\n`);
      return 1;
    }
    process.stdout.write('flushed: every deferred message is being retried now\n');
    return 0;
  }
  let items: QueueItem[] | undefined;
  if (target && !spoolOnly) {
    try {
      const res = await httpRequest('GET', target, '/queue', token);
      if (res.status === 200) items = (JSON.parse(res.body) as { messages: QueueItem[] }).messages;
    } catch {
      // not running, or not on that port: read the spool
    }
  }
  items ??= await listQueue(new Spool(spoolDir));
  process.stdout.write(json ? `${JSON.stringify(items, null, 2)}\n` : formatQueue(items));
  return 0;
}

async function main(): Promise<number> {
  const cmd = parseCommandLine(process.argv.slice(2));
  if (cmd.command === 'help') {
    process.stdout.write(helpText());
    return 0;
  }
  if (cmd.command === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (cmd.command === 'status' || cmd.command === 'release' || cmd.command === 'queue' || cmd.command === 'flush') {
    const cfg = layered(cmd.values, process.env);
    const { get } = cfg;
    const httpValue = get('http');
    const target = httpValue === 'off' ? null : parseHostPort(httpValue ?? '127.0.0.1:2526', 'http');
    const spoolDir = get('spool') ?? defaultSpoolDir();
    // The operator's token, else the one the relay generated into its spool (readable by the relay's user only).
    const token = (await httpToken(cfg, process.env)) ?? (await readTokenFile(spoolTokenFile(spoolDir)).catch(() => undefined));
    if (cmd.command === 'queue' || cmd.command === 'flush')
      return queueCommand(cmd.command, cmd.values.json === true, target, spoolDir, token, !!cmd.values.spool);
    if (cmd.command === 'status') {
      if (target && !cmd.values.spool) {
        try {
          const res = await httpRequest('GET', target, '/status', token);
          if (res.status === 200) {
            const s = JSON.parse(res.body) as RelayStatus;
            process.stdout.write(cmd.values.json ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s, `http://${target.host}:${target.port}`));
            return 0;
          }
        } catch {
          // not running, or not on that port: read the spool
        }
      }
      const s = await spoolStatus(spoolDir);
      process.stdout.write(cmd.values.json ? `${JSON.stringify(s, null, 2)}\n` : formatStatus(s, spoolDir));
      return 0;
    }
    const ids = cmd.values.all ? 'all' : cmd.positionals;
    if (ids !== 'all' && ids.length === 0) throw new RelayError('ERELAYCONFIG', 'release: give message ids (see sluice-relay status) or --all');
    if (target && !cmd.values.spool) {
      const query = ids === 'all' ? '' : `?${ids.map((i) => `id=${encodeURIComponent(i)}`).join('&')}`;
      try {
        const res = await httpRequest('POST', target, `/release${query}`, token);
        if (res.status === 200) {
          const { released } = JSON.parse(res.body) as { released: string[] };
          process.stdout.write(`released ${released.length} message(s): ${released.join(' ')}\n`);
          return 0;
        }
        process.stderr.write(`sluice-relay: ${errorMessage(res.body)}\n`);
        return 1;
      } catch {
        // fall through to the spool
      }
    }
    const released = await releaseFromSpool(spoolDir, ids);
    process.stdout.write(
      `released ${released.length} message(s) into ${spoolDir}/queue (a running relay picks them up within seconds): ${released.join(' ')}\n`,
    );
    return 0;
  }

  const options = await resolveRelayOptions(cmd.values, process.env);
  const logger = jsonLogger({ level: options.logLevel });
  const relay = await startRelay({ ...options, logger });
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn('second signal: exiting now; messages not yet delivered stay spooled', { signal });
      process.exit(1);
    }
    logger.info('signal received: graceful shutdown', { signal });
    relay.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error('shutdown failed', { error: (err as Error).message });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return -1; // keep running
}

main().then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err) => {
    const message = err instanceof RelayError || (err as Error)?.name === 'SluiceError' ? (err as Error).message : String((err as Error)?.stack ?? err);
    process.stderr.write(`sluice-relay: ${message}\n`);
    process.exitCode = 2;
  },
);
