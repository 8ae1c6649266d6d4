import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { startMockServer } from '@sluice/mock-server';
import { describe, expect, it } from 'vitest';
import { Spool } from '../src/spool.js';
import { legacySender, onCleanup, rawSmtp, relayTo, upstream, waitUntil } from './helpers.js';

const ls = async (dir: string) => (await readdir(dir)).sort();

describe('upstream down', () => {
  it('keeps messages spooled while the upstream is down and delivers them once it is back', async () => {
    const first = await upstream();
    const port = first.port;
    await first.close();
    const { relay, spoolDir, log } = await relayTo({ port }, { retryMin: 100, retryMax: 300 });
    const mail = legacySender(relay.port);
    for (let i = 0; i < 5; i++) await mail.sendMail({ from: 'a@example.com', to: `r${i}@example.com`, subject: `down ${i}`, text: 'x' });
    await waitUntil(() => log.records().some((r) => String(r.msg).startsWith('deferred')), 10_000, 'a deferral');
    expect(await new Spool(spoolDir).list('queue')).toHaveLength(5);
    const status = await relay.status();
    expect(status.queue.depth).toBe(5);
    expect(status.queue.oldestAgeSeconds).not.toBeNull();
    // The upstream comes back on the same port.
    const back = await startMockServer({ port, extensions: { starttls: false } });
    onCleanup(() => back.close());
    const got = await back.inbox.waitFor(5, 15_000);
    expect(got.map((m) => m.to[0]).sort()).toEqual(['r0@example.com', 'r1@example.com', 'r2@example.com', 'r3@example.com', 'r4@example.com']);
    await relay.idle(5000);
    expect(await ls(path.join(spoolDir, 'queue'))).toEqual([]);
    expect(await relay.metrics()).toMatch(/sluice_relay_messages_deferred_total [1-9]/);
  });

  it('gives up after the maximum age and bounces with status 4.4.7', async () => {
    const server = await upstream({ faults: [{ command: 'RCPT', recipient: 'slow@example.com', reply: '451 4.3.0 Try later' }] });
    const { relay } = await relayTo(server, { maxAge: 300, retryMin: 100, retryMax: 100 });
    const mail = legacySender(relay.port);
    await mail.sendMail({ from: 'sender@example.com', to: 'slow@example.com', subject: 'expiring', text: 'x' });
    const [bounce] = await server.inbox.waitFor(1, 10_000);
    expect(bounce.from).toBe('');
    expect(bounce.to).toEqual(['sender@example.com']);
    const text = bounce.raw!.toString();
    expect(text).toContain('Status: 4.4.7');
    expect(text).toContain('Final-Recipient: rfc822; slow@example.com');
    await relay.idle(5000);
    expect(await relay.metrics()).toMatch(/sluice_relay_messages_expired_total 1\n/);
  });
});

