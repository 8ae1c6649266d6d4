/**
 * The upstream mock server in its own process (so that it never shares an event loop with the relay
 * or the senders): the same one `pnpm bench` uses.
 */
import '../../bench/src/server-process.js';
