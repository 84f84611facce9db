#!/usr/bin/env node
// Scaffolds packages/<name> (or tools/<name> with --tool): package.json, tsconfig.json,
// tsconfig.check.json, jest.config.js and src/index.ts. Usage:
//   node scripts/new-package.mjs <name> "<description>" [dep ...] [--tool]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
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
const pkg = {
  name: `@mic/${name}`,
  version: '0.1.0',
  description,
  type: 'module',
  license: 'MIT',
  ...(tool ? {} : { sideEffects: false }),
  exports: { '.': { types: './dist/index.d.ts', default: './dist/index.js' } },
  files: ['dist', 'src', 'README.md'],
  scripts: {
    build: 'tsc -b',
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
process.stdout.write(`created ${dir}\n`);
