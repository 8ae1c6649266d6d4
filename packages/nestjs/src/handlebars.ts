import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import Handlebars from 'handlebars';
import { type TemplateAdapter, type TemplateRequest, templateError, templateSetupError } from './template.js';

export interface HandlebarsAdapterOptions {
  /** Helpers, registered on this adapter's own Handlebars environment (never on the global one). */
  helpers?: Record<string, Handlebars.HelperDelegate>;
  /** A directory of partials: every `.hbs` file under it, named by its path without the extension (`{{> layout/footer}}`). */
  partials?: string;
  /** Handlebars compile options (`strict`, `knownHelpersOnly`…). Text templates always compile with `noEscape`. */
  compileOptions?: CompileOptions;
  /** Keep compiled templates in memory. Default true; turn it off to see template edits without a restart in development. */
  cache?: boolean;
}

type CompileOptions = NonNullable<Parameters<typeof Handlebars.compile>[1]>;

/**
 * Renders `.hbs` templates with Handlebars (an optional peer dependency: `npm install handlebars`).
 * `new HandlebarsAdapter({ helpers, partials })` in `SluiceModule.forRoot({ template: { dir, adapter } })`.
 */
export class HandlebarsAdapter implements TemplateAdapter {
  readonly extension = '.hbs';
  private readonly handlebars = Handlebars.create();
  private readonly compiled = new Map<string, Handlebars.TemplateDelegate>();
  private partialsLoaded: Promise<void> | null = null;

  constructor(private readonly options: HandlebarsAdapterOptions = {}) {
    if (options.helpers) this.handlebars.registerHelper(options.helpers);
  }

  async render({ name, file, context, kind }: TemplateRequest): Promise<string> {
    if (this.options.partials) await (this.partialsLoaded ??= this.loadPartials(this.options.partials));
    const key = `${kind}:${file}`;
    let template = this.options.cache === false ? undefined : this.compiled.get(key);
    if (!template) {
      let source: string;
      try {
        source = await readFile(file, 'utf8');
      } catch (cause) {
        throw templateSetupError(`The template "${name}" was not found: ${file}`, cause);
      }
      template = this.handlebars.compile(source, { ...this.options.compileOptions, noEscape: kind === 'text' });
      if (this.options.cache !== false) this.compiled.set(key, template);
    }
    try {
      return template(context);
    } catch (cause) {
      throw templateError(`The template "${name}" could not be rendered: ${(cause as Error)?.message ?? cause}`, cause);
    }
  }

  private async loadPartials(dir: string): Promise<void> {
    const base = resolve(dir);
    let entries: string[];
    try {
      entries = await readdir(base, { recursive: true });
    } catch (cause) {
      this.partialsLoaded = null;
      throw templateSetupError(`The partials directory was not found: ${base}`, cause);
    }
    for (const entry of entries.filter((e) => e.endsWith('.hbs'))) {
      const name = relative(base, join(base, entry))
        .replace(/\\/g, '/')
        .replace(/\.hbs$/, '');
      this.handlebars.registerPartial(name, await readFile(join(base, entry), 'utf8'));
    }
  }
}
