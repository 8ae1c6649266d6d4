import { Inject } from '@nestjs/common';
import { ErrorCodes, SluiceError } from '@sluice/core';
import type { MailerConfig } from './compose.js';
import { DEFAULT_MAILER_NAME, MailerService } from './mailer.js';
import { openPool, type SluiceMailerOptions } from './options.js';

/**
 * The name → mailer map of a registry: MailerRegistry here, TestMailerRegistry in the testing module.
 * `release` is what removing a mailer frees once its renders are done.
 */
export abstract class NamedMailers<M extends { settled(): Promise<void> }> {
  protected readonly mailers = new Map<string, M>();

  /** The mailer added under `name`. Throws EOPTIONS if there is none. */
  get(name: string): M {
    const mailer = this.mailers.get(name);
    if (!mailer) throw noMailerError(name);
    return mailer;
  }

  has(name: string): boolean {
    return this.mailers.has(name);
  }

  names(): string[] {
    return [...this.mailers.keys()];
  }

  /**
   * Removes a mailer at once (later `get(name)` throws), then waits for its renders and releases it
   * (MailerRegistry: drains its pool, what is queued and in flight delivered, then every connection
   * QUITs; a pool passed in with `pool` is left open). Resolves false if there was no such mailer.
   */
  async remove(name: string): Promise<boolean> {
    const mailer = this.mailers.get(name);
    if (!mailer) return false;
    this.mailers.delete(name);
    await mailer.settled();
    await this.release(mailer);
    return true;
  }

  /** Removes and releases every mailer (the module calls it at shutdown). */
  async clear(): Promise<void> {
    await Promise.all(this.names().map((name) => this.remove(name)));
  }

  /** Stores `mailer` under `name`; EOPTIONS if the name is empty or taken. */
  protected put(name: string, create: () => M): M {
    checkNewName(this.mailers, name);
    const mailer = create();
    this.mailers.set(name, mailer);
    return mailer;
  }

  protected async release(_mailer: M): Promise<void> {}
}

/**
 * Mailers added and removed while the application runs: one pool per tenant, say. Each registration of
 * `SluiceModule` has one; inject it with `@InjectMailerRegistry()` (or by class for the default pool).
 * A mailer added here inherits the registration's `template` and `defaults` (its own `defaults` win key by key).
 */
export class MailerRegistry extends NamedMailers<MailerService> {
  /** The mailers whose pool was created here, closed when they are removed. */
  private readonly owned = new WeakSet<MailerService>();

  constructor(
    private readonly base: MailerConfig = {},
    /** The name of the SluiceModule registration this registry belongs to. */
    readonly name: string = DEFAULT_MAILER_NAME,
  ) {
    super();
  }

  /** Creates a mailer (and its pool, unless `pool` is given) under `name`. Throws EOPTIONS if the name is taken or the options are invalid. */
  add(name: string, options: SluiceMailerOptions): MailerService {
    return this.put(name, () => {
      const { pool, owned, config } = openPool({
        ...options,
        template: options.template ?? this.base.template,
        defaults: { ...this.base.defaults, ...options.defaults },
      });
      const mailer = new MailerService(pool, name, config, this);
      if (owned) this.owned.add(mailer);
      return mailer;
    });
  }

  protected override async release(mailer: MailerService): Promise<void> {
    if (this.owned.has(mailer)) await mailer.pool.close();
  }
}

/** Throws EOPTIONS unless `name` is a non-empty string not yet in `taken`. */
function checkNewName(taken: ReadonlyMap<string, unknown>, name: string): void {
  if (typeof name !== 'string' || name === '') throw optionsError('A mailer name must be a non-empty string');
  if (taken.has(name)) throw optionsError(`A mailer named "${name}" exists already: remove() it first`);
}

/** EOPTIONS: no mailer added under `name`. */
function noMailerError(name: string): SluiceError {
  return optionsError(`No mailer named "${name}" (add it with MailerRegistry.add())`);
}

function optionsError(message: string): SluiceError {
  return new SluiceError(ErrorCodes.EOPTIONS, message, { permanent: true });
}

/** The injection token of a registration's MailerRegistry: the class for the default pool, a string for a named one. */
export function getMailerRegistryToken(name?: string): string | typeof MailerRegistry {
  return name === undefined || name === DEFAULT_MAILER_NAME ? MailerRegistry : `SluiceMailerRegistry:${name}`;
}

/** Injects the MailerRegistry of the registration named `name` (the default one without). */
export const InjectMailerRegistry = (name?: string): PropertyDecorator & ParameterDecorator => Inject(getMailerRegistryToken(name));
