import 'reflect-metadata';
import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { createPool } from '@sluice/core';
import type { MockServer } from '@sluice/mock-server';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getMailerRegistryToken, InjectMailerRegistry, MailerRegistry, MailerService, SluiceModule } from '../src/index.js';
import { mail, startServer } from './helpers.js';

let main: MockServer;
let acme: MockServer;
let globex: MockServer;

beforeAll(async () => {
  [main, acme, globex] = await Promise.all([startServer(), startServer(), startServer()]);
});
afterAll(() => Promise.all([main.close(), acme.close(), globex.close()]));

@Injectable()
class Tenants {
  constructor(@InjectMailerRegistry() readonly registry: MailerRegistry) {}
}

async function app() {
  const moduleRef = await Test.createTestingModule({
    imports: [SluiceModule.forRoot({ host: main.host, port: main.port, defaults: { from: 'noreply@example.com', headers: { 'X-App': 'demo' } } })],
    providers: [Tenants],
  }).compile();
  return moduleRef;
}

describe('MailerRegistry', () => {
  it('adds pools per tenant at runtime, inheriting defaults; sendMail({ transporterName }) routes to them', async () => {
    const moduleRef = await app();
    const registry = moduleRef.get(Tenants).registry;
    expect(moduleRef.get(MailerRegistry)).toBe(registry);
    const a = registry.add('acme', { host: acme.host, port: acme.port, defaults: { from: 'mail@acme.example' } });
    registry.add('globex', { host: globex.host, port: globex.port });
    expect(registry.names()).toEqual(['acme', 'globex']);
    expect(registry.get('acme')).toBe(a);
    expect(a.name).toBe('acme');

    const root = moduleRef.get(MailerService);
    await root.sendMail({ to: 'x@example.com', subject: 'via acme', text: 'a', transporterName: 'acme' });
    await registry.get('globex').sendMail({ to: 'y@example.com', subject: 'via globex', text: 'g' });
    await root.sendMail({ to: 'z@example.com', subject: 'main', text: 'm' });

    const [fromAcme] = await acme.inbox.waitFor(1);
    const parsedAcme = await simpleParser(fromAcme!.raw!);
    expect(fromAcme!.from).toBe('mail@acme.example');
    expect(parsedAcme.subject).toBe('via acme');
    expect(parsedAcme.headers.get('x-app')).toBe('demo');
    const [fromGlobex] = await globex.inbox.waitFor(1);
    expect(fromGlobex!.from).toBe('noreply@example.com');
    expect(main.inbox.messages.map((m) => m.to[0])).toEqual(['z@example.com']);
    await moduleRef.close();
  });

  it('remove() drains the removed pool, then forgets it; a name cannot be added twice', async () => {
    const moduleRef = await app();
    const registry = moduleRef.get(MailerRegistry);
    acme.configure({ rtt: 10 });
    try {
      const tenant = registry.add('acme', { host: acme.host, port: acme.port, maxConnections: 1 });
      expect(() => registry.add('acme', { host: acme.host, port: acme.port })).toThrow(expect.objectContaining({ code: 'EOPTIONS' }));
      acme.clear();
      const sends = Array.from({ length: 20 }, (_, i) => tenant.sendMail(mail(i)));
      const removed = registry.remove('acme');
      expect(registry.has('acme')).toBe(false);
      await expect(moduleRef.get(MailerService).sendMail({ ...mail(99), transporterName: 'acme' })).rejects.toMatchObject({ code: 'EOPTIONS' });
      expect(await removed).toBe(true);
      // Nothing awaited but remove(): every message was delivered, then the pool closed.
      expect(acme.inbox.messages).toHaveLength(20);
      expect(tenant.stats).toMatchObject({ delivered: 20, connections: 0 });
      expect((await Promise.allSettled(sends)).every((r) => r.status === 'fulfilled')).toBe(true);
      await expect(tenant.sendMail(mail(21))).rejects.toMatchObject({ code: 'ECLOSED' });
      expect(await registry.remove('acme')).toBe(false);
      // The name is free again.
      registry.add('acme', { host: acme.host, port: acme.port });
    } finally {
      acme.configure({ rtt: 0 });
      await moduleRef.close();
    }
  });

  it('closes every added pool at shutdown, but leaves a pool passed in to its owner', async () => {
    const moduleRef = await app();
    const registry = moduleRef.get(MailerRegistry);
    const owned = registry.add('acme', { host: acme.host, port: acme.port });
    const pool = createPool({ host: globex.host, port: globex.port });
    registry.add('shared', { pool });
    await moduleRef.close();
    await expect(owned.sendMail(mail(1))).rejects.toMatchObject({ code: 'ECLOSED' });
    expect((await pool.sendMail(mail(2))).outcome).toBe('delivered');
    await pool.close();
  });

  it('gives each named registration its own registry', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [SluiceModule.forRoot({ host: main.host, port: main.port }), SluiceModule.forRoot({ name: 'billing', host: main.host, port: main.port })],
    }).compile();
    const billing = moduleRef.get<MailerRegistry>(getMailerRegistryToken('billing'));
    expect(billing).not.toBe(moduleRef.get(MailerRegistry));
    expect(billing.name).toBe('billing');
    await moduleRef.close();
  });
});
