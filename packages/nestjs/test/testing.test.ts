import 'reflect-metadata';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { describe, expect, it } from 'vitest';
import { HandlebarsAdapter } from '../src/handlebars.js';
import { getMailerToken, InjectMailer, MailerRegistry, MailerService, SluiceModule } from '../src/index.js';
import { SluiceTestingModule, TestMailer, TestMailerRegistry } from '../src/testing.js';

const dir = fileURLToPath(new URL('./templates', import.meta.url));
const template = () => ({
  dir,
  adapter: new HandlebarsAdapter({ partials: join(dir, 'partials'), helpers: { upper: (s: string) => String(s).toUpperCase() } }),
});

@Injectable()
class Signup {
  constructor(
    @InjectMailer() private readonly mailer: MailerService,
    @InjectMailer('billing') private readonly billing: MailerService,
  ) {}

  async register(email: string) {
    await this.mailer.sendMail({ from: 'Shop <hello@shop.test>', to: `New user <${email}>`, subject: 'Welcome', text: 'Hi!' });
    return this.billing.send({ envelope: { from: 'billing@shop.test', to: [email] }, body: 'Subject: Invoice\r\n\r\nDue.\r\n' });
  }
}

@Module({ providers: [Signup], exports: [Signup] })
class SignupModule {}

