#!/usr/bin/env node
// Scaffolds packages/<name> (or tools/<name> with --tool): package.json, tsconfig.json,
// tsconfig.check.json, jest.config.js, src/index.ts and (a library) LICENSE. Usage:
//   node scripts/new-package.mjs <name> "<description>" [dep ...] [--tool]
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const tool = args.includes('--tool');
const [name, description, ...deps] = args.filter((a) => a !== '--tool');
if (!name || !description) {
  process.stderr.write('usage: new-package.mjs <name> "<description>" [dep ...] [--tool]\n');
  process.exit(2);
}
const dir = join(tool ? 'tools' : 'packages', name);
if (existsSync(join(dir, 'package.json'))) {
  process.stderr.write(`${dir} exists\n`);
  process.exit(1);
}
mkdirSync(join(dir, 'src'), { recursive: true });
mkdirSync(join(dir, 'test'), { recursive: true });
const depPath = (d) =>
  existsSync(join('tools', d)) ? `../../tools/${d}` : tool ? `../../packages/${d}` : `../${d}`;
const rootPkg = JSON.parse(readFileSync('package.json', 'utf8'));
// A library is published (the fields scripts/check-pack.mjs checks); a tool is private.
const pkg = {
  name: `@mic/${name}`,
  version: '0.0.0',
  ...(tool ? { private: true } : {}),
  description,
  type: 'module',
  license: 'MIT',
  ...(tool ? {} : { repository: { ...rootPkg.repository, directory: dir } }),
  engines: rootPkg.engines,
  ...(tool ? {} : { sideEffects: false }),
  exports: {
    '.': { types: './dist/index.d.ts', default: './dist/index.js' },
    ...(tool ? {} : { './package.json': './package.json' }),
  },
  files: tool ? ['dist', 'src', 'README.md'] : ['dist', '!dist/.tsbuildinfo', 'src', 'README.md', 'LICENSE'],
  ...(tool ? {} : { publishConfig: { access: 'public' } }),
  scripts: {
    build: 'tsc -b',
    ...(tool ? {} : { prepack: 'node ../../scripts/prepack.mjs' }),
    typecheck: 'tsc -p tsconfig.check.json',
    lint: 'eslint . && prettier --check . --ignore-path ../../.prettierignore',
    test: 'node --experimental-vm-modules --no-warnings=ExperimentalWarning ../../node_modules/jest/bin/jest.js',
  },
  dependencies: Object.fromEntries(deps.map((d) => [`@mic/${d}`, 'workspace:^'])),
};
writeFileSync(join(dir, 'package.json'), JSON.stringify(pkg, null, 2) + '\n');
writeFileSync(
  join(dir, 'tsconfig.json'),
  JSON.stringify(
    {
      extends: '../../tsconfig.base.json',
      compilerOptions: { rootDir: 'src', outDir: 'dist', tsBuildInfoFile: 'dist/.tsbuildinfo' },
      include: ['src'],
      references: deps.map((d) => ({ path: depPath(d) })),
    },
    null,
    2,
  ) + '\n',
);
writeFileSync(
  join(dir, 'tsconfig.check.json'),
  JSON.stringify(
    {
      extends: '../../tsconfig.base.json',
      compilerOptions: { composite: false, noEmit: true, rootDir: '.' },
      include: ['src', 'test', 'bench'],
    },
    null,
    2,
  ) + '\n',
);
writeFileSync(
  join(dir, 'jest.config.js'),
  `import preset from '../../jest.preset.js';\n\nexport default { ...preset, displayName: '${name}' };\n`,
);
if (!existsSync(join(dir, 'src', 'index.ts'))) writeFileSync(join(dir, 'src', 'index.ts'), 'export {};\n');
if (!tool) copyFileSync('LICENSE', join(dir, 'LICENSE'));
process.stdout.write(`created ${dir}\n`);
