// Issue 6's MTU proofs on real kernels (lab/scenario.ts, scenario "mtu"): Man2 with a
// 1400-byte external segment; auto MTU, DF probes at the limit, bulk transfers, and an MTU
// black hole that MSS clamping carries and its absence stalls. First issue 14's full-MTU
// probe: up refused where the path narrows past b's first hop, with and without ICMP.
import { runScenario, scenarios } from "../lab/scenario";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("MTU and MSS in the lab", () => {
    it("a 1400-byte underlay: the largest packet crosses, one byte more is refused aloud, bulk TCP completes", async () => {
        const lines: string[] = [];
        const report = await runScenario("mtu", scenarios.mtu, (l) => lines.push(l));
        expectAllPassed("lab mtu", lines, report.checks);
        // six DF probes, the bulk transfer, the black hole carried by the clamp and stalled without it
        expect(report.checks.filter((c) => /^\[firewall owned\] (DF |bulk TCP|MSS clamped|without clamping)/.test(c.name)).length).toBe(9);
        // issue 14's probe, at the end of b's apply on doolittle: refused (the path saying so, then
        // a black hole) and verified with mtu: 1380
        expect(report.checks.filter((c) => /\((b's apply|probe) \d+ ms\)$/.test(c.name)).length).toBe(3);
    });
});
