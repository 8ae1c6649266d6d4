import { createPool, type Pool, type PoolOptions } from '@sluice/core';
import type { MailDefaults, MailerConfig } from './compose.js';
import type { MailQueueLike } from './mailer.js';
import type { TemplateOptions } from './template.js';

/** What to do when the SMTP server cannot be verified at startup. */
export type VerifyOnStart = 'fail' | 'warn' | false;

/** Pool options of @sluice/core. `name` is the module's pool name, so the EHLO name is `ehloName` here. */
export type SluicePoolOptions = Omit<PoolOptions, 'name'> & {
  /** The client name sent in EHLO/HELO (core's `name` option). Default: this host's name. */
  ehloName?: string;
  pool?: undefined;
};

export interface SluiceExistingPoolOptions {
  /** Use this pool instead of creating one. The module never closes it: whoever created it does. */
  pool: Pool;
}

/** One mailer: its pool (options, or an existing pool), plus what it adds to every mail. */
export type SluiceMailerOptions = (SluicePoolOptions | SluiceExistingPoolOptions) & {
  /** Merged under every mail's own options (`{ from: '"No Reply" <noreply@example.com>' }`). */
  defaults?: MailDefaults;
  /** Templates for `sendMail({ template, context })`: `{ dir, adapter }`. */
  template?: TemplateOptions;
};

/** `@sluice/queue`'s MailQueue options (its queue name as `name`), or a MailQueue you own. */
export type SluiceQueueOptions = MailQueueLike | ({ name: string; connection: unknown } & Record<string, unknown>);

export type SluiceModuleOptions = SluiceMailerOptions & {
  /** A durable queue for `MailerService.enqueue()` (needs `@sluice/queue`). One given as options is closed at shutdown. */
  queue?: SluiceQueueOptions;
  /** Verify the server (connect, EHLO, STARTTLS, AUTH) when the module initialises: 'fail' stops the app, 'warn' logs. Default false. */
  verifyOnStart?: VerifyOnStart;
};

export interface OpenedPool {
  pool: Pool;
  /** True when the pool was created here, so whoever opened it closes it. */
  owned: boolean;
  config: MailerConfig;
}

/** Creates the pool of a mailer (or takes the one given) and separates what the mailer adds to each mail. */
export function openPool(options: SluiceMailerOptions): OpenedPool {
  const { defaults, template, ...rest } = options;
  const config: MailerConfig = { defaults, template };
  if (rest.pool) return { pool: rest.pool, owned: false, config };
  const { ehloName, pool: _, ...poolOptions } = rest as SluicePoolOptions;
  return { pool: createPool(ehloName === undefined ? poolOptions : { ...poolOptions, name: ehloName }), owned: true, config };
}