describe('SluiceTestingModule', () => {
  it('records messages per pool instead of sending them', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceTestingModule.forRoot(), SluiceTestingModule.forRoot({ name: 'billing' }), SignupModule],
    }).compile();
    const result = await moduleRef.get(Signup).register('ada@example.com');
    const main = moduleRef.get<TestMailer>(getMailerToken());
    const billing = moduleRef.get<TestMailer>(getMailerToken('billing'));
    expect(main).toBeInstanceOf(TestMailer);
    expect(main).not.toBe(billing);
    expect(main.sent).toHaveLength(1);
    expect(main.sent[0]!.mail).toMatchObject({ subject: 'Welcome', to: 'New user <ada@example.com>' });
    expect(main.sent[0]!.result).toMatchObject({ outcome: 'delivered', envelope: { from: 'hello@shop.test', to: ['ada@example.com'] } });
    expect(main.sent[0]!.result.messageId).toMatch(/^<.+@sluice\.test>$/);
    expect(billing.sent.map((s) => s.message?.envelope.to)).toEqual([['ada@example.com']]);
    expect(result.accepted.map((r) => r.address)).toEqual(['ada@example.com']);
    expect(main.stats.delivered).toBe(1);
    expect((await main.verify()).capabilities.pipelining).toBe(true);
    main.clear();
    expect(main.sent).toEqual([]);
    await moduleRef.close();
  });

  it('gives each application its own recorder', async () => {
    const definition = SluiceTestingModule.forRoot();
    const a = await Test.createTestingModule({ imports: [definition] }).compile();
    const b = await Test.createTestingModule({ imports: [definition] }).compile();
    await a.get(MailerService).sendMail({ from: 'a@x.test', to: ['b@x.test', { name: 'C', address: 'c@x.test' }], cc: 'd@x.test' });
    expect(a.get<TestMailer>(MailerService).sent[0]!.result.envelope.to).toEqual(['b@x.test', 'c@x.test', 'd@x.test']);
    expect(b.get<TestMailer>(MailerService).sent).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });

  it('parses addresses as nodemailer does: a quoted display name with a comma is one address', async () => {
    const recorder = new TestMailer();
    const { result } = await recorder
      .sendMail({ from: '"Shop, Inc." <hello@shop.test>', to: '"Doe, John" <john@x.test>, ada@x.test', bcc: ['<b@x.test>'], text: 'x' })
      .then(() => recorder.sent[0]!);
    expect(result.envelope).toEqual({ from: 'hello@shop.test', to: ['john@x.test', 'ada@x.test', 'b@x.test'] });
    expect(result.accepted.map((r) => r.address)).toEqual(['john@x.test', 'ada@x.test', 'b@x.test']);
    await recorder.sendMail({ from: 'a@x.test', to: 'ignored@x.test', envelope: { from: 'bounce@x.test', to: ['"Doe, John" <john@x.test>'] } });
    expect(recorder.sent[1]!.result.envelope).toEqual({ from: 'bounce@x.test', to: ['john@x.test'] });
  });

  it('can replace a real pool with overrideProvider', async () => {
    const recorder = new TestMailer();
    const moduleRef = await Test.createTestingModule({ imports: [SluiceModule.forRoot({ host: '127.0.0.1', port: 1 })] })
      .overrideProvider(MailerService)
      .useValue(recorder)
      .compile();
    await moduleRef.get(MailerService).sendMail({ from: 'a@x.test', to: 'b@x.test', subject: 'Hi' });
    expect(recorder.sent[0]!.mail?.subject).toBe('Hi');
    await moduleRef.close();
  });

  it('composes as the real mailer does: defaults merged, template and textTemplate rendered with the module adapter', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceTestingModule.forRoot({ defaults: { from: 'noreply@shop.test', headers: { 'X-App': 'shop' } }, template: template() })],
    }).compile();
    const mailer = moduleRef.get<TestMailer>(MailerService);
    const context = { name: 'Ada <admin>', plan: 'pro', team: 'The Team' };
    const result = await mailer.sendMail({
      to: 'ada@x.test',
      subject: 'Welcome',
      template: 'welcome',
      textTemplate: 'welcome-text',
      context,
      headers: { 'X-Id': '1' },
    });
    expect(result.envelope).toEqual({ from: 'noreply@shop.test', to: ['ada@x.test'] });
    const [recorded] = mailer.sent;
    expect(recorded!.mail).toMatchObject({ from: 'noreply@shop.test', headers: { 'X-App': 'shop', 'X-Id': '1' } });
    expect(recorded!.mail!.html).toBe('<h1>Welcome, Ada &lt;admin&gt;!</h1>\n<p>Your plan: pro</p>\n<footer>Sent by The Team</footer>\n');
    expect(String(recorded!.mail!.text).trim()).toBe('Welcome, Ada <admin> & friends!');
    expect(recorded!.request).toMatchObject({ template: 'welcome', context });
    // The same input errors as the real mailer: a template and html together, a missing template.
    await expect(mailer.sendMail({ to: 'a@x.test', template: 'welcome', html: '<p>x</p>' })).rejects.toMatchObject({ code: 'EMESSAGE' });
    await expect(mailer.sendMail({ to: 'a@x.test', template: 'nope' })).rejects.toMatchObject({ code: 'EOPTIONS' });
    expect(mailer.sent).toHaveLength(1);
    await moduleRef.close();
  });

  it('preview() renders a page (and a file) as MailerService.preview() does', async () => {
    const mailer = new TestMailer('default', { defaults: { from: 'noreply@shop.test' }, template: template() });
    const tmp = await mkdtemp(join(tmpdir(), 'sluice-test-preview-'));
    try {
      const file = join(tmp, 'welcome.html');
      const preview = await mailer.preview(
        { to: 'ada@x.test', subject: 'Hi', template: 'welcome', context: { name: 'Ada', plan: 'pro', team: 'T' } },
        { file },
      );
      expect(preview.mail).toMatchObject({ from: 'noreply@shop.test', to: 'ada@x.test' });
      expect(preview.html).toMatch(/^<!doctype html>/);
      expect(preview.html).toContain('<tr><th>From</th><td>noreply@shop.test</td></tr>');
      expect(preview.file).toBe(file);
      expect(await readFile(file, 'utf8')).toBe(preview.html);
      expect(mailer.sent).toEqual([]);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it('has a test registry under the registry token: tenants inherit defaults and templates, transporterName routes to them', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceTestingModule.forRoot({ defaults: { from: 'noreply@shop.test', replyTo: 'help@shop.test' }, template: template() })],
    }).compile();
    const registry = moduleRef.get<TestMailerRegistry>(MailerRegistry);
    expect(registry).toBeInstanceOf(TestMailerRegistry);
    const acme = registry.add('acme', { host: 'ignored.test', defaults: { from: 'acme@acme.test' } });
    expect(() => registry.add('acme', {})).toThrow(expect.objectContaining({ code: 'EOPTIONS' }));
    const root = moduleRef.get<TestMailer>(MailerService);
    await root.sendMail({ to: 'x@x.test', subject: 'via acme', template: 'orders/shipped', context: { id: 'a1', name: 'Bo' }, transporterName: 'acme' });
    expect(root.sent).toEqual([]);
    expect(acme.sent[0]!.mail).toMatchObject({ from: 'acme@acme.test', replyTo: 'help@shop.test', subject: 'via acme' });
    expect(acme.sent[0]!.mail!.html).toContain('<p>Order A1 shipped to Bo.</p>');
    expect(acme.sent[0]!.result.envelope.from).toBe('acme@acme.test');
    expect(registry.names()).toEqual(['acme']);
    expect(await registry.remove('acme')).toBe(true);
    expect(registry.has('acme')).toBe(false);
    await expect(root.sendMail({ to: 'x@x.test', transporterName: 'acme' })).rejects.toMatchObject({ code: 'EOPTIONS' });
    expect(await registry.remove('acme')).toBe(false);
    await moduleRef.close();
  });
});
