import type { Connection } from '../connection/connection.js';
import type { PreparedMessage } from '../message.js';

/**
 * Closes an idle connection (with QUIT) after `timeout` ms without work. One timer per connection at
 * most (`armed`): it re-checks `lastActive` when it fires instead of being reset on every message.
 */
export function armIdle<J extends PreparedMessage>(conn: Connection<J>, timeout: number, armed: WeakSet<Connection<J>>): void {
  if (armed.has(conn)) return;
  armed.add(conn);
  const check = () => {
    if (conn.state !== 'ready' || !conn.isIdle) {
      armed.delete(conn);
      return;
    }
    const left = conn.lastActive + timeout - Date.now();
    if (left > 0) setTimeout(check, left).unref();
    else {
      armed.delete(conn);
      conn.quit();
    }
  };
  setTimeout(check, timeout).unref();
}
