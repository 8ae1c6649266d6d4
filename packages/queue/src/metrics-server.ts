/**
 * sluice-worker's `--metrics-port`: GET /metrics on 127.0.0.1 only, as the relay serves its own.
 *
 * The route only reads, so it takes no token (the relay's rule: a token guards what changes state).
 * A page in a browser on the same host can still reach 127.0.0.1, so as the relay does it refuses a
 * request a browser marks cross-origin and a Host that is neither an IP address nor `localhost` (a
 * DNS-rebinding page names its own host: RFC 9110 §7.2).
 */
import http from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { QueueError, QueueErrorCodes } from './errors.js';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

function refused(req: http.IncomingMessage): string | null {
  const host = req.headers.host ?? '';
  const name = (/^\[([^\]]+)\](?::\d+)?$/.exec(host) ?? /^([^:]+)(?::\d+)?$/.exec(host))?.[1]?.toLowerCase() ?? '';
  if (isIP(name) === 0 && name !== 'localhost') return `Host ${JSON.stringify(host)} is not this worker's`;
  const site = req.headers['sec-fetch-site'];
  if (site === 'cross-site' || site === 'same-site' || (req.headers.origin !== undefined && req.headers.origin !== `http://${host}`)) {
    return 'Cross-origin requests are refused';
  }
  return null;
}

/** Serves `render()` (the Prometheus text, of type `contentType`) at GET /metrics on 127.0.0.1:`port` (0: any free port). */
export async function serveMetrics(port: number, contentType: string, render: () => Promise<string>): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    req.resume();
    const send = (status: number, type: string, body: string) => res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' }).end(body);
    const error = (status: number, code: string, message: string) => send(status, 'application/json', JSON.stringify({ error: { code, message } }));
    const reason = refused(req);
    if (reason) return error(403, 'EFORBIDDEN', reason);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path !== '/metrics') return error(404, 'ENOTFOUND', `No route ${path}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return error(405, 'EMETHOD', `${req.method} ${path}: only GET`);
    render().then(
      (text) => send(200, contentType, text),
      (err: Error) => error(500, 'EMETRICS', err.message),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((err: Error) => {
    throw new QueueError(QueueErrorCodes.EQUEUEOPTIONS, `Cannot serve metrics on 127.0.0.1:${port}: ${err.message}`);
  });
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      server.closeAllConnections(); // a scraper's keep-alive connection would hold close() open
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
