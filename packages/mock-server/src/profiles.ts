import type { MockServerOptions, ProfileName } from './types.js';

/**
 * Provider-like presets. Each one sets only what the provider is known for (see types.ts); explicit
 * options given to startMockServer() override them, `extensions` key by key.
 */
export const PROFILES: Readonly<Record<ProfileName, Readonly<MockServerOptions>>> = {
  default: {},

  // Amazon SES SMTP interface: no PIPELINING or CHUNKING, STARTTLS before anything that matters,
  // a per-account sending rate (14/s is the usual production quota) answered with SES's own 454 text,
  // 50 recipients per message, 10 MB messages.
  ses: {
    extensions: { pipelining: false, chunking: false, size: 10_485_760 },
    requireTLS: true,
    rateLimit: 14,
    maxRecipients: 50,
  },

  // SocketLabs Injection: 20 concurrent connections, 50 messages per connection.
  socketlabs: {
    maxConnections: 20,
    maxMessagesPerConnection: 50,
  },

  // Microsoft 365 SMTP AUTH client submission: 3 concurrent connections per mailbox, refused with the
  // STOREDRV "sender thread limit" error; CHUNKING not offered to submission clients; 35 MiB SIZE.
  m365: {
    extensions: { chunking: false, size: 37_748_736 },
    maxConnectionsPerUser: 3,
    connectionLimitReply: '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded',
  },

  // Postfix 3.x defaults (message_size_limit = 10240000, smtpd_recipient_limit = 1000).
  postfix: {
    extensions: {
      pipelining: true,
      chunking: true,
      size: 10_240_000,
      eightBitMime: true,
      smtpUtf8: true,
      dsn: true,
      enhancedStatusCodes: true,
    },
    maxRecipients: 1000,
  },
};

export const PROFILE_NAMES = Object.keys(PROFILES) as ProfileName[];
