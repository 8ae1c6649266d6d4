import { ConfigurableModuleBuilder, Logger, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { type Pool, type PoolOptions, type SluiceError, createPool } from '@sluice/core';
import { DEFAULT_MAILER_NAME, type MailQueueLike, MailerService, getMailerToken } from './mailer.js';

/** `@sluice/queue`'s MailQueue options (its queue name as `name`), or a MailQueue you own. */
export type SluiceQueueOptions = MailQueueLike | ({ name: string; connection: unknown } & Record<string, unknown>);

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

export type SluiceModuleOptions = (SluicePoolOptions | SluiceExistingPoolOptions) & {
  /** A durable queue for `MailerService.enqueue()` (needs `@sluice/queue`). One given as options is closed at shutdown. */
  queue?: SluiceQueueOptions;
  /** Verify the server (connect, EHLO, STARTTLS, AUTH) when the module initialises: 'fail' stops the app, 'warn' logs. Default false. */
  verifyOnStart?: VerifyOnStart;
};

export interface SluiceModuleExtras {
  /** Register the module globally. Default false. */
  isGlobal?: boolean;
  /** The pool's name, for several pools: inject its mailer with `@InjectMailer(name)`. Default 'default'. */
  name?: string;
}

/** Owns one pool's lifecycle: verification at startup and draining at shutdown. Internal. */
class SluicePoolLifecycle implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('SluiceModule');

  constructor(
    readonly pool: Pool,
    private readonly owned: boolean,
    private readonly verifyOnStart: VerifyOnStart,
    private readonly name: string,
    readonly queue: MailQueueLike | undefined = undefined,
    private readonly ownsQueue = false,
  ) {}

  async onModuleInit(): Promise<void> {
    if (!this.verifyOnStart) return;
    const { host, port } = this.pool.options.connection;
    const where = `SMTP server ${host}:${port} (pool "${this.name}")`;
    try {
      const { encrypted, authenticated } = await this.pool.verify();
      this.logger.log(`${where} verified${encrypted ? ', TLS' : ''}${authenticated ? ', authenticated' : ''}`);
    } catch (err) {
      const { code = 'ERROR', message } = err as SluiceError;
      if (this.verifyOnStart === 'fail') {
        this.logger.error(`${where} could not be verified (${code}): ${message}`);
        throw err;
      }
      this.logger.warn(`${where} could not be verified (${code}): ${message}`);
    }
  }

  /** Waits for every queued and in-flight message, then QUITs (only a pool this module created). */
  async onApplicationShutdown(): Promise<void> {
    if (this.ownsQueue) await this.queue?.close?.();
    if (!this.owned) return;
    const { queued, inFlight } = this.pool.stats;
    if (queued + inFlight > 0) this.logger.log(`Pool "${this.name}": delivering ${queued + inFlight} messages before closing`);
    await this.pool.close();
  }
}

async function createLifecycle(options: SluiceModuleOptions, name: string): Promise<SluicePoolLifecycle> {
  const { verifyOnStart = false, queue: queueOptions, ...rest } = options;
  const queue = await createQueue(queueOptions);
  const ownsQueue = queue !== undefined && queue !== queueOptions;
  if (rest.pool) return new SluicePoolLifecycle(rest.pool, false, verifyOnStart, name, queue, ownsQueue);
  const { ehloName, pool: _, ...poolOptions } = rest as SluicePoolOptions;
  const pool = createPool(ehloName === undefined ? poolOptions : { ...poolOptions, name: ehloName });
  return new SluicePoolLifecycle(pool, true, verifyOnStart, name, queue, ownsQueue);
}

/** A MailQueue given is used as is; options create one (`@sluice/queue` is an optional peer, loaded only then). */
async function createQueue(options: SluiceQueueOptions | undefined): Promise<MailQueueLike | undefined> {
  if (options === undefined || typeof (options as MailQueueLike).addMail === 'function') return options as MailQueueLike | undefined;
  const { name, ...queueOptions } = options as { name: string; connection: never };
  const { MailQueue } = await import('@sluice/queue');
  return new MailQueue(name, queueOptions);
}

// Both tokens are local to each registration (never exported), so several pools do not collide.
const OPTIONS = Symbol('SluiceModuleOptions');
const LIFECYCLE = Symbol('SluicePoolLifecycle');

export const { ConfigurableModuleClass, OPTIONS_TYPE, ASYNC_OPTIONS_TYPE } = new ConfigurableModuleBuilder<SluiceModuleOptions>({
  optionsInjectionToken: OPTIONS,
})
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createSluiceOptions')
  .setExtras<SluiceModuleExtras>({ isGlobal: false, name: undefined }, (definition, { isGlobal, name = DEFAULT_MAILER_NAME }) => {
    const token = getMailerToken(name);
    return {
      ...definition,
      global: isGlobal,
      providers: [
        ...(definition.providers ?? []),
        { provide: LIFECYCLE, useFactory: (options: SluiceModuleOptions) => createLifecycle(options, name), inject: [OPTIONS] },
        { provide: token, useFactory: (lifecycle: SluicePoolLifecycle) => new MailerService(lifecycle.pool, name, lifecycle.queue), inject: [LIFECYCLE] },
      ],
      exports: [token],
    };
  })
  .build();

/**
 * `SluiceModule.forRoot(options)` / `SluiceModule.forRootAsync({ imports, inject, useFactory | useClass | useExisting })`.
 * Each registration owns one pool (or uses the `pool` given) and exports its `MailerService`.
 */
@Module({})
export class SluiceModule extends ConfigurableModuleClass {}

/** What `forRoot` takes. */
export type SluiceModuleForRootOptions = typeof OPTIONS_TYPE;
/** What `forRootAsync` takes; a `useClass`/`useExisting` class implements `createSluiceOptions()`. */
export type SluiceModuleAsyncOptions = typeof ASYNC_OPTIONS_TYPE;

/** Implemented by a class given to `forRootAsync({ useClass })` or `useExisting`. */
export interface SluiceOptionsFactory {
  createSluiceOptions(): SluiceModuleOptions | Promise<SluiceModuleOptions>;
}
