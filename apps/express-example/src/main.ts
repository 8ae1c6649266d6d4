import { start } from './server.js';

const running = await start();
console.log(`Listening on ${running.url} (pid ${process.pid}), sending through ${running.smtp}`);
console.log(`Try: curl -X POST ${running.url}/signup -H 'Content-Type: application/json' -d '{"email":"ada@example.com","name":"Ada"}'`);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    console.log(`${signal}: finishing requests and draining the mail pool`);
    setTimeout(() => {
      console.error('Shutdown took more than 30 s: exiting');
      process.exit(1);
    }, 30_000).unref();
    running.close().then(
      () => console.log('Closed', running.mailer.stats),
      (err) => {
        console.error(err);
        process.exitCode = 1;
      },
    );
  });
}
