import { start } from './server.js';

const running = await start();
console.log(`Listening on ${running.url} (pid ${process.pid}), sending through ${running.description}`);
console.log(`  curl -X POST ${running.url}/signup -H 'content-type: application/json' -d '{"email":"ada@example.com","name":"Ada"}'`);
console.log(`  curl -X POST ${running.url}/bulk -H 'content-type: application/json' -d '{"count":1000}'`);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    console.log(`${signal}: finishing requests in progress, draining the mail queue…`);
    // Give up after 30 s rather than hang forever.
    setTimeout(() => {
      console.error('Shutdown timed out');
      process.exit(1);
    }, 30_000).unref();
    running.close().then(
      () => console.log('Stopped.'),
      (err) => {
        console.error('Shutdown failed:', err);
        process.exitCode = 1;
      },
    );
  });
}
