import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { parseCli, runCli, USAGE } from '../src/cli-args.js';

const sink = () => {
  let text = '';
  return {
    write: (s: string) => {
      text += s;
      return true;
    },
    get text() {
      return text;
    },
  };
};

describe('sluice-mock-server command line', () => {
  it('maps every flag to an option', () => {
    const parsed = parseCli([
      '--port',
      '2526',
      '--host',
      '0.0.0.0',
      '--rtt',
      '50',
      '--profile',
      'ses',
      '--no-pipelining',
      '--no-chunking',
      '--no-starttls',
      '--secure',
      '--user',
      'alice:secret',
      '--user',
      'bob:pa:ss',
      '--token',
      'carol@example.com:tok',
      '--max-connections',
      '20',
      '--max-messages',
      '50',
      '--bandwidth',
      '100000',
      '--seed',
      '7',
      '--no-record',
      '--quiet',
    ]);
    expect(parsed).toMatchObject({
      quiet: true,
      options: {
        port: 2526,
        host: '0.0.0.0',
        rtt: 50,
        profile: 'ses',
        extensions: { pipelining: false, chunking: false, starttls: false },
        secure: true,
        users: { alice: 'secret', bob: 'pa:ss' },
        tokens: { 'carol@example.com': 'tok' },
        maxConnections: 20,
        maxMessagesPerConnection: 50,
        bandwidth: 100000,
        seed: 7,
        record: false,
      },
    });
  });

  it('defaults to port 1025 (as MailHog and Mailpit; 2525 is the relay) and leaves the rest to the profile', () => {
    const parsed = parseCli(['--profile', 'socketlabs']);
    expect(parsed).toEqual({ quiet: false, caFile: undefined, options: { port: 1025, profile: 'socketlabs', extensions: {}, inboxLimit: 100 } });
  });

  it('prints help, and usage on errors', async () => {
    const out = sink();
    expect(await runCli(['--help'], out, sink())).toBe(0);
    expect(out.text).toBe(USAGE);
    for (const bad of [['--rtt', 'fast'], ['--profile', 'gmail'], ['--user', 'nocolon'], ['--what']]) {
      const err = sink();
      expect(await runCli(bad, sink(), err), bad.join(' ')).toBe(2);
      expect(err.text).toContain('Usage:');
    }
  });

  it('serves, prints the URL and one line per message, writes the CA', async () => {
    const out = sink();
    const caFile = join(tmpdir(), `sluice-ca-${process.pid}.pem`);
    const server = await runCli(['--port', '0', '--rtt', '1', '--ca-file', caFile], out, sink());
    if (typeof server === 'number') throw new Error(`exit ${server}`);
    try {
      expect(out.text).toBe(`sluice-mock-server listening on smtp://127.0.0.1:${server.port} (rtt 1 ms)\n`);
      expect(await readFile(caFile, 'utf8')).toBe(server.ca);
      const transport = nodemailer.createTransport({ host: 'localhost', port: server.port, tls: { ca: server.ca } });
      await transport.sendMail({ from: 'a@example.com', to: ['b@example.com', 'c@example.com'], text: 'hi' });
      transport.close();
      await server.inbox.waitFor(1);
      expect(out.text.split('\n')[1]).toMatch(
        /^#1 [0-9A-F]{10} <a@example\.com> -> <b@example\.com> <c@example\.com> \d+ bytes via DATA, connection 1 \(TLS\)$/,
      );
    } finally {
      await server.close();
      await rm(caFile, { force: true });
    }
  });

  it('stays silent with --quiet', async () => {
    const out = sink();
    const server = await runCli(['--port', '0', '--quiet'], out, sink());
    if (typeof server === 'number') throw new Error(`exit ${server}`);
    await server.close();
    expect(out.text).toBe('');
  });
});
