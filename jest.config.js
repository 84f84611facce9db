// One jest run over every package (each package also runs alone with `pnpm test` in its folder).
export default {
  projects: ['<rootDir>/packages/*/jest.config.js', '<rootDir>/tools/*/jest.config.js'],
};
