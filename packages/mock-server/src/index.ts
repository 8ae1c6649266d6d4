export { MockServerError, type MockServerErrorCode } from './errors.js';
export { PROFILE_NAMES } from './profiles.js';
export { startMockServer } from './server.js';
export type {
  ConnectionStats,
  Extensions,
  FaultAction,
  FaultCommand,
  FaultRule,
  Inbox,
  MockServer,
  MockServerOptions,
  ProfileName,
  ProtocolViolation,
  ReceivedMessage,
  ServerStats,
  StrictBdatOptions,
  TransactionRecord,
} from './types.js';
