// Shared jest settings: TypeScript through @swc/jest as native ES modules (jest runs with
// --experimental-vm-modules). Imports written as './x.js' resolve to './x.ts', and workspace
// packages (`@mic/<name>`) resolve to their sources, so code in the test's thread needs no build.
// Worker threads and programs the tests start run from `dist/`: jest.global-setup.js builds what
// the selected tests need first (one turbo run per jest run; about a second when nothing changed).
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'es6' },
        sourceMaps: 'inline',
      },
    ],
  },
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    '^@mic/([^/]+)$': ['<rootDir>/../../packages/$1/src/index.ts', '<rootDir>/../../tools/$1/src/index.ts'],
  },
  globalSetup: '<rootDir>/../../jest.global-setup.js',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testTimeout: 120000,
};
