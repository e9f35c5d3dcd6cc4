// Fault injection on every stack in the lab (lab/faults.ts): every changing step of every
// create script made to fail in turn, the SSH connection cut mid-run, and a destroy after a
// partial up. The host must be left as before each failure and converge on a rerun.
import { runFaults } from "../lab/faults";
import { scenarios } from "../lab/scenario";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("faults in the lab", () => {
    it.each([
        // at least this many (script, step) cases: a run's firewall changes are one step per table
        // (the hub: the scripts of rfe, the router both its pairs share; its others are man2's
        // and the toy's, covered by their own runs)
        ["toy", 15, undefined],
        ["ps3", 15, undefined],
        ["man2", 20, undefined],
        ["hub", 12, ["rfe"]],
    ])(
        "%s: every failing step leaves the host as it was",
        async (name, atLeast, hosts) => {
            const lines: string[] = [];
            const r = await runFaults(name, scenarios[name], (l) => lines.push(l), { hosts });
            expectAllPassed(`faults ${name}: ${r.cases} cases; checks`, lines, r.checks);
            expect(r.cases).toBeGreaterThanOrEqual(atLeast);
        },
        1800_000,
    );
});
