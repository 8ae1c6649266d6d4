import { describe, expect, it } from 'vitest';
import { createPool, preset } from '../src/index.js';

describe('provider presets', () => {
  it('fill the provider endpoint and its published limits', () => {
    expect(createPool({ preset: 'socketlabs' }).options).toMatchObject({
      maxConnections: 20,
      connection: { host: 'smtp.socketlabs.com', port: 2525, maxMessages: 50 },
    });
    expect(createPool({ preset: 'microsoft365' }).options).toMatchObject({
      maxConnections: 3,
      rateLimit: { messages: 30, per: 'minute' },
      connection: { host: 'smtp.office365.com', port: 587, requireTLS: true },
    });
    expect(createPool({ preset: 'ses', region: 'eu-west-1' }).options.connection).toMatchObject({ host: 'email-smtp.eu-west-1.amazonaws.com', requireTLS: true });
    expect(createPool({ preset: 'google-workspace-relay' }).options.maxRecipientsPerTransaction).toBe(100);
    expect(createPool({ preset: 'sendgrid' }).options.connection.maxMessages).toBe(5000);
    for (const name of ['mailgun', 'postmark'] as const) expect(preset(name).options.host).toMatch(/\./);
  });

  it('let explicit options win over the preset', () => {
    expect(createPool({ preset: 'socketlabs', maxConnections: 5, port: 587 }).options).toMatchObject({ maxConnections: 5, connection: { port: 587 } });
  });

  it('refuse an unknown preset or a malformed region', () => {
    expect(() => createPool({ preset: 'nope' as never })).toThrow(/Unknown preset/);
    expect(() => createPool({ preset: 'ses', region: 'x; rm -rf' })).toThrow(/region/);
  });

  it('default to 20 connections and 50 messages per connection (SocketLabs guidance)', () => {
    expect(createPool({ host: 'smtp.example.com' }).options).toMatchObject({ maxConnections: 20, connection: { maxMessages: 50, port: 587, secure: false } });
    expect(createPool({ host: 'smtp.example.com', port: 465 }).options.connection.secure).toBe(true);
  });
});
