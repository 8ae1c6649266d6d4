import { ErrorCodes, SluiceError } from './errors.js';
import type { PoolOptions } from './options.js';

/**
 * Providers' published endpoints and limits (see the table in the repository's docs/protocol notes).
 * A preset only fills defaults: anything you pass yourself wins.
 */
export const PRESET_NAMES = ['socketlabs', 'ses', 'microsoft365', 'google-workspace-relay', 'sendgrid', 'mailgun', 'postmark'] as const;

export type PresetName = (typeof PRESET_NAMES)[number];

const bad = (message: string) => new SluiceError(ErrorCodes.EOPTIONS, message, { permanent: true });

export interface PresetInfo {
  options: Partial<PoolOptions>;
  /** What the limits are and where they come from. */
  notes: string;
}

export function preset(name: PresetName, extra: { region?: string } = {}): PresetInfo {
  switch (name) {
    case 'socketlabs':
      return {
        // Port 2525 because many networks block 25; SocketLabs offers STARTTLS on it.
        options: { host: 'smtp.socketlabs.com', port: 2525, maxConnections: 20, maxMessagesPerConnection: 50 },
        notes: 'SocketLabs: up to 20 simultaneous connections per account, at most 50 messages per connection, PIPELINING recommended.',
      };
    case 'ses': {
      const region = extra.region ?? 'us-east-1';
      if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw bad(`Invalid AWS region ${JSON.stringify(region)}: region must look like "us-east-1"`);
      return {
        options: { host: `email-smtp.${region}.amazonaws.com`, port: 587, requireTLS: true, maxConnections: 20, maxMessagesPerConnection: 100 },
        notes:
          'Amazon SES: no PIPELINING and no CHUNKING offered (lock-step), TLS required; the send rate is per account ("454 Throttling failure"): set rateLimit to your quota.',
      };
    }
    case 'microsoft365':
      return {
        options: { host: 'smtp.office365.com', port: 587, requireTLS: true, maxConnections: 3, rateLimit: { messages: 30, per: 'minute' } },
        notes: 'Microsoft 365 SMTP AUTH: 3 concurrent connections per mailbox ("432 4.3.2" beyond), 30 messages per minute.',
      };
    case 'google-workspace-relay':
      return {
        options: { host: 'smtp-relay.gmail.com', port: 587, requireTLS: true, maxRecipientsPerTransaction: 100 },
        notes: 'Google Workspace SMTP relay: at most 100 recipients per transaction; "450 4.2.1" when a peak limit is hit.',
      };
    case 'sendgrid':
      return {
        options: { host: 'smtp.sendgrid.net', port: 587, requireTLS: true, maxMessagesPerConnection: 5000 },
        notes: 'SendGrid: many connections allowed, up to 5,000 messages per connection.',
      };
    case 'mailgun':
      return {
        options: { host: 'smtp.mailgun.org', port: 587, requireTLS: true },
        notes: 'Mailgun: advertises PIPELINING, SMTPUTF8 and SIZE.',
      };
    case 'postmark':
      return {
        options: { host: 'smtp.postmarkapp.com', port: 587, requireTLS: true },
        notes: 'Postmark: STARTTLS on 587 (also 25 and 2525).',
      };
    default:
      throw bad(`Unknown preset ${JSON.stringify(name)}: preset must be one of ${PRESET_NAMES.join(', ')}`);
  }
}