describe('permanent failures', () => {
  it('bounces to the sender with a delivery-status part (RFC 3464), from the null sender', async () => {
    const server = await upstream({ faults: [{ command: 'RCPT', recipient: 'gone@example.com', reply: '550 5.1.1 No such user' }] });
    const { relay } = await relayTo(server);
    const mail = legacySender(relay.port);
    await mail.sendMail({
      from: 'sender@example.com',
      to: ['ok@example.com', 'gone@example.com'],
      subject: 'Quarterly report',
      messageId: '<orig-1@example.com>',
      text: 'the body stays private',
    });
    const msgs = await server.inbox.waitFor(2, 10_000);
    const delivered = msgs.find((m) => m.from === 'sender@example.com')!;
    expect(delivered.to).toEqual(['ok@example.com']);
    const bounce = msgs.find((m) => m.from === '')!;
    expect(bounce.to).toEqual(['sender@example.com']);
    const text = bounce.raw!.toString();
    expect(text).toMatch(/^Content-Type: multipart\/report; report-type=delivery-status; boundary="([^"]+)"/m);
    expect(text).toContain('Content-Type: message/delivery-status');
    expect(text).toContain('Final-Recipient: rfc822; gone@example.com');
    expect(text).toContain('Action: failed');
    expect(text).toContain('Status: 5.1.1');
    expect(text).toContain('Diagnostic-Code: smtp; 550 5.1.1 No such user');
    expect(text).toContain('Content-Type: text/rfc822-headers');
    expect(text).toContain('Subject: Quarterly report');
    expect(text).toContain('Message-ID: <orig-1@example.com>');
    expect(text).not.toContain('the body stays private');
    expect(text).not.toContain('ok@example.com>: '); // only the failed recipient is reported
    await relay.idle(5000);
    expect(await relay.metrics()).toMatch(/sluice_relay_messages_bounced_total 1\n/);
  });

  it('moves the message to dead/ instead when so configured', async () => {
    const server = await upstream({ faults: [{ command: 'MAIL', reply: '554 5.7.1 Sender blocked' }] });
    const { relay, spoolDir } = await relayTo(server, { onPermanentFailure: 'dead-letter' });
    const mail = legacySender(relay.port);
    const info = await mail.sendMail({ from: 'blocked@example.com', to: 'x@example.com', subject: 'dead', text: 'x' });
    const id = /queued as (\S+)/.exec(info.response)![1];
    await relay.idle(5000);
    expect(await ls(path.join(spoolDir, 'dead'))).toEqual([`${id}.json`, `${id}.msg`]);
    const meta = JSON.parse(await readFile(path.join(spoolDir, 'dead', `${id}.json`), 'utf8'));
    expect(meta.failures[0]).toMatchObject({ address: 'x@example.com', status: '5.7.1' });
    expect(server.inbox.messages).toHaveLength(0); // no bounce
    expect((await relay.status()).dead).toBe(1);
  });

  it('never bounces a bounce: a failed message from the null sender goes to dead/', async () => {
    const server = await upstream({ faults: [{ command: 'RCPT', reply: '550 5.1.1 No such user' }] });
    const { relay, spoolDir, log } = await relayTo(server);
    const mail = legacySender(relay.port);
    await mail.sendMail({ envelope: { from: '', to: ['x@example.com'] }, raw: 'From: MAILER-DAEMON@example.com\r\nSubject: a bounce\r\n\r\nx\r\n' });
    await relay.idle(5000);
    expect((await ls(path.join(spoolDir, 'dead'))).filter((f) => f.endsWith('.msg'))).toHaveLength(1);
    expect(server.inbox.messages).toHaveLength(0);
    expect(log.text()).toContain('undeliverable bounce');
  });

  it('honours NOTIFY=NEVER: no bounce', async () => {
    const server = await upstream({ faults: [{ command: 'RCPT', recipient: 'gone@example.com', reply: '550 5.1.1 No such user' }] });
    const { relay } = await relayTo(server);
    const c = await rawSmtp(relay.port);
    expect(await c.cmd('EHLO app.example.com')).toContain('DSN');
    expect(await c.cmd('MAIL FROM:<sender@example.com>')).toMatch(/^250/);
    expect(await c.cmd('RCPT TO:<gone@example.com> NOTIFY=NEVER')).toMatch(/^250/);
    expect(await c.cmd('DATA')).toMatch(/^354/);
    expect(await c.cmd('Subject: s\r\n\r\nx\r\n.')).toMatch(/^250/);
    await c.cmd('QUIT');
    await waitUntil(async () => (await relay.status()).counters.delivered === 0 && (await relay.status()).queue.depth === 0, 5000, 'done');
    await relay.idle(5000);
    expect(server.inbox.messages).toHaveLength(0);
  });
});

describe('unknown outcome', () => {
  it('holds a message whose reply was lost after the content was sent, and releases it on request', async () => {
    const server = await upstream({
      faults: [
        { command: 'DOT', action: 'drop', times: 1 },
        { command: 'BDAT_LAST', action: 'drop', times: 1 },
      ],
    });
    const { relay, spoolDir } = await relayTo(server);
    const mail = legacySender(relay.port);
    const info = await mail.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'maybe', text: 'x' });
    const id = /queued as (\S+)/.exec(info.response)![1];
    await relay.idle(5000);
    expect(await ls(path.join(spoolDir, 'held'))).toEqual([`${id}.json`, `${id}.msg`]);
    const status = await relay.status();
    expect(status.held).toMatchObject([{ id, from: 'a@example.com', to: ['b@example.com'] }]);
    expect(await relay.metrics()).toMatch(/sluice_relay_held_messages 1\n/);
    expect(server.inbox.messages).toHaveLength(0);
    // The operator checked: not delivered. Release it.
    const token = (await readFile(path.join(spoolDir, 'http-token'), 'utf8')).trim(); // generated by the relay, mode 0600
    const res = await fetch(`http://127.0.0.1:${relay.httpPort}/release?id=${id}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(await res.json()).toEqual({ released: [id] });
    await server.inbox.waitFor(1, 10_000);
    await relay.idle(5000);
    expect(await ls(path.join(spoolDir, 'held'))).toEqual([]);
  });
});
