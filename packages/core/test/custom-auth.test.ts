import { SMTPServer } from 'smtp-server';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type CustomAuthContext, createPool, type Pool, type PoolOptions, type SluiceError } from '../src/index.js';

// smtp-server as the peer: it runs the SASL exchange of the mechanisms it knows, and answers 504 to an
// advertised one it has no code for. The custom handlers below speak to it line by line.

const b64 = (s: string) => Buffer.from(s).toString('base64');
const PASS = 'hunter2-secret';

async function start() {
  const received: Array<{ user: unknown }> = [];
  const logins: Array<{ method: string; username?: string }> = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authMethods: ['LOGIN', 'X-TOKEN'],
    logger: false,
    onAuth(auth, _session, callback) {
      logins.push({ method: auth.method, username: auth.username });
      if (auth.username === 'alice' && auth.password === PASS) return callback(null, { user: 'alice' });
      callback(new Error('Invalid username or password'));
    },
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => {
        received.push({ user: session.user });
        callback();
      });
    },
  });
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.server.address() as { port: number }).port, received, logins };
}

function pool(port: number, options: Partial<PoolOptions>): Pool {
  const p = createPool({ host: '127.0.0.1', port, name: 'client.sluice.test', allowInsecureAuth: true, retry: false, ...options });
  onTestFinished(() => p.destroy());
  return p;
}

const mail = { envelope: { from: 'a@example.com', to: ['b@example.com'] }, body: 'Subject: x\r\n\r\nx\r\n' };

/** LOGIN written by hand as a custom handler (RFC 4954 §4 exchange): what a user's own mechanism looks like. */
async function handLogin(ctx: CustomAuthContext) {
  const { user, pass } = ctx.auth.credentials;
  let reply = await ctx.sendCommand('AUTH LOGIN');
  if (reply.status !== 334) throw new Error(`AUTH LOGIN: ${reply.response}`);
  reply = await ctx.sendCommand(b64(user ?? ''));
  if (reply.status !== 334) throw new Error(`user: ${reply.response}`);
  reply = await ctx.sendCommand(b64(pass ?? ''));
  if (reply.status !== 235) throw new Error(`refused with ${pass}: ${reply.response}`);
}

describe('customAuth', () => {
  it('runs the handler named by authMethod against the server, with nodemailer’s context, and logs no secret', async () => {
    const { port, received, logins } = await start();
    const seen: Array<Pick<CustomAuthContext, 'method' | 'authMethods'> & { options: unknown; auth: boolean }> = [];
    const lines: string[] = [];
    const log = (m: string, meta?: Record<string, unknown>) => lines.push(`${m} ${JSON.stringify(meta ?? {})}`);
    const p = pool(port, {
      auth: { user: 'alice', pass: PASS, options: { realm: 'r1' } },
      authMethod: 'login',
      customAuth: {
        login: async (ctx) => {
          seen.push({ method: ctx.method, authMethods: ctx.authMethods, options: ctx.auth.credentials.options, auth: ctx.extensions.includes('AUTH') });
          await handLogin(ctx);
        },
      },
      logger: { debug: log, info: log, warn: log, error: log },
    });
    await p.send(mail);
    expect(seen).toEqual([{ method: 'LOGIN', authMethods: ['LOGIN', 'X-TOKEN'], options: { realm: 'r1' }, auth: true }]);
    expect(logins).toEqual([{ method: 'LOGIN', username: 'alice' }]);
    expect(received).toEqual([{ user: 'alice' }]);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(line).not.toContain(PASS);
      expect(line).not.toContain(b64(PASS));
    }
  });

  it('turns a refusal into EAUTH with the reply code, the password cut from the message', async () => {
    const { port, received } = await start();
    const p = pool(port, { auth: { user: 'alice', pass: 'wrong-password' }, authMethod: 'LOGIN', customAuth: { LOGIN: handLogin } });
    const err = (await p.send(mail).catch((e) => e)) as SluiceError;
    expect(err).toMatchObject({ code: 'EAUTH', command: 'AUTH', responseCode: 535 });
    expect(err.message).toMatch(/^Authentication failed \(LOGIN\): refused with \*\*\*/);
    expect(err.message).not.toContain('wrong-password');
    expect(received).toEqual([]);
  });

  it('reports a mechanism the server advertises but cannot run (504) as EAUTH', async () => {
    const { port, logins } = await start();
    const p = pool(port, {
      auth: { user: 'alice', pass: PASS },
      authMethod: 'X-TOKEN',
      customAuth: {
        'X-TOKEN': async (ctx) => {
          const reply = await ctx.sendCommand(`AUTH X-TOKEN ${b64(`${ctx.auth.user}:${ctx.auth.pass}`)}`);
          if (reply.status !== 235) throw new Error(reply.text);
        },
      },
    });
    const err = (await p.send(mail).catch((e) => e)) as SluiceError;
    expect(err).toMatchObject({ code: 'EAUTH', responseCode: 504 });
    expect(err.message).not.toContain(b64(`alice:${PASS}`));
    expect(logins).toEqual([]);
  });

  it('takes a callback-style handler (sendCommand with a callback, ctx.resolve / ctx.reject)', async () => {
    const { port, received } = await start();
    const p = pool(port, {
      auth: { user: 'alice', pass: PASS },
      authMethod: 'LOGIN',
      customAuth: {
        LOGIN: (ctx) => {
          ctx.sendCommand('AUTH LOGIN', () => {
            ctx.sendCommand(b64('alice'), () => {
              ctx.sendCommand(b64(PASS), (err, reply) => (err || reply?.status !== 235 ? ctx.reject(err ?? new Error('refused')) : ctx.resolve()));
            });
          });
        },
      },
    });
    await p.send(mail);
    expect(received).toEqual([{ user: 'alice' }]);
  });

  it('refuses an authMethod with no handler and no built-in mechanism, before connecting', () => {
    expect(() => createPool({ host: '127.0.0.1', auth: { user: 'a', pass: 'b' }, authMethod: 'X-NOPE', customAuth: { 'X-TOKEN': () => {} } })).toThrow(
      expect.objectContaining({ code: 'EOPTIONS', message: expect.stringMatching(/authMethod must be one of .*"X-TOKEN"/) }),
    );
  });
});
