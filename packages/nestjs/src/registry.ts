import { Inject } from '@nestjs/common';
import { ErrorCodes, SluiceError } from '@sluice/core';
import type { MailerConfig } from './compose.js';
import { DEFAULT_MAILER_NAME, MailerService } from './mailer.js';
import { openPool, type SluiceMailerOptions } from './options.js';

/**
 * Mailers added and removed while the application runs: one pool per tenant, say. Each registration of
 * `SluiceModule` has one; inject it with `@InjectMailerRegistry()` (or by class for the default pool).
 * A mailer added here inherits the registration's `template` and `defaults` (its own `defaults` win key by key).
 */
export class MailerRegistry {
  private readonly mailers = new Map<string, { mailer: MailerService; owned: boolean }>();

  constructor(
    private readonly base: MailerConfig = {},
    /** The name of the SluiceModule registration this registry belongs to. */
    readonly name: string = DEFAULT_MAILER_NAME,
  ) {}

  /** Creates a mailer (and its pool, unless `pool` is given) under `name`. Throws EOPTIONS if the name is taken or the options are invalid. */
  add(name: string, options: SluiceMailerOptions): MailerService {
    checkNewName(this.mailers, name);
    const { pool, owned, config } = openPool({
      ...options,
      template: options.template ?? this.base.template,
      defaults: { ...this.base.defaults, ...options.defaults },
    });
    const mailer = new MailerService(pool, name, config, this);
    this.mailers.set(name, { mailer, owned });
    return mailer;
  }

  /** The mailer added under `name`. Throws EOPTIONS if there is none. */
  get(name: string): MailerService {
    const entry = this.mailers.get(name);
    if (!entry) throw noMailerError(name);
    return entry.mailer;
  }

  has(name: string): boolean {
    return this.mailers.has(name);
  }

  names(): string[] {
    return [...this.mailers.keys()];
  }

  /**
   * Removes a mailer at once (later `get(name)` throws), then drains its pool: what is queued and in
   * flight is delivered, then every connection QUITs. A pool passed in with `pool` is left open.
   * Resolves false if there was no such mailer.
   */
  async remove(name: string): Promise<boolean> {
    const entry = this.mailers.get(name);
    if (!entry) return false;
    this.mailers.delete(name);
    await entry.mailer.settled();
    if (entry.owned) await entry.mailer.pool.close();
    return true;
  }

  /** Removes and drains every mailer (the module calls it at shutdown). */
  async clear(): Promise<void> {
    await Promise.all(this.names().map((name) => this.remove(name)));
  }
}

/** Throws EOPTIONS unless `name` is a non-empty string not yet in `taken`. */
export function checkNewName(taken: ReadonlyMap<string, unknown>, name: string): void {
  if (typeof name !== 'string' || name === '') throw optionsError('A mailer name must be a non-empty string');
  if (taken.has(name)) throw optionsError(`A mailer named "${name}" exists already: remove() it first`);
}

/** EOPTIONS: no mailer added under `name`. */
export function noMailerError(name: string): SluiceError {
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
