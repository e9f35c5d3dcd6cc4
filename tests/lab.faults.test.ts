// Fault injection on every stack in the lab (lab/faults.ts): every changing step of every
// create script made to fail in turn, the SSH connection cut mid-run, and a destroy after a
// partial up. The host must be left as before each failure and converge on a rerun.
import { runFaults } from "../lab/faults";
import { missingPrerequisites } from "../lab/lab";
import { scenarios } from "../lab/scenario";

const required = process.env.TUNNELPAIR_LAB_REQUIRED === "1";
const maybe = missingPrerequisites().length === 0 || required ? describe : describe.skip;

maybe("faults in the lab", () => {
    it.each([
        // at least this many (script, step) cases: a run's firewall changes are one step per table
        ["toy", 15],
        ["ps3", 15],
        ["man2", 20],
        ["hub", 40],
    ])("%s: every failing step leaves the host as it was", async (name, atLeast) => {
        const lines: string[] = [];
        const r = await runFaults(name, scenarios[name], (l) => lines.push(l));
        const failed = r.checks.filter((c) => !c.ok);
        console.log(`${lines.join("\n")}\nfaults ${name}: ${r.cases} cases, ${r.checks.length - failed.length} checks passed, ${failed.length} failed`);
        expect(failed).toEqual([]);
        expect(r.cases).toBeGreaterThanOrEqual(atLeast);
    }, 1800_000); // the hub's 69 cases take about 12 minutes
});
