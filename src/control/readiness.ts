/**
 * One condition /readyz checks: undefined while it holds, else why not. A store with a backend of
 * its own (etcd) checks that the backend answers within its own `store` check.
 */
export type ReadinessCheck = () => Promise<string | undefined> | string | undefined;

export interface Readiness {
  ready: boolean;
  /** Each check by name: `ok` or why not. */
  checks: Record<string, string>;
}

/** Runs every check; one that throws counts as failed, with its message. */
export async function checkReadiness(checks: Record<string, ReadinessCheck>): Promise<Readiness> {
  const results: Record<string, string> = {};
  for (const [name, check] of Object.entries(checks)) {
    try {
      results[name] = (await check()) ?? 'ok';
    } catch (error) {
      results[name] = `the check failed: ${(error as Error).message}`;
    }
  }
  return { ready: Object.values(results).every((result) => result === 'ok'), checks: results };
}
