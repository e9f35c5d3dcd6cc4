/** @type {import('jest').Config} */
module.exports = {
  preset: "ts-jest",
  testEnvironment: "node",
  testMatch: ["<rootDir>/tests/**/*.test.ts"],
  // Program tests import index.ts after setting mocks; each file needs a fresh module registry.
  resetModules: true,
};
