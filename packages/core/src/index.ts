export { createPool, emptyStats, Pool } from './pool/pool.js';
export type { MailOptions, PoolEvents, PoolStats, SendOptions, VerifyOptions, VerifyResult } from './pool/pool.js';
export type { ConnectionGate, ConnectionLease, Logger, PoolOptions, ResolvedOptions } from './options.js';
export type { Body, Message, RecipientResult, SendResult, Timings } from './message.js';
export type { DsnOptions, Envelope } from './protocol/commands.js';
export type { Capabilities } from './protocol/capabilities.js';
export { LineLengthCheck, MAX_LINE_LENGTH } from './protocol/line-length.js';
export { defineCapabilities } from './protocol/capabilities.js';
export { mailEnvelope } from './compose.js';
export type { MailQueueLike } from './queue-like.js';
export type { Reply } from './protocol/reply.js';
export type { Timeouts } from './connection/timeouts.js';
export { DEFAULT_TIMEOUTS } from './connection/timeouts.js';
export type { AuthMechanism, AuthOptions, OAuth2Auth, PasswordAuth } from './auth.js';
export type { CustomAuthContext, CustomAuthCredentials, CustomAuthHandler, CustomAuthReply } from './custom-auth.js';
export type { RetryOptions } from './policies/retry.js';
export { retryDelay } from './policies/retry.js';
export type { RateLimitOptions } from './policies/rate-limit.js';
export { PRESET_NAMES, preset } from './presets.js';
export type { PresetInfo, PresetName } from './presets.js';
export { ErrorCodes, SluiceError, SmtpReplyError, isSluiceError } from './errors.js';
export type { ErrorCode, ErrorKind, Outcome } from './errors.js';
export { httpErrorFor } from './http.js';
export type { HttpErrorAnswer } from './http.js';
export { PoolGroup, createPoolGroup } from './group/group.js';
export type {
  FailoverInfo,
  GroupSendOptions,
  GroupSendResult,
  GroupVerifyResult,
  HealthOptions,
  PoolGroupEvents,
  PoolGroupOptions,
  PoolGroupStats,
  SharedOptions,
  UpstreamHealth,
  UpstreamOptions,
  UpstreamStats,
} from './group/types.js';
export { CHANNELS, subscribeDiagnostics } from './diagnostics.js';
export type { CloseMessage, ConnectMessage, ConnectionErrorMessage, DiagnosticsServer, DiagnosticsSubscribers, SendContext, ThrottleMessage, WaitMessage } from './diagnostics.js';
