/**
 * Run `task` while holding a lock shared by every tab of this origin (Web Locks),
 * or, where the browser has none, by every caller in this page.
 *
 * crm2 revokes a whole refresh-token family when one refresh token is used twice,
 * so two tabs must never refresh at the same moment with the same token.
 */
let localChain: Promise<unknown> = Promise.resolve();

export async function withLock<T>(name: string, task: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  if (locks) {
    return locks.request(name, { mode: "exclusive" }, task) as Promise<T>;
  }
  const run = localChain.then(task, task);
  localChain = run.catch(() => undefined);
  return run;
}
