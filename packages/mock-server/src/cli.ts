#!/usr/bin/env node
import { runCli } from './cli-args.js';

const result = await runCli(process.argv.slice(2), process.stdout, process.stderr);
if (typeof result === 'number') {
  process.exitCode = result;
} else {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    result.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
