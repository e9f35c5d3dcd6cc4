// The toy stack on real kernels through real SSH: boot the lab world, replay up as the
// provider would, check the how-to's flows, replay up again and destroy, and compare each
// host with its state before up (both firewall modes).
import { runScenario, scenarios } from "../lab/scenario";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("the toy stack in the lab", () => {
    it("deploys, carries traffic, is idempotent and is undone exactly", async () => {
        const lines: string[] = [];
        const report = await runScenario("toy", scenarios.toy, (l) => lines.push(l));
        expectAllPassed("lab toy", lines, report.checks);
        // both firewall modes ran every step: flows, idempotency, §4.7, restore
        expect(report.checks.filter((c) => c.name.includes("destroy restored"))).toHaveLength(4);
        expect(report.checks.length).toBeGreaterThanOrEqual(30);
    });
});
