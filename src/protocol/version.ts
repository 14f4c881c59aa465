/** Kept in step with package.json by test/unit/protocol/version.test.ts. */
export const ACHERON_VERSION = '0.1.0';
