// PS3, Man2 and hub-and-spokes on real kernels through real SSH: every "Must work" flow of
// TOPOLOGIES.md §2 and §3 after up and not before up or after destroy, the sources each far
// end sees (NAT or not), idempotency and exact restore; for the hub, one pair destroyed while
// the other keeps working.
import { missingPrerequisites } from "../lab/lab";
import { runScenario, scenarios } from "../lab/scenario";

const required = process.env.TUNNELPAIR_LAB_REQUIRED === "1";
const maybe = missingPrerequisites().length === 0 || required ? describe : describe.skip;

maybe("topologies in the lab", () => {
    it.each([
        ["ps3", 20],
        ["man2", 30],
        ["hub", 55],
    ])("%s: every check passes", async (name, atLeast) => {
        const lines: string[] = [];
        const report = await runScenario(name, scenarios[name], (l) => lines.push(l));
        const failed = report.checks.filter((c) => !c.ok);
        console.log(`${lines.join("\n")}\nboot ${report.bootMs} ms, up ${report.upMs.join("/")} ms, destroy ${report.destroyMs.join("/")} ms\nlab ${name}: ${report.checks.length - failed.length} passed, ${failed.length} failed`);
        expect(failed).toEqual([]);
        expect(report.checks.length).toBeGreaterThanOrEqual(atLeast);
        expect(report.checks.filter((c) => c.name.includes("destroy restored")).length).toBeGreaterThanOrEqual(2);
    });
});
