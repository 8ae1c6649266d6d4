#!/usr/bin/env node
// A checked-in launcher: pnpm links a workspace bin at install time, before dist/ is built, so the bin
// must exist in the repository (a bin pointing into dist/ warns on every fresh install and is missing
// until the build). It runs the built CLI.
await import('../dist/cli.js');
