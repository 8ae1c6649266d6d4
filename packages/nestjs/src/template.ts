import { isAbsolute, relative, resolve } from 'node:path';
import { ErrorCodes, SluiceError } from '@sluice/core';

/** What a template renders: the HTML body, or the plain-text body (`textTemplate`), which is never HTML-escaped. */
export type TemplateKind = 'html' | 'text';

/**
 * Renders a named template with a context. Implement it to plug in a template engine (pug, ejs,
 * MJML…); `@sluice/nestjs/handlebars` is one. An adapter imports its engine itself, so the engine
 * stays an optional peer dependency of whoever publishes the adapter.
 */
export interface TemplateAdapter {
  /** Appended to a template name that has no extension (`'.hbs'`). */
  readonly extension?: string;
  /**
   * Renders the template `name` (from `sendMail({ template })`, without or with its extension) with
   * `context`. `file` is the template's path resolved by `templateFile()` against `template.dir`.
   */
  render(request: TemplateRequest): string | Promise<string>;
}

export interface TemplateRequest {
  /** The name given to sendMail (`'welcome'`, `'orders/shipped'`). */
  name: string;
  /** The absolute path of the template file: `template.dir` + name + the adapter's extension when the name has none. */
  file: string;
  context: Record<string, unknown>;
  kind: TemplateKind;
}

export interface TemplateOptions {
  /**
   * The directory templates are read from. Resolve it from the built file (`join(__dirname, 'templates')`,
   * or `fileURLToPath(new URL('./templates', import.meta.url))` in ESM), or from `process.cwd()`, and
   * copy the templates next to the build (nest-cli.json `assets`, or your bundler's copy step).
   */
  dir: string;
  adapter: TemplateAdapter;
}

/**
 * The file of template `name` under `dir`; `extension` (e.g. '.hbs') is appended when the name has no
 * extension of its own. A name that escapes `dir` (`../secrets`) is refused: template names may come
 * from data (a tenant's setting), and must never read files outside the templates directory.
 */
export function templateFile(dir: string, name: string, extension: string): string {
  if (typeof name !== 'string' || name === '') throw templateError('The template name must be a non-empty string');
  const base = resolve(dir);
  const withExtension = /\.[^./\\]+$/.test(name) ? name : `${name}${extension}`;
  const file = resolve(base, withExtension);
  const inside = relative(base, file);
  if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
    throw templateError(`The template "${name}" is outside the templates directory ${base}`);
  }
  return file;
}

/** A mail whose template cannot be rendered (EMESSAGE, kind 'input'): refused before anything is sent. */
export function templateError(message: string, cause?: unknown): SluiceError {
  return new SluiceError(ErrorCodes.EMESSAGE, message, { cause, permanent: true, outcome: 'rejected' });
}

/** The application's templates are not where its options say (EOPTIONS, kind 'config': an HTTP 500, not the client's fault). */
export function templateSetupError(message: string, cause?: unknown): SluiceError {
  return new SluiceError(ErrorCodes.EOPTIONS, message, { cause, permanent: true, outcome: 'rejected' });
}
