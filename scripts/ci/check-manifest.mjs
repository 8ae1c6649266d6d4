// Checks the package.json of packed tarballs for the layout every @sluice package shares, which attw and
// publint do not enforce. Usage: node scripts/ci/check-manifest.mjs TARBALL...
//
// - Each entry lists `@sluice/source` first: the tests' resolvers (vite) take the first key of an exports
//   entry that is among their conditions, so the source must come before `import`/`require`. It points at
//   src/, which is not in the tarball: no consumer sets that condition, and attw and publint ignore it.
// - `import` gives `types` (.d.ts) before `default` (.js), `require` gives its own `types` (.d.cts) before
//   `default` (.cjs), and every one of those files is in the tarball.
// - node10 resolution (no `exports`) finds the root through main/types and each subpath through typesVersions.
// - No unused build output: every entry file in dist/ is an export or a bin (chunks are shared code).
// - No `workspace:` range survived packing.
import { execFileSync } from 'node:child_process';
import { basename } from 'node:path';

/** tsup's shared chunks: `chunk-HASH.js`, and declaration chunks named `<module>-HASH.d.ts`. */
const CHUNK = /(^chunk-|-[A-Za-z0-9_-]{8}\.d\.c?ts$)/;

function check(manifest, files) {
  const problems = [];
  const has = (path) => files.has(path.replace(/^\.\//, ''));
  const referenced = new Set();
  const expect = (what, actual, wanted) => {
    if (JSON.stringify(actual) !== JSON.stringify(wanted)) problems.push(`${what} is ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`);
  };
  const target = (what, path) => {
    referenced.add(path.replace(/^\.\//, ''));
    if (!has(path)) problems.push(`${what} ${path} is not in the tarball`);
  };

  for (const [subpath, entry] of Object.entries(manifest.exports ?? {})) {
    if (subpath === './package.json') continue;
    const name = subpath === '.' ? 'index' : subpath.slice(2);
    const at = `exports["${subpath}"]`;
    expect(`${at} conditions`, Object.keys(entry), ['@sluice/source', 'import', 'require']);
    expect(`${at}["@sluice/source"]`, entry['@sluice/source'], `./src/${name}.ts`);
    for (const [condition, js, dts] of [
      ['import', 'js', 'd.ts'],
      ['require', 'cjs', 'd.cts'],
    ]) {
      expect(`${at}.${condition}`, entry[condition], { types: `./dist/${name}.${dts}`, default: `./dist/${name}.${js}` });
      target(`${at}.${condition}.types`, `./dist/${name}.${dts}`);
      target(`${at}.${condition}.default`, `./dist/${name}.${js}`);
    }
    if (subpath === '.') {
      expect('main', manifest.main, './dist/index.cjs');
      expect('types', manifest.types, './dist/index.d.cts');
      expect('module', manifest.module, './dist/index.js');
    } else {
      expect(`typesVersions["*"]["${name}"]`, manifest.typesVersions?.['*']?.[name], [`./dist/${name}.d.cts`]);
    }
  }
  if (!manifest.exports?.['.']) problems.push('no exports["."]');
  for (const [command, path] of Object.entries(manifest.bin ?? {})) {
    target(`bin["${command}"]`, path);
    // A checked-in launcher (bin/NAME.js) runs dist/cli.js: that file is the bin's build output.
    if (/^(\.\/)?bin\/[^/]+\.js$/.test(path)) target(`the launcher of bin["${command}"]`, './dist/cli.js');
  }

  for (const file of files) {
    if (!file.startsWith('dist/') || file.endsWith('/') || file.endsWith('.map') || CHUNK.test(basename(file))) continue;
    if (!referenced.has(file)) problems.push(`${file} is built but no export or bin uses it`);
  }
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
    for (const [dependency, range] of Object.entries(manifest[field] ?? {})) {
      if (range.startsWith('workspace:')) problems.push(`${field}["${dependency}"] is still ${range}`);
    }
  }
  return problems;
}

let failed = false;
for (const tarball of process.argv.slice(2)) {
  const manifest = JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }));
  const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' });
  const files = new Set(
    listing
      .split('\n')
      .filter(Boolean)
      .map((line) => line.replace(/^package\//, '')),
  );
  const problems = check(manifest, files);
  console.log(problems.length === 0 ? `${manifest.name}: manifest ok` : `${manifest.name}:\n  ${problems.join('\n  ')}`);
  failed ||= problems.length > 0;
}
process.exitCode = failed ? 1 : 0;
