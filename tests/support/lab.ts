// What every lab test shares: skipped on a machine without the lab's prerequisites (root,
// the Debian packages), unless CI requires the lab, where a skip would be a silent pass.
import { missingPrerequisites } from "../../lab/lab";

const missing = missingPrerequisites();
if (missing.length) console.warn(`lab tests skipped; missing: ${missing.join(", ")}`);

export const labDescribe = missing.length === 0 || process.env.TUNNELPAIR_LAB_REQUIRED === "1" ? describe : describe.skip;

/** Prints a lab run's lines and its summary line, and fails the test on any failed check. */
export function expectAllPassed(summary: string, lines: readonly string[], checks: readonly { ok: boolean }[]): void {
    const failed = checks.filter((c) => !c.ok);
    console.log(`${lines.join("\n")}\n${summary}: ${checks.length - failed.length} passed, ${failed.length} failed`);
    expect(failed).toEqual([]);
}
