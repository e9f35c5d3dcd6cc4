// Issue 13 in the lab: the toy re-addressed as other tools address a tunnel (a shared /30, an
// RFC 3021 /31, point to point), both firewall modes: flows through tunl1, the kernel's route
// reaching the peer (and coming back by itself after the device went down), idempotency, and
// every host restored exactly by destroy.
import { runScenario, scenarios } from "../lab/scenario";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("the toy, addressed three more ways, in the lab", () => {
    it.each(["toy-30", "toy-31", "toy-peer"])("%s: every check passes", async (name) => {
        const lines: string[] = [];
        const report = await runScenario(name, scenarios[name], (l) => lines.push(l));
        lines.push(`boot ${report.bootMs} ms, up ${report.upMs.join("/")} ms, destroy ${report.destroyMs.join("/")} ms`);
        expectAllPassed(`lab ${name}`, lines, report.checks);
        for (const mode of ["owned", "open"]) {
            const ran = (what: string) => report.checks.filter((c) => c.name.startsWith(`[firewall ${mode}] `) && c.name.includes(what)).length;
            expect([mode, ran("destroy restored"), ran("by the kernel's route"), ran("is back by itself"), ran("after up:"), ran("rerun left")]).toEqual([
                mode,
                2,
                1,
                1,
                2,
                2,
            ]);
        }
    });
});
