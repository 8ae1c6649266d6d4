import { describe, expect, it } from 'vitest';
import type { SluiceError } from '../src/index.js';
import { message, pool, server } from './helpers.js';
import { httpConnectProxy, socks5Proxy } from './proxies.js';

// The pool is pointed at a name that does not resolve (RFC 6761 .test): a message can only arrive
// through the proxy, which opens every tunnel to the mock server.
const unreachable = { host: 'smtp.internal.test', port: 2525 };

describe('proxy', () => {
  it('sends through a SOCKS5 proxy: the proxy gets the name, the server gets the message', async () => {
    const s = await server();
    const proxy = await socks5Proxy(s);
    const p = pool(s, { ...unreachable, proxy: `socks5://127.0.0.1:${proxy.port}` });
    const result = await p.send(message(0));
    expect(result.outcome).toBe('delivered');
    expect(proxy.requests).toEqual(['smtp.internal.test:2525']);
    expect(s.inbox.messages.map((m) => m.to)).toEqual([['rcpt0@example.com']]);
    expect(s.connections).toHaveLength(1);
    expect(proxy.relayed).toBeGreaterThan(s.inbox.messages[0]!.size);
  });

  it('authenticates to a SOCKS5 proxy with the URL credentials, and names a refusal without the password', async () => {
    const s = await server();
    const proxy = await socks5Proxy(s, { user: 'relay', pass: 'proxy-secret' });
    const p = pool(s, { ...unreachable, proxy: `socks5://relay:proxy-secret@127.0.0.1:${proxy.port}` });
    await p.send(message(0));
    expect(s.inbox.messages).toHaveLength(1);

    const wrong = pool(s, { ...unreachable, proxy: `socks5://relay:wrong-secret@127.0.0.1:${proxy.port}`, retry: false });
    const err = (await wrong.send(message(1)).catch((e) => e)) as SluiceError;
    expect(err).toMatchObject({ code: 'ECONNECTION', command: 'CONNECT', permanent: true });
    expect(err.message).toContain(`socks5://127.0.0.1:${proxy.port}`);
    expect(err.message).not.toContain('wrong-secret');
    expect(s.inbox.messages).toHaveLength(1);
  });

  it('sends through an HTTP CONNECT proxy, with STARTTLS verified end to end against the mail server', async () => {
    const s = await server({ extensions: { starttls: true } });
    const proxy = await httpConnectProxy(s, { user: 'u', pass: 'p@ss' });
    const p = pool(s, { ...unreachable, proxy: `http://u:p%40ss@127.0.0.1:${proxy.port}`, requireTLS: true, tls: { ca: s.ca, servername: 'localhost' } });
    await p.send(message(0));
    expect(proxy.requests).toEqual(['smtp.internal.test:2525']);
    expect(s.inbox.messages[0]!.secure).toBe(true);
    expect(s.connections[0]!.byCommand.EHLO).toBe(2);
  });

  it('speaks implicit TLS through a SOCKS5 proxy', async () => {
    const s = await server({ secure: true });
    const proxy = await socks5Proxy(s);
    const p = pool(s, { ...unreachable, secure: true, proxy: `socks5://127.0.0.1:${proxy.port}`, tls: { ca: s.ca, servername: 'localhost' } });
    await p.send(message(0));
    expect(proxy.requests).toHaveLength(1);
    expect(s.inbox.messages[0]!.secure).toBe(true);
  });

  it('fails with ECONNECTION when the HTTP proxy refuses (407), permanently and without sending', async () => {
    const s = await server();
    const proxy = await httpConnectProxy(s, { user: 'u', pass: 'p' });
    const p = pool(s, { ...unreachable, proxy: `http://127.0.0.1:${proxy.port}`, retry: false });
    const err = (await p.send(message(0)).catch((e) => e)) as SluiceError;
    expect(err).toMatchObject({ code: 'ECONNECTION', command: 'CONNECT', permanent: true });
    expect(err.message).toMatch(/407/);
    expect(proxy.requests).toEqual([]);
    expect(s.connections).toHaveLength(0);
  });
});
