import { generateKeyPairSync } from 'node:crypto';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { simpleParser } from 'mailparser';
import SMTPTransport from 'nodemailer/lib/smtp-transport';
import { describe, expect, it } from 'vitest';
import { createPool } from '../src/index.js';
import { pool, server } from './helpers.js';

const key = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
const dkim = { domainName: 'example.com', keySelector: 'pool', privateKey: key.privateKey };
/** The DNS a verifier asks: the selector's TXT record (RFC 6376 §3.6.2). */
const resolver = async (name: string, type: string) => {
  const p = key.publicKey.replace(/-----[^-]+-----|\s/g, '');
  if (type === 'TXT' && /^(pool|own)\._domainkey\.example\.com$/.test(name)) return [[`v=DKIM1; k=rsa; p=${p}`]];
  throw Object.assign(new Error(`no ${type} for ${name}`), { code: 'ENOTFOUND' });
};
const PIXEL = 'data:image/gif;base64,R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==';

describe("sendMail(): nodemailer's defaults, dkim and attachDataUrls", () => {
  it('pool-wide dkim signs every mail, and the signature verifies on the received message', async () => {
    const s = await server();
    const p = pool(s, { dkim });
    await p.sendMail({ from: 'a@example.com', to: 'b@example.com', subject: 'Signed', text: 'hello' });
    const [m] = await s.inbox.waitFor(1);
    const verified = await dkimVerify(m!.raw!, { resolver });
    expect(verified.results.map((r) => [r.selector, r.status.result])).toEqual([['pool', 'pass']]);
  });

  it("a mail's own dkim is used (and wins over the pool's)", async () => {
    const s = await server();
    const p = pool(s, { dkim });
    await p.sendMail({ from: 'a@example.com', to: 'b@example.com', text: 'x', dkim: { ...dkim, keySelector: 'own' } });
    const verified = await dkimVerify((await s.inbox.waitFor(1))[0]!.raw!, { resolver });
    expect(verified.results.map((r) => [r.selector, r.status.result])).toEqual([['own', 'pass']]);
  });

  it('defaults are merged under every mail; the mail wins', async () => {
    const s = await server();
    const p = pool(s, { defaults: { from: 'noreply@example.com', replyTo: 'help@example.com', headers: { 'X-App': 'billing' } } });
    await p.sendMail({ to: 'b@example.com', subject: 'One', text: 'x' });
    await p.sendMail({ from: 'ceo@example.com', to: 'c@example.com', subject: 'Two', text: 'y' });
    const [one, two] = await s.inbox.waitFor(2);
    expect(one!.from).toBe('noreply@example.com');
    const parsed = await simpleParser(one!.raw!);
    expect(parsed.replyTo?.value[0]?.address).toBe('help@example.com');
    expect(parsed.headers.get('x-app')).toBe('billing');
    expect(two!.from).toBe('ceo@example.com');
  });

  it('Bcc recipients are in the envelope and in no header (RFC 5322 §3.6.3)', async () => {
    const s = await server();
    const p = pool(s, { dkim });
    await p.sendMail({ from: 'a@example.com', to: 'b@example.com', bcc: ['hidden@example.com'], text: 'x' });
    const [m] = await s.inbox.waitFor(1);
    expect(m!.to.sort()).toEqual(['b@example.com', 'hidden@example.com']);
    const parsed = await simpleParser(m!.raw!);
    expect(parsed.headers.has('bcc')).toBe(false);
    expect(m!.raw!.toString('latin1').toLowerCase()).not.toContain('hidden@example.com');
  });

  it('attachDataUrls turns a data: image into an embedded attachment (cid:)', async () => {
    const s = await server();
    const p = pool(s, { attachDataUrls: true });
    await p.sendMail({ from: 'a@example.com', to: 'b@example.com', html: `<p><img src="${PIXEL}"></p>` });
    // keepCidLinks: mailparser would otherwise put the data: URL back into the html it returns.
    const parsed = await simpleParser((await s.inbox.waitFor(1))[0]!.raw!, { keepCidLinks: true });
    const [image] = parsed.attachments;
    expect(parsed.attachments).toHaveLength(1);
    expect(image!.contentType).toBe('image/gif');
    expect(String(parsed.html)).toBe(`<p><img src="cid:${image!.cid}"></p>`);
  });
});

describe('where the server is: service and url, with nodemailer meaning', () => {
  it.each(['Gmail', 'Google Mail', 'user@googlemail.com', 'SES-US-EAST-1', 'Outlook365', 'SendGrid'])('service %j is what nodemailer would use', (service) => {
    const theirs = new SMTPTransport({ service, auth: { user: 'u', pass: 'p' } }).options as { host: string; port: number; secure?: boolean };
    const ours = createPool({ service }).options.connection;
    expect({ host: ours.host, port: ours.port }).toEqual({ host: theirs.host, port: Number(theirs.port) });
    expect(ours.secure).toBe(theirs.secure ?? Number(theirs.port) === 465);
  });

  it('a url gives host, port, TLS mode, credentials and tls settings; explicit options win', () => {
    const c = createPool({ url: 'smtps://alice:s%40cret@smtp.example.com:2465?tls.minVersion=TLSv1.3', tls: { servername: 'mx.example.com' } }).options.connection;
    expect(c).toMatchObject({ host: 'smtp.example.com', port: 2465, secure: true, auth: { user: 'alice', pass: 's@cret' } });
    expect(c.tls).toEqual({ minVersion: 'TLSv1.3', servername: 'mx.example.com' });
    expect(createPool({ url: 'smtp://smtp.example.com', port: 2525 }).options.connection).toMatchObject({ port: 2525, secure: false });
  });

  it('a url reaches a real server and authenticates with its credentials', async () => {
    const s = await server({ users: { alice: 'secret' }, extensions: { starttls: true } });
    const p = pool(s, { host: undefined, port: undefined, url: `smtp://alice:secret@${s.host}:${s.port}` });
    await p.send({ envelope: { from: 'a@example.com', to: ['b@example.com'] }, body: 'Subject: x\r\n\r\nx\r\n' });
    expect((await s.inbox.waitFor(1))[0]!.user).toBe('alice');
  });

  it('refuses preset and service together', () => {
    expect(() => createPool({ preset: 'socketlabs', service: 'Gmail' })).toThrow(expect.objectContaining({ code: 'EOPTIONS', message: 'Give preset or service, not both' }));
  });
});

describe("an option spelt another library's way names sluice's spelling", () => {
  it.each([
    ['maxMessages', /Unknown option "maxMessages": sluice calls it maxMessagesPerConnection/],
    ['connectionTimeout', /sluice calls it timeouts\.connect/],
    ['rateDelta', /sluice calls it rateLimit: \{ messages, per \}/],
    ['pool', /sluice always pools/],
    ['somethingElse', /^Unknown option "somethingElse"$/],
  ])('%s', (key, message) => {
    expect(() => createPool({ host: 'smtp.example.com', [key]: 1 } as never)).toThrow(expect.objectContaining({ code: 'EOPTIONS', message: expect.stringMatching(message) }));
  });
});
