import type { MailOptions } from '@sluice/core';
import { type TemplateKind, type TemplateOptions, templateError, templateFile, templateSetupError } from './template.js';

/** Message options merged into every mail of a pool (`defaults.from`, `defaults.replyTo`, headers…), as nodemailer's `defaults`. */
export type MailDefaults = Partial<MailOptions>;

/**
 * What `MailerService.sendMail` takes: nodemailer message options plus @nestjs-modules/mailer's
 * `template`, `textTemplate`, `context` and `transporterName`.
 */
export type SendMailOptions = MailOptions & {
  /** Renders the HTML body from this template (under `template.dir`) with `context`. */
  template?: string;
  /** Renders the plain-text body from this template with `context` (never HTML-escaped). */
  textTemplate?: string;
  /** The values the templates see. */
  context?: Record<string, unknown>;
  /** Sends through the pool added at runtime under this name (`MailerRegistry.add(name, options)`). */
  transporterName?: string;
};

/** What a MailerService adds to each mail before it is composed. */
export interface MailerConfig {
  defaults?: MailDefaults;
  template?: TemplateOptions;
}

/**
 * The message options to compose: the defaults under the mail's own options (a field set to
 * `undefined` in the mail leaves the default), headers merged key by key, templates rendered. Without
 * templates the result is synchronous, so that a sendMail() called before the pool's close() reaches
 * the pool before it closes.
 */
export function composeMail(config: MailerConfig, mail: SendMailOptions): MailOptions | Promise<MailOptions> {
  const { template, textTemplate, context = {}, transporterName: _, ...own } = mail;
  const merged: MailOptions = { ...config.defaults };
  for (const [key, value] of Object.entries(own)) if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
  if (isHeaderObject(config.defaults?.headers) && isHeaderObject(own.headers)) merged.headers = { ...config.defaults.headers, ...own.headers };
  if (template === undefined && textTemplate === undefined) return merged;
  if (template !== undefined && own.html !== undefined) throw templateError('Give either "template" or "html", not both');
  if (textTemplate !== undefined && own.text !== undefined) throw templateError('Give either "textTemplate" or "text", not both');
  return (async () => {
    if (template !== undefined) merged.html = await render(config, template, context, 'html');
    if (textTemplate !== undefined) merged.text = await render(config, textTemplate, context, 'text');
    return merged;
  })();
}

function render(config: MailerConfig, name: string, context: Record<string, unknown>, kind: TemplateKind): Promise<string> {
  const options = config.template;
  if (!options) throw templateSetupError(`The mail names the template "${name}", but the module has no "template" option ({ dir, adapter })`);
  const file = templateFile(options.dir, name, options.adapter.extension ?? '');
  return Promise.resolve(options.adapter.render({ name, file, context, kind }));
}

function isHeaderObject(headers: unknown): headers is Record<string, unknown> {
  return typeof headers === 'object' && headers !== null && !Array.isArray(headers);
}
