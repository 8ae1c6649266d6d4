import { readFileSync } from 'node:fs';
import type tls from 'node:tls';
import type { Pool, PoolOptions } from '@sluice/core';

export type Env = Record<string, string | undefined>;

const TRUE = /^(1|true|yes)$/i;

/**
 * TLS options from SMTP_TLS_CA (the path of a PEM file with the CA that signed the server's
 * certificate: a private CA, or the mock server's self-signed certificate) and SMTP_TLS_INSECURE
 * (`true`: do not verify the certificate at all; for development only, and said so in the log).
 */
export function tlsFromEnv(env: Env, warn: (line: string) => void = console.warn): tls.ConnectionOptions | undefined {
  const options: tls.ConnectionOptions = {};
  if (env.SMTP_TLS_CA) {
    try {
      options.ca = readFileSync(env.SMTP_TLS_CA);
    } catch (err) {
      throw new Error(`SMTP_TLS_CA: cannot read the CA file ${env.SMTP_TLS_CA}: ${(err as Error).message}`);
    }
  }
  if (TRUE.test(env.SMTP_TLS_INSECURE ?? '')) {
    options.rejectUnauthorized = false;
    warn("SMTP_TLS_INSECURE is set: the SMTP server's certificate is NOT verified. For development only.");
  }
  return Object.keys(options).length > 0 ? options : undefined;
}

/**
 * Pool options from SMTP_HOST, SMTP_PORT (default 587, or 465 with SMTP_SECURE), SMTP_SECURE,
 * SMTP_USER, SMTP_PASS, SMTP_TLS_CA and SMTP_TLS_INSECURE; null when SMTP_HOST is not set.
 */
export function smtpFromEnv(env: Env, warn: (line: string) => void = console.warn): PoolOptions | null {
  if (!env.SMTP_HOST) return null;
  const secure = TRUE.test(env.SMTP_SECURE ?? '');
  const options: PoolOptions = { host: env.SMTP_HOST, port: Number(env.SMTP_PORT || (secure ? 465 : 587)), secure };
  if (env.SMTP_USER) options.auth = { user: env.SMTP_USER, pass: env.SMTP_PASS ?? '' };
  const tlsOptions = tlsFromEnv(env, warn);
  if (tlsOptions) options.tls = tlsOptions;
  return options;
}

/** Logs every message that ends rejected, failed or unknown, with its code (never its recipients or content). */
export function logSendFailures(pool: Pool, log: (line: string) => void = console.warn): void {
  pool.on('send-error', (err) => {
    const reply = err.responseCode ? `, ${err.command ?? ''} ${err.responseCode}${err.enhancedCode ? ` ${err.enhancedCode}` : ''}` : '';
    const id = err.messageId ? ` ${err.messageId}` : '';
    log(`Mail${id} not sent: ${err.code} (${err.kind}, outcome ${err.outcome ?? 'failed'}${reply}): ${err.message}`);
  });
}
