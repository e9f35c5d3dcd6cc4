/** @type {import('jest').Config} */
module.exports = {
  preset: "ts-jest",
  testEnvironment: "node",
  testMatch: ["<rootDir>/tests/**/*.test.ts"],
  // Lab tests boot a kernel and replay whole stacks over SSH.
  testTimeout: 600000,
};
