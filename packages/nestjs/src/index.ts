export type { MailDefaults, SendMailOptions } from './compose.js';
export type { MailerLookup } from './mailer.js';
export { SluiceExceptionFilter } from './exception-filter.js';
export { DEFAULT_MAILER_NAME, getMailerToken, InjectMailer, MailerService } from './mailer.js';
export type { MailPreview } from './preview.js';
export { getMailerRegistryToken, InjectMailerRegistry, MailerRegistry } from './registry.js';
export type {
  SluiceExistingPoolOptions,
  SluiceMailerOptions,
  SluiceModuleAsyncOptions,
  SluiceModuleExtras,
  SluiceModuleForRootOptions,
  SluiceModuleOptions,
  SluiceOptionsFactory,
  SluicePoolOptions,
  SluiceQueueOptions,
  VerifyOnStart,
} from './sluice.module.js';
export { SluiceModule } from './sluice.module.js';
export type { TemplateAdapter, TemplateKind, TemplateOptions, TemplateRequest } from './template.js';
export { templateFile } from './template.js';
export type { MailQueueLike } from './mailer.js';
