import 'reflect-metadata';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Test } from '@nestjs/testing';
import type { MockServer } from '@sluice/mock-server';
import { simpleParser } from 'mailparser';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HandlebarsAdapter } from '../src/handlebars.js';
import { MailerService, SluiceModule, type SluiceModuleOptions, type TemplateAdapter } from '../src/index.js';
import { startServer } from './helpers.js';

const dir = fileURLToPath(new URL('./templates', import.meta.url));
let server: MockServer;

beforeAll(async () => {
  server = await startServer();
});
afterAll(() => server.close());
afterEach(() => server.clear());

async function mailerWith(options: Omit<SluiceModuleOptions, 'host' | 'port'>) {
  const moduleRef = await Test.createTestingModule({
    imports: [SluiceModule.forRoot({ host: server.host, port: server.port, ...options } as SluiceModuleOptions)],
  }).compile();
  return { mailer: moduleRef.get(MailerService), close: () => moduleRef.close() };
}

async function received(i = 0) {
  const [message] = (await server.inbox.waitFor(i + 1)).slice(i);
  return simpleParser(message!.raw!);
}

const handlebars = () => new HandlebarsAdapter({ partials: join(dir, 'partials'), helpers: { upper: (s: string) => String(s).toUpperCase() } });

describe('templates', () => {
  it('renders template + context to the HTML body, with partials, and textTemplate to the text body unescaped', async () => {
    const { mailer, close } = await mailerWith({ template: { dir, adapter: handlebars() } });
    await mailer.sendMail({
      from: 'app@example.com',
      to: 'ada@example.com',
      subject: 'Welcome',
      template: 'welcome',
      textTemplate: 'welcome-text',
      context: { name: 'Ada <admin>', plan: 'pro', team: 'The Team' },
    });
    const parsed = await received();
    expect(parsed.subject).toBe('Welcome');
    expect(parsed.html).toContain('<h1>Welcome, Ada &lt;admin&gt;!</h1>');
    expect(parsed.html).toContain('<footer>Sent by The Team</footer>');
    expect(parsed.text?.trim()).toBe('Welcome, Ada <admin> & friends!');
    await close();
  });

  it('finds templates in subdirectories, with or without the extension, and uses helpers', async () => {
    const { mailer, close } = await mailerWith({ template: { dir, adapter: handlebars() } });
    await mailer.sendMail({ from: 'a@example.com', to: 'b@example.com', template: 'orders/shipped.hbs', context: { id: 'ab12', name: 'Bo' } });
    expect((await received()).html).toBe('<p>Order AB12 shipped to Bo.</p>\n');
    await close();
  });

  it('refuses, before anything is sent, a missing template and no template option (config), a name outside the directory and template with html (input)', async () => {
    const { mailer, close } = await mailerWith({ template: { dir, adapter: handlebars() } });
    const base = { from: 'a@example.com', to: 'b@example.com' };
    await expect(mailer.sendMail({ ...base, template: 'nope' })).rejects.toMatchObject({
      code: 'EOPTIONS',
      kind: 'config',
      message: expect.stringContaining('"nope" was not found'),
    });
    await expect(mailer.sendMail({ ...base, template: '../helpers' })).rejects.toMatchObject({
      code: 'EMESSAGE',
      kind: 'input',
      message: expect.stringContaining('outside the templates directory'),
    });
    await expect(mailer.sendMail({ ...base, template: 'welcome', html: '<p>x</p>' })).rejects.toMatchObject({ code: 'EMESSAGE' });
    await close();
    const bare = await mailerWith({});
    await expect(bare.mailer.sendMail({ ...base, template: 'welcome' })).rejects.toMatchObject({
      code: 'EOPTIONS',
      message: expect.stringContaining('no "template" option'),
    });
    await bare.close();
    expect(server.connections).toHaveLength(0);
  });

  it('reports a template that fails to render (strict mode, missing value) as EMESSAGE', async () => {
    const adapter = new HandlebarsAdapter({ compileOptions: { strict: true }, partials: join(dir, 'partials') });
    const { mailer, close } = await mailerWith({ template: { dir, adapter } });
    await expect(mailer.sendMail({ from: 'a@example.com', to: 'b@example.com', template: 'welcome', context: {} })).rejects.toMatchObject({
      code: 'EMESSAGE',
      message: expect.stringContaining('could not be rendered'),
    });
    await close();
  });

  it('takes any adapter that implements TemplateAdapter', async () => {
    const calls: unknown[] = [];
    const adapter: TemplateAdapter = {
      extension: '.tpl',
      render(request) {
        calls.push(request);
        return `<b>${String(request.context.word)}</b>`;
      },
    };
    const { mailer, close } = await mailerWith({ template: { dir, adapter } });
    await mailer.sendMail({ from: 'a@example.com', to: 'b@example.com', template: 'greeting', context: { word: 'hi' } });
    expect(String((await received()).html).trim()).toBe('<b>hi</b>');
    expect(calls).toEqual([{ name: 'greeting', file: join(dir, 'greeting.tpl'), context: { word: 'hi' }, kind: 'html' }]);
    await close();
  });

  it('delivers templated mails whose sendMail() came before the application closed', async () => {
    const { mailer, close } = await mailerWith({ template: { dir, adapter: handlebars() } });
    const sends = Array.from({ length: 10 }, (_, i) =>
      mailer.sendMail({ from: 'a@example.com', to: `r${i}@example.com`, template: 'orders/shipped', context: { id: `o${i}`, name: 'N' } }),
    );
    await close();
    expect((await Promise.allSettled(sends)).map((r) => r.status)).toEqual(Array(10).fill('fulfilled'));
    expect(server.inbox.messages).toHaveLength(10);
  });

  it('rereads templates with cache: false', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'sluice-hbs-'));
    try {
      await writeFile(join(tmp, 'note.hbs'), '<p>one {{n}}</p>');
      const { mailer, close } = await mailerWith({ template: { dir: tmp, adapter: new HandlebarsAdapter({ cache: false }) } });
      const send = () => mailer.sendMail({ from: 'a@example.com', to: 'b@example.com', template: 'note', context: { n: 1 } });
      await send();
      await writeFile(join(tmp, 'note.hbs'), '<p>two {{n}}</p>');
      await send();
      expect(String((await received(0)).html).trim()).toBe('<p>one 1</p>');
      expect(String((await received(1)).html).trim()).toBe('<p>two 1</p>');
      await close();
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

describe('defaults', () => {
  it('merges defaults under every mail: the mail wins, headers merge key by key', async () => {
    const { mailer, close } = await mailerWith({
      defaults: { from: '"No Reply" <noreply@example.com>', replyTo: 'support@example.com', headers: { 'X-App': 'demo', 'X-Tenant': 'none' } },
    });
    await mailer.sendMail({ to: 'ada@example.com', subject: 'One', text: 'x', headers: { 'X-Tenant': 'acme' } });
    await mailer.sendMail({ from: 'billing@example.com', to: 'bo@example.com', subject: 'Two', text: 'y', replyTo: undefined });
    const [one, two] = [await received(0), await received(1)];
    expect(one.from?.value).toEqual([{ name: 'No Reply', address: 'noreply@example.com' }]);
    expect(one.replyTo?.value).toEqual([{ name: '', address: 'support@example.com' }]);
    expect(one.headers.get('x-app')).toBe('demo');
    expect(one.headers.get('x-tenant')).toBe('acme');
    expect(server.inbox.messages[0]!.from).toBe('noreply@example.com');
    expect(two.from?.value).toEqual([{ name: '', address: 'billing@example.com' }]);
    expect(two.replyTo?.value).toEqual([{ name: '', address: 'support@example.com' }]);
    await close();
  });
});

describe('preview', () => {
  it('renders a mail to an HTML page (and a file) without sending it', async () => {
    const { mailer, close } = await mailerWith({ defaults: { from: 'noreply@example.com' }, template: { dir, adapter: handlebars() } });
    const tmp = await mkdtemp(join(tmpdir(), 'sluice-preview-'));
    try {
      const file = join(tmp, 'out', 'welcome.html');
      const preview = await mailer.preview(
        { to: 'ada@example.com', subject: 'Hi <Ada>', template: 'welcome', context: { name: 'Ada', plan: 'pro', team: 'T' } },
        { file },
      );
      expect(preview.mail).toMatchObject({ from: 'noreply@example.com', to: 'ada@example.com', subject: 'Hi <Ada>' });
      expect(preview.mail.html).toContain('<h1>Welcome, Ada!</h1>');
      expect(preview.html).toMatch(/^<!doctype html>/);
      expect(preview.html).toContain('<title>Hi &#60;Ada&#62;</title>');
      expect(preview.html).toContain('<tr><th>From</th><td>noreply@example.com</td></tr>');
      expect(preview.html).toContain('srcdoc="&#60;h1&#62;Welcome, Ada!&#60;/h1&#62;');
      expect(preview.file).toBe(file);
      expect(await readFile(file, 'utf8')).toBe(preview.html);
      expect(server.connections).toHaveLength(0);
    } finally {
      await rm(tmp, { recursive: true, force: true });
      await close();
    }
  });
});
