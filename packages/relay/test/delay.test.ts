import { describe, expect, it } from 'vitest';
import { parseDsn } from './dsn.js';
import { legacySender, relayTo, upstream, waitUntil } from './helpers.js';

const deferrals = (metrics: string) => Number(/sluice_relay_messages_deferred_total (\d+)/.exec(metrics)![1]);

describe('delay warnings (RFC 3464 Action: delayed, Postfix delay_warning_time)', () => {
  it('sends one delay DSN per configured age to the sender, while the upstream keeps answering 4xx', async () => {
    // Every transaction from this sender is refused transiently; the relay's own DSNs (from <>) go through.
    const server = await upstream({ faults: [{ command: 'MAIL', sender: 'sender@example.com', reply: '451 4.3.0 Mail server temporarily rejected message' }] });
    const maxAge = 3_600_000;
    const { relay } = await relayTo(server, { delayWarning: [300, 900], maxAge, retryMin: 100, retryMax: 150 });
    const info = await legacySender(relay.port).sendMail({ from: 'sender@example.com', to: ['late@example.com'], subject: 'slow', text: 'x' });
    const acceptedAt = Date.now();
    const queueId = /queued as (\S+)/.exec(info.response)![1];

    const [first] = await server.inbox.waitFor(1, 10_000);
    const firstAt = Date.now();
    expect(first.from).toBe('');
    expect(first.to).toEqual(['sender@example.com']);
    expect(firstAt - acceptedAt).toBeGreaterThanOrEqual(300); // not before the configured age
    const dsn = await parseDsn(first.raw!);
    expect(dsn.mail.subject).toBe('Delayed Mail (still being retried)');
    expect(dsn.perMessage).toMatchObject({ 'Reporting-MTA': 'dns; relay.test', 'X-Sluice-Queue-ID': queueId });
    expect(dsn.recipients).toHaveLength(1);
    const r = dsn.recipients[0];
    expect(r).toMatchObject({ 'Final-Recipient': 'rfc822; late@example.com', Action: 'delayed', Status: '4.3.0', 'Remote-MTA': 'dns; 127.0.0.1' });
    expect(r['Diagnostic-Code']).toMatch(/^smtp; /);
    expect(r['Diagnostic-Code']).toContain('451 4.3.0 Mail server temporarily rejected message');
    // Will-Retry-Until: arrival + the maximum queue lifetime (to the second: RFC 5322 dates have no milliseconds).
    const until = Date.parse(r['Will-Retry-Until']);
    expect(Math.abs(until - (acceptedAt + maxAge))).toBeLessThan(2000);
    expect(Date.parse(dsn.perMessage['Arrival-Date'])).toBeLessThanOrEqual(acceptedAt);

    // The second age gives the second (and last) warning; further retries send none.
    await server.inbox.waitFor(2, 10_000);
    const after = deferrals(await relay.metrics());
    await waitUntil(async () => deferrals(await relay.metrics()) >= after + 4, 10_000, 'four more retries');
    const warnings = server.inbox.filter((m) => m.from === '');
    expect(warnings).toHaveLength(2);
    expect((await parseDsn(warnings[1].raw!)).recipients[0]).toMatchObject({ Action: 'delayed', 'Final-Recipient': 'rfc822; late@example.com' });
    expect(await relay.metrics()).toMatch(/sluice_relay_messages_delay_warned_total 2\n/);
    // The message itself is still queued, deferred.
    const status = await relay.status();
    expect(status.queue.depth).toBe(1);
  });

  it('sends none when NOTIFY leaves out DELAY (RFC 3461 §4.1)', async () => {
    const server = await upstream({ faults: [{ command: 'MAIL', sender: 'sender@example.com', reply: '451 4.3.0 Try later' }] });
    const { relay } = await relayTo(server, { delayWarning: 200, retryMin: 100, retryMax: 150 });
    await legacySender(relay.port).sendMail({
      envelope: { from: 'sender@example.com', to: ['late@example.com'] },
      dsn: { notify: ['FAILURE'] },
      raw: 'Subject: x\r\n\r\nx\r\n',
    } as Parameters<ReturnType<typeof legacySender>['sendMail']>[0]);
    const start = Date.now();
    await waitUntil(async () => deferrals(await relay.metrics()) >= 6 && Date.now() - start > 400, 10_000, 'retries past the age');
    expect(server.inbox.messages).toHaveLength(0);
  });
});
