export { DEFAULT_MAILER_NAME, InjectMailer, MailerService, getMailerToken } from './mailer.js';
export { SluiceModule } from './sluice.module.js';
export type {
  SluiceExistingPoolOptions,
  SluiceModuleAsyncOptions,
  SluiceModuleExtras,
  SluiceModuleForRootOptions,
  SluiceModuleOptions,
  SluiceOptionsFactory,
  SluicePoolOptions,
  SluiceQueueOptions,
  VerifyOnStart,
} from './sluice.module.js';
export type { MailQueueLike } from './mailer.js';
