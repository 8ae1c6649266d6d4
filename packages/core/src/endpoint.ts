import { parseConnectionUrl } from 'nodemailer/lib/shared';
import wellKnown from 'nodemailer/lib/well-known';
import { ErrorCodes, SluiceError } from './errors.js';
import type { PoolOptions } from './options.js';
import { preset } from './presets.js';

/**
 * Where the server is, from one of three shorthands, lowest precedence first: a provider `preset`
 * (sluice's own, with the provider's published limits), a `service` from nodemailer's list of
 * well-known services (host, port and TLS mode only), or a connection `url`. Options given explicitly
 * win over all three. nodemailer's list and URL parser are used as they are, never copied, so a
 * service name or URL means exactly what it means in nodemailer.
 */
export function endpointDefaults(input: PoolOptions): Partial<PoolOptions> {
  const bad = (message: string) => new SluiceError(ErrorCodes.EOPTIONS, message, { permanent: true });
  if (input.preset !== undefined && input.service !== undefined) throw bad('Give preset or service, not both');
  let base: Partial<PoolOptions> = input.preset ? preset(input.preset, { region: input.region }).options : {};
  if (input.service !== undefined) {
    const known = typeof input.service === 'string' ? wellKnown(input.service) : false;
    if (!known) {
      throw bad(`Unknown service ${JSON.stringify(input.service)}: service must be a name, alias or domain in nodemailer's list of well-known services`);
    }
    base = {
      host: known.host,
      port: known.port === undefined ? undefined : Number(known.port),
      secure: known.secure,
      requireTLS: known.requireTLS,
      ignoreTLS: known.ignoreTLS,
      authMethod: known.authMethod?.toUpperCase() as PoolOptions['authMethod'],
    };
  }
  if (input.url !== undefined) {
    if (typeof input.url !== 'string' || !/^smtps?:\/\/[^/]/i.test(input.url)) {
      throw bad(`url must be an smtp:// or smtps:// URL such as "smtps://user:pass@smtp.example.com:465" (got ${JSON.stringify(input.url)})`);
    }
    const parsed = parseConnectionUrl(input.url) as Record<string, unknown>;
    const { host, port, secure, auth, tls } = parsed;
    base = { ...base, host: host as string, port: port as number | undefined, secure: secure as boolean, auth: auth as PoolOptions['auth'] };
    if (tls) base.tls = { ...base.tls, ...(tls as object) };
  }
  return base;
}
