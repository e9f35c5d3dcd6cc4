/** @type {import('jest').Config} */
module.exports = {
    preset: "ts-jest",
    testEnvironment: "node",
    testMatch: ["<rootDir>/tests/**/*.test.ts"],
    // the examples import the package by its name, as a user's program does
    moduleNameMapper: { "^tunnelpair$": "<rootDir>/components" },
    // Lab tests boot a kernel and replay whole stacks over SSH.
    testTimeout: 600000,
};
