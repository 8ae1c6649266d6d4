import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { MockServerError } from './errors.js';
import { PROFILE_NAMES } from './profiles.js';
import { startMockServer } from './server.js';
import type { MockServer, MockServerOptions, ProfileName } from './types.js';

export const USAGE = `Usage: sluice-mock-server [options]

A mock SMTP server for tests and benchmarks.

Options:
  -p, --port <n>            port to listen on (default 1025, as MailHog and Mailpit; 0 for any free port)
      --host <address>      address to listen on (default 127.0.0.1)
      --hostname <name>     name in the greeting (default mock.sluice.test)
      --profile <name>      ${PROFILE_NAMES.join(' | ')}
      --rtt <ms>            simulated round-trip time (default 0)
      --bandwidth <B/s>     simulated bandwidth per direction per connection
      --secure              implicit TLS (like port 465)
      --no-pipelining       do not offer PIPELINING
      --no-chunking         do not offer CHUNKING (BDAT)
      --no-starttls         do not offer STARTTLS
      --no-enhanced-status-codes
                            plain replies without x.y.z codes
      --require-tls         530 to MAIL and AUTH before STARTTLS
      --require-auth        530 to MAIL before AUTH
      --user <name:pass>    accept these credentials (repeatable)
      --token <user:token>  accept this XOAUTH2 token (repeatable)
      --max-connections <n> concurrent connections (421 4.4.5 beyond)
      --max-messages <n>    messages per connection (421 after)
      --max-recipients <n>  recipients per message (452 beyond)
      --rate-limit <n>      messages per second (454 4.7.0 beyond)
      --seed <n>            seed for probabilistic faults
      --ca-file <path>      write the server's certificate (PEM) there
      --no-record           do not keep message bodies
  -q, --quiet               print nothing but errors
  -h, --help                show this help
`;

export interface Output {
  write(text: string): unknown;
}

export interface CliConfig {
  options: MockServerOptions;
  quiet: boolean;
  caFile: string | undefined;
}

function integer(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new MockServerError('EMOCKOPTIONS', `--${name} expects a non-negative number, got ${JSON.stringify(value)}`);
  return n;
}

function pairs(name: string, values: string[] | undefined): Record<string, string> | undefined {
  if (!values?.length) return undefined;
  const out: Record<string, string> = {};
  for (const v of values) {
    const colon = v.indexOf(':');
    if (colon <= 0) throw new MockServerError('EMOCKOPTIONS', `--${name} expects name:secret, got ${JSON.stringify(v)}`);
    out[v.slice(0, colon)] = v.slice(colon + 1);
  }
  return out;
}

/** Parse the command line into server options. Throws with a message meant for the user. */
export function parseCli(argv: string[]): CliConfig | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      port: { type: 'string', short: 'p' },
      host: { type: 'string' },
      hostname: { type: 'string' },
      profile: { type: 'string' },
      rtt: { type: 'string' },
      bandwidth: { type: 'string' },
      secure: { type: 'boolean' },
      'no-pipelining': { type: 'boolean' },
      'no-chunking': { type: 'boolean' },
      'no-starttls': { type: 'boolean' },
      'no-enhanced-status-codes': { type: 'boolean' },
      'require-tls': { type: 'boolean' },
      'require-auth': { type: 'boolean' },
      user: { type: 'string', multiple: true },
      token: { type: 'string', multiple: true },
      'max-connections': { type: 'string' },
      'max-messages': { type: 'string' },
      'max-recipients': { type: 'string' },
      'rate-limit': { type: 'string' },
      seed: { type: 'string' },
      'ca-file': { type: 'string' },
      'no-record': { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  if (values.profile !== undefined && !PROFILE_NAMES.includes(values.profile as ProfileName)) {
    throw new MockServerError('EMOCKOPTIONS', `--profile must be one of ${PROFILE_NAMES.join(', ')}`);
  }
  const extensions: NonNullable<MockServerOptions['extensions']> = {};
  if (values['no-pipelining']) extensions.pipelining = false;
  if (values['no-chunking']) extensions.chunking = false;
  if (values['no-starttls']) extensions.starttls = false;
  if (values['no-enhanced-status-codes']) extensions.enhancedStatusCodes = false;
  const tokens = pairs('token', values.token);

  const options: MockServerOptions = {
    port: integer('port', values.port) ?? 1025,
    host: values.host,
    hostname: values.hostname,
    profile: values.profile as ProfileName | undefined,
    rtt: integer('rtt', values.rtt),
    bandwidth: integer('bandwidth', values.bandwidth),
    secure: values.secure,
    requireTLS: values['require-tls'],
    requireAuth: values['require-auth'],
    users: pairs('user', values.user),
    tokens,
    maxConnections: integer('max-connections', values['max-connections']),
    maxMessagesPerConnection: integer('max-messages', values['max-messages']),
    maxRecipients: integer('max-recipients', values['max-recipients']),
    rateLimit: integer('rate-limit', values['rate-limit']),
    seed: integer('seed', values.seed),
    record: values['no-record'] ? false : undefined,
    extensions,
    // A long-running process: nobody reads the inbox, keep memory flat.
    inboxLimit: 100,
  };
  // Leave unset what was not given, so profiles still apply.
  for (const key of Object.keys(options) as Array<keyof MockServerOptions>) {
    if (options[key] === undefined) delete options[key];
  }
  return { options, quiet: values.quiet ?? false, caFile: values['ca-file'] };
}

/**
 * Start the server the command line describes. Returns it, or an exit code (0 after --help, 2 after
 * a usage error).
 */
export async function runCli(argv: string[], out: Output, err: Output): Promise<MockServer | number> {
  let config: CliConfig | 'help';
  try {
    config = parseCli(argv);
  } catch (error) {
    err.write(`sluice-mock-server: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (config === 'help') {
    out.write(USAGE);
    return 0;
  }
  const { options, quiet, caFile } = config;
  if (!quiet) {
    options.onMessage = (m) => {
      const who = m.user ? ` user ${m.user}` : '';
      out.write(
        `#${m.sequence} ${m.id} <${m.from}> -> ${m.to.map((t) => `<${t}>`).join(' ')} ${m.size} bytes via ${m.via}, connection ${m.connection}${m.secure ? ' (TLS)' : ''}${who}\n`,
      );
    };
  }
  let server: MockServer;
  try {
    server = await startMockServer(options);
  } catch (error) {
    err.write(`sluice-mock-server: ${(error as Error).message}\n`);
    return 1;
  }
  if (caFile) await writeFile(caFile, server.ca);
  if (!quiet) {
    const details = [options.profile && `profile ${options.profile}`, options.rtt && `rtt ${options.rtt} ms`].filter(Boolean).join(', ');
    out.write(`sluice-mock-server listening on ${server.url}${details ? ` (${details})` : ''}\n`);
  }
  return server;
}
