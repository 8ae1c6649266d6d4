import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { generate } from 'selfsigned';
import { type Link, LinkStream } from './network.js';

export interface TlsMaterial {
  key: string;
  cert: string;
  /** Session ticket keys (48 bytes, see tls.createSecureContext); default random. */
  ticketKeys?: Buffer;
}

let cached: Promise<TlsMaterial> | null = null;

/**
 * A self-signed certificate for CN=localhost, SAN DNS:localhost and IP:127.0.0.1, made once per
 * process: every server started in a test file shares it. An EC P-256 key takes milliseconds where
 * RSA-2048 takes hundreds of them, and every client we care about speaks ECDSA.
 */
export function defaultCertificate(): Promise<TlsMaterial> {
  if (!cached) {
    const now = Date.now();
    cached = generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      // A day of slack for clock skew between processes or containers.
      notBeforeDate: new Date(now - 86_400_000),
      notAfterDate: new Date(now + 10 * 365 * 86_400_000),
      extensions: [
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: [
            { type: 2, value: 'localhost' },
            { type: 7, ip: '127.0.0.1' },
          ],
        },
      ],
    }).then(
      (pems) => ({ key: pems.private, cert: pems.cert }),
      (error: unknown) => {
        cached = null;
        throw error;
      },
    );
  }
  return cached;
}

export function secureContext(material: TlsMaterial): SecureContext {
  const context = createSecureContext({ key: material.key, cert: material.cert });
  // Not a createSecureContext option: the server's ticket keys are set on its context.
  if (material.ticketKeys) context.context.setTicketKeys(material.ticketKeys);
  return context;
}

/** Server side of TLS over the simulated path (implicit TLS, or after STARTTLS). */
export function serverTls(link: Link, context: SecureContext): TLSSocket {
  const socket = new TLSSocket(new LinkStream(link), { isServer: true, secureContext: context });
  // Handshake failures (a client rejecting the certificate) end up in 'close'.
  socket.on('error', () => socket.destroy());
  return socket;
}
