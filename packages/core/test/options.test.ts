import { describe, expect, it } from 'vitest';
import { OPTION_NAMES } from '../src/options.js';
import { PRESET_NAMES, type PoolOptions, SluiceError, createPool } from '../src/index.js';

/** One bad value per option, and what the message must say: the option's name and what it accepts. */
const BAD: Record<(typeof OPTION_NAMES)[number], Array<[value: unknown, message: RegExp]>> = {
  preset: [['nope', /Unknown preset "nope": preset must be one of "socketlabs", "ses"/]],
  region: [[42, /region must be an AWS region/]],
  host: [
    ['', /host is required/],
    ['smtp example.com', /host .*without spaces/],
  ],
  port: [
    [0, /port must be an integer from 1 to 65535/],
    [70000, /port must be an integer from 1 to 65535/],
  ],
  secure: [['yes', /secure must be true or false/]],
  tls: [['strict', /tls must be an object/]],
  tlsResumption: [['off', /tlsResumption must be true or false/]],
  requireTLS: [[1, /requireTLS must be true or false/]],
  ignoreTLS: [['no', /ignoreTLS must be true or false/]],
  allowInsecureAuth: [['true', /allowInsecureAuth must be true or false/]],
  auth: [
    ['user:pass', /auth must be \{ user, pass \}/],
    [{ user: '' }, /auth.user must be a non-empty string/],
  ],
  authMethod: [['NTLM', /authMethod must be one of "PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"/]],
  customAuth: [
    [() => {}, /customAuth must be an object of \{ MECHANISM: handler \}/],
    [{ MYMECH: 'x' }, /customAuth.MYMECH must be a function/],
    [{ 'MY MECH': () => {} }, /customAuth key "MY MECH" is not a SASL mechanism name/],
  ],
  opportunisticTLS: [['yes', /opportunisticTLS must be true or false/]],
  lmtp: [[1, /lmtp must be true or false/]],
  proxy: [
    [1080, /proxy must be a URL string/],
    ['not a url', /proxy is not a valid URL/],
    ['https://proxy.test:443', /proxy protocol "https:" is not supported/],
  ],
  name: [
    ['my host', /name must be a domain or an address literal/],
    [7, /name must be a host name/],
  ],
  localAddress: [['not-an-ip', /localAddress must be an IP address/]],
  maxConnections: [[0, /maxConnections must be a positive integer \(got 0\)/]],
  maxMessagesPerConnection: [[1.5, /maxMessagesPerConnection must be a positive integer/]],
  maxRecipientsPerTransaction: [[-1, /maxRecipientsPerTransaction must be a positive integer/]],
  pipelining: [['off', /pipelining must be true or false/]],
  chunking: [
    ['on', /chunking must be true, false or \{ window, chunkSize \}/],
    [{ window: 0 }, /chunking.window must be a positive integer/],
    [{ size: 1 }, /Unknown option chunking.size: chunking takes "window", "chunkSize"/],
  ],
  timeouts: [
    [{ greeting: -1 }, /timeouts.greeting must be a positive integer/],
    [{ greting: 5 }, /Unknown option timeouts.greting: timeouts takes "connect", "greeting"/],
    [30, /timeouts must be an object/],
  ],
  retry: [
    [{ retries: -1 }, /retry.retries must be a non-negative integer/],
    [{ jitter: 2 }, /retry.jitter must be a number from 0 to 1/],
    [{ factor: 0.5 }, /retry.factor must be a number >= 1/],
    [{ minDelay: 100, maxDelay: 10 }, /retry.maxDelay \(10\) must be at least retry.minDelay \(100\)/],
    [true, /retry must be an object/],
  ],
  retryUnknown: [['sometimes', /retryUnknown must be true or false/]],
  rateLimit: [
    [{ messages: 0, per: 'second' }, /rateLimit.messages must be a positive number/],
    [{ messages: 10, per: 'day' }, /rateLimit.per must be a positive number of ms or one of "second", "minute", "hour"/],
    [{ messages: 10, per: 1000, burst: 0 }, /rateLimit.burst must be a positive integer/],
    [10, /rateLimit must be an object with "messages", "per", "burst"/],
  ],
  highWaterMark: [[0, /highWaterMark must be a positive integer/]],
  maxQueued: [[-5, /maxQueued must be a positive integer/]],
  concurrencyProbeInterval: [
    [-5, /concurrencyProbeInterval \(ms\) must be a non-negative integer \(got -5\)/],
    [Number.NaN, /concurrencyProbeInterval \(ms\) must be a non-negative integer/],
  ],
  replyLimits: [
    [{ maxLineLength: 0 }, /replyLimits.maxLineLength must be a positive integer/],
    [{ maxLines: 5 }, /Unknown option replyLimits.maxLines: replyLimits takes "maxLineLength", "maxReplySize"/],
  ],
  logger: [
    ['console', /logger must be an object with optional "debug", "info", "warn", "error" methods/],
    [{ info: 'yes' }, /logger.info must be a function/],
  ],
  service: [
    ['No Such Mail Provider', /Unknown service "No Such Mail Provider": service must be a name, alias or domain in nodemailer's list/],
    [42, /Unknown service 42/],
  ],
  url: [
    ['http://smtp.example.com', /url must be an smtp:\/\/ or smtps:\/\/ URL/],
    [7, /url must be an smtp:\/\/ or smtps:\/\/ URL/],
  ],
  defaults: [['from me', /defaults must be an object of message options/]],
  dkim: [
    [{ domainName: 'example.com' }, /dkim must be nodemailer DKIM options: \{ domainName, keySelector, privateKey \}/],
    ['key.pem', /dkim must be nodemailer DKIM options/],
  ],
  attachDataUrls: [['yes', /attachDataUrls must be true or false/]],
  connectionGate: [[{ take: () => null }, /connectionGate must be an object with an acquire\(signal\) method/]],
};

const cases = Object.entries(BAD).flatMap(([option, values]) => values.map(([value, message]) => ({ option, value, message })));

describe('every option is checked: a bad value is EOPTIONS naming the option and what it accepts', () => {
  it('covers every option createPool() takes', () => {
    expect(Object.keys(BAD).sort()).toEqual([...OPTION_NAMES].sort());
  });

  it.each(cases)('$option: $value', ({ option, value, message }) => {
    const options = { host: 'smtp.example.com', [option]: value } as PoolOptions;
    if (option === 'region') options.preset = 'ses';
    if (option === 'host') delete (options as { preset?: string }).preset;
    let thrown: unknown;
    try {
      createPool(options);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SluiceError);
    expect(thrown).toMatchObject({ code: 'EOPTIONS', kind: 'config', permanent: true });
    expect((thrown as Error).message).toMatch(message);
  });

  it('accepts every preset name it lists, and a zero probe interval', () => {
    for (const name of PRESET_NAMES) expect(createPool({ preset: name }).options.connection.host).toMatch(/\./);
    expect(createPool({ host: 'smtp.example.com', concurrencyProbeInterval: 0 }).options.concurrencyProbeInterval).toBe(0);
  });

  it('refuses a malformed AWS region with EOPTIONS', () => {
    expect(() => createPool({ preset: 'ses', region: 'x; rm -rf' })).toThrow(
      expect.objectContaining({ code: 'EOPTIONS', message: expect.stringMatching(/region/) }),
    );
  });
});
