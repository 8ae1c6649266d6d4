/** Child processes of the bench and the soak: the mock server and the senders, talking over IPC. */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

export interface Proc {
  child: ChildProcess;
  send(msg: object): void;
  /** Sends `{ type }` and resolves with the first answer of type `answer`. */
  ask<T>(type: string, answer?: string): Promise<T>;
  next<T>(answer: string): Promise<T>;
  close(): Promise<void>;
  kill(): Promise<void>;
}

export async function start(file: 'server-process.js' | 'worker-process.js', config: object): Promise<Proc & { ready: Record<string, unknown> }> {
  const child = fork(here(`./${file}`), [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = async <T>(answer: string): Promise<T> => {
    for (;;) {
      const [msg] = (await once(child, 'message')) as [{ type: string } & T];
      if (msg.type === answer) return msg;
    }
  };
  const ready = await next<Record<string, unknown>>('ready');
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  return {
    child,
    ready,
    send: (msg) => child.send(msg),
    next,
    ask: <T>(type: string, answer = type) => {
      const p = next<T>(answer);
      child.send({ type });
      return p;
    },
    close: async () => {
      if (exited()) return;
      const gone = once(child, 'exit');
      child.send({ type: 'close' });
      await gone;
    },
    kill: async () => {
      if (exited()) return;
      const gone = once(child, 'exit');
      child.kill('SIGKILL');
      await gone;
    },
  };
}
