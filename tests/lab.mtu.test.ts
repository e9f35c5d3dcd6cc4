// Issue 6's MTU proofs on real kernels (lab/scenario.ts, scenario "mtu"): Man2 with a
// 1400-byte external segment; auto MTU, DF probes at the limit, bulk transfers, and an MTU
// black hole that MSS clamping carries and its absence stalls.
import { missingPrerequisites } from "../lab/lab";
import { runScenario, scenarios } from "../lab/scenario";

const required = process.env.TUNNELPAIR_LAB_REQUIRED === "1";
const maybe = missingPrerequisites().length === 0 || required ? describe : describe.skip;

maybe("MTU and MSS in the lab", () => {
    it("a 1400-byte underlay: the largest packet crosses, one byte more is refused aloud, bulk TCP completes", async () => {
        const lines: string[] = [];
        const report = await runScenario("mtu", scenarios.mtu, (l) => lines.push(l));
        const failed = report.checks.filter((c) => !c.ok);
        console.log(`${lines.join("\n")}\nlab mtu: ${report.checks.length - failed.length} passed, ${failed.length} failed`);
        expect(failed).toEqual([]);
        // six DF probes, the bulk transfer, the black hole carried by the clamp and stalled without it
        expect(report.checks.filter((c) => /DF |bulk TCP|black hole|stalls/.test(c.name)).length).toBe(9);
    });
});
