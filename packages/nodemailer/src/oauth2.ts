import type { OAuth2Auth } from '@sluice/core';
import { ErrorCodes, SluiceError } from '@sluice/core';

/** nodemailer's 3-legged OAuth2 settings (https://nodemailer.com/smtp/oauth2/). */
export interface NodemailerOAuth2 {
  user?: string;
  clientId?: string;
  clientSecret?: string;
  refreshToken?: string;
  /** A current access token; used until `expires` (ms since epoch), then refreshed. */
  accessToken?: string;
  expires?: number;
  /** The token endpoint. Default: Google's. */
  accessUrl?: string;
  /** Your own token source: `(user, renew, callback(err, token, expires))`. */
  provisionCallback?: (user: string, renew: boolean, callback: (err: Error | null, token?: string, expires?: number) => void) => void;
  serviceClient?: string;
  privateKey?: string;
}

const GOOGLE_TOKEN_URL = 'https://accounts.google.com/o/oauth2/token';
/** Refresh a little before the token runs out, so that no AUTH goes out with a token about to expire. */
const EXPIRY_MARGIN_MS = 60_000;

function bad(message: string): SluiceError {
  return new SluiceError(ErrorCodes.EOPTIONS, message, { permanent: true });
}

/**
 * The core's XOAUTH2 auth (`getAccessToken`, asked again with `refresh: true` when the server refuses
 * a token) from nodemailer's OAuth2 settings: a refresh token exchanged at the token endpoint
 * (RFC 6749 §6), a `provisionCallback`, or a fixed access token.
 */
export function oauth2TokenSource(auth: NodemailerOAuth2): OAuth2Auth {
  const user = auth.user;
  if (typeof user !== 'string' || user.length === 0) throw bad('auth.user is required for OAuth2');
  if (auth.serviceClient || auth.privateKey) throw bad('The sluice transport does not support OAuth2 service accounts yet (auth.serviceClient)');
  let token = auth.accessToken;
  let expires = auth.expires ?? 0;
  const fresh = () => token !== undefined && (expires === 0 || expires - EXPIRY_MARGIN_MS > Date.now());
  const { provisionCallback } = auth;
  if (provisionCallback) {
    return {
      user,
      getAccessToken: ({ refresh }) =>
        new Promise<string>((resolve, reject) => {
          if (!refresh && fresh()) return resolve(token!);
          provisionCallback(user, refresh, (err, value, until) => {
            if (err || !value) return reject(err ?? new Error('provisionCallback gave no token'));
            token = value;
            expires = until ?? 0;
            resolve(value);
          });
        }),
    };
  }
  if (!auth.refreshToken) {
    if (!token) throw bad('OAuth2 needs accessToken, refreshToken (with clientId and clientSecret) or provisionCallback');
    return { user, accessToken: token };
  }
  const { clientId, clientSecret, refreshToken } = auth;
  if (!clientId || !clientSecret) throw bad('OAuth2 with a refreshToken needs clientId and clientSecret');
  const accessUrl = auth.accessUrl ?? GOOGLE_TOKEN_URL;
  let pending: Promise<string> | null = null;
  const refresh = async (): Promise<string> => {
    const response = await fetch(accessUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ client_id: clientId, client_secret: clientSecret, refresh_token: refreshToken, grant_type: 'refresh_token' }),
    });
    const body = (await response.json().catch(() => ({}))) as { access_token?: unknown; expires_in?: unknown; error?: unknown };
    // Only the endpoint's error code: its description may echo what was sent.
    if (!response.ok || typeof body.access_token !== 'string') throw new Error(`The token endpoint answered ${response.status}${body.error ? ` (${String(body.error)})` : ''}`);
    token = body.access_token;
    expires = typeof body.expires_in === 'number' ? Date.now() + body.expires_in * 1000 : 0;
    return token;
  };
  return {
    user,
    getAccessToken: ({ refresh: renew }) => {
      if (!renew && fresh()) return token!;
      // Many connections open at once: one request to the endpoint serves all of them.
      pending ??= refresh().finally(() => {
        pending = null;
      });
      return pending;
    },
  };
}
