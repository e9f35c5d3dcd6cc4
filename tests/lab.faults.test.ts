// Fault injection on every stack in the lab (lab/faults.ts): every changing step of every
// create script made to fail in turn, the SSH connection cut mid-run, and a destroy after a
// partial up. The host must be left as before each failure and converge on a rerun.
import { runFaults } from "../lab/faults";
import { scenarios } from "../lab/scenario";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("faults in the lab", () => {
    it.each([
        // at least this many (script, step) cases: a run's firewall changes are one step per table
        ["toy", 15],
        ["ps3", 15],
        ["man2", 20],
        ["hub", 40],
    ])(
        "%s: every failing step leaves the host as it was",
        async (name, atLeast) => {
            const lines: string[] = [];
            const r = await runFaults(name, scenarios[name], (l) => lines.push(l));
            expectAllPassed(`faults ${name}: ${r.cases} cases; checks`, lines, r.checks);
            expect(r.cases).toBeGreaterThanOrEqual(atLeast);
        },
        1800_000,
    ); // the hub's 69 cases take about 12 minutes
});
