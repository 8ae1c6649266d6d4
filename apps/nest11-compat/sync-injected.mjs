// pnpm installs @sluice/nestjs here as an INJECTED copy (dependenciesMeta.injected): a hard-linked copy of
// its published files in node_modules/.pnpm, next to NestJS 11 as its peers. pnpm makes that copy at
// install time only, before turbo builds dist/ (and tsup's clean build replaces the files, which breaks
// the hard links), so each run re-syncs the copy from packages/nestjs first. It replaces files by
// rename, never writes into an existing (hard-linked) file, and leaves files that are already equal alone.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const source = realpathSync(fileURLToPath(new URL('../../packages/nestjs/', import.meta.url)));
const target = dirname(realpathSync(createRequire(import.meta.url).resolve('@sluice/nestjs/package.json')));

if (target === source) {
  throw new Error('@sluice/nestjs is linked to packages/nestjs, not injected: it would see the Nest 12 there. Run pnpm install.');
}
if (!existsSync(join(source, 'dist', 'index.js'))) {
  throw new Error('packages/nestjs/dist is missing: build it first (turbo runs ^build before this task).');
}

/** The files under dir (relative to base); none when dir is not a directory. */
function list(dir, base = dir) {
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? list(path, base) : [relative(base, path)];
  });
}

const { files = [] } = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8'));
const wanted = [
  'package.json',
  ...files.flatMap((entry) => (statSync(join(source, entry), { throwIfNoEntry: false })?.isFile() ? [entry] : list(join(source, entry), source))),
];

let copied = 0;
for (const file of wanted) {
  const from = join(source, file);
  const to = join(target, file);
  if (existsSync(to) && readFileSync(to).equals(readFileSync(from))) continue;
  mkdirSync(dirname(to), { recursive: true });
  const temporary = `${to}.${process.pid}.tmp`;
  copyFileSync(from, temporary);
  renameSync(temporary, to);
  copied++;
}
const keep = new Set(wanted);
let removed = 0;
for (const file of files.flatMap((entry) => list(join(target, entry), target))) {
  if (!keep.has(file)) {
    rmSync(join(target, file), { force: true });
    removed++;
  }
}
if (copied + removed > 0) console.log(`synced the injected @sluice/nestjs: ${copied} files copied, ${removed} removed`);
