// One jest run over every package (each package also runs alone with `pnpm test` in its folder).
// testTimeout is a global option: with `projects`, the per-project value of jest.preset.js is not
// used, so it is set here too (tests run on busy 2-core machines).
export default {
  projects: ['<rootDir>/packages/*/jest.config.js', '<rootDir>/tools/*/jest.config.js'],
  testTimeout: 120000,
};
