import { tlsEnvTests } from 'example-env/scenarios';
import { describe } from 'vitest';
import { start } from '../src/server.js';

describe('SMTP_TLS_CA and SMTP_TLS_INSECURE', () => tlsEnvTests(start));
