// PS3, Man2 and hub-and-spokes on real kernels through real SSH: every flow the scenario
// lists (lab/scenario.ts: the how-to's §5 and §6) working after up and not before up or after destroy, the sources each far
// end sees (NAT or not), idempotency and exact restore; for the hub, one pair destroyed while
// the other keeps working.
import { runScenario, scenarios } from "../lab/scenario";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("topologies in the lab", () => {
    it.each([
        ["ps3", 20],
        ["man2", 30],
        ["hub", 55],
    ])("%s: every check passes", async (name, atLeast) => {
        const lines: string[] = [];
        const report = await runScenario(name, scenarios[name], (l) => lines.push(l));
        lines.push(`boot ${report.bootMs} ms, up ${report.upMs.join("/")} ms, destroy ${report.destroyMs.join("/")} ms`);
        expectAllPassed(`lab ${name}`, lines, report.checks);
        expect(report.checks.length).toBeGreaterThanOrEqual(atLeast);
        expect(report.checks.filter((c) => c.name.includes("destroy restored")).length).toBeGreaterThanOrEqual(2);
    });
});
