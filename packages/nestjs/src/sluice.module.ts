import { ConfigurableModuleBuilder, Logger, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import type { Pool, SluiceError } from '@sluice/core';
import { DEFAULT_MAILER_NAME, getMailerToken, type MailQueueLike, MailerService } from './mailer.js';
import { openPool, type SluiceModuleOptions, type SluiceQueueOptions, type VerifyOnStart } from './options.js';
import { getMailerRegistryToken, MailerRegistry } from './registry.js';

export type { SluiceExistingPoolOptions, SluiceMailerOptions, SluiceModuleOptions, SluicePoolOptions, SluiceQueueOptions, VerifyOnStart } from './options.js';

export interface SluiceModuleExtras {
  /** Register the module globally. Default false. */
  isGlobal?: boolean;
  /** The pool's name, for several pools: inject its mailer with `@InjectMailer(name)`. Default 'default'. */
  name?: string;
}

/** Owns one pool's lifecycle (and its registry's): verification at startup and draining at shutdown. Internal. */
class SluicePoolLifecycle implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('SluiceModule');

  constructor(
    readonly pool: Pool,
    private readonly owned: boolean,
    private readonly verifyOnStart: VerifyOnStart,
    private readonly name: string,
    readonly mailer: MailerService,
    readonly registry: MailerRegistry,
    private readonly ownedQueue: MailQueueLike | undefined,
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

  /** Waits for every queued and in-flight message, then QUITs (only a pool this module created), and drains the mailers added at runtime. */
  async onApplicationShutdown(): Promise<void> {
    const added = this.registry.clear();
    await this.mailer.settled();
    await this.ownedQueue?.close?.();
    if (this.owned) {
      const { queued, inFlight } = this.pool.stats;
      if (queued + inFlight > 0) this.logger.log(`Pool "${this.name}": delivering ${queued + inFlight} messages before closing`);
      await this.pool.close();
    }
    await added;
  }
}

async function createLifecycle(options: SluiceModuleOptions, name: string): Promise<SluicePoolLifecycle> {
  const { verifyOnStart = false, queue: queueOptions, ...rest } = options;
  const queue = await createQueue(queueOptions);
  const { pool, owned, config } = openPool(rest);
  const registry = new MailerRegistry(config, name);
  const mailer = new MailerService(pool, name, config, registry, queue);
  return new SluicePoolLifecycle(pool, owned, verifyOnStart, name, mailer, registry, queue !== queueOptions ? queue : undefined);
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
    const registryToken = getMailerRegistryToken(name);
    return {
      ...definition,
      global: isGlobal,
      providers: [
        ...(definition.providers ?? []),
        { provide: LIFECYCLE, useFactory: (options: SluiceModuleOptions) => createLifecycle(options, name), inject: [OPTIONS] },
        { provide: token, useFactory: (lifecycle: SluicePoolLifecycle) => lifecycle.mailer, inject: [LIFECYCLE] },
        { provide: registryToken, useFactory: (lifecycle: SluicePoolLifecycle) => lifecycle.registry, inject: [LIFECYCLE] },
      ],
      exports: [token, registryToken],
    };
  })
  .build();

/**
 * `SluiceModule.forRoot(options)` / `SluiceModule.forRootAsync({ imports, inject, useFactory | useClass | useExisting })`.
 * Each registration owns one pool (or uses the `pool` given) and exports its `MailerService` and `MailerRegistry`.
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
