// The toy stack on real kernels through real SSH: boot the lab world, replay up as the
// provider would, check the how-to's flows, replay up again and destroy, and compare each
// host with its state before up (both firewall modes).
import { missingPrerequisites } from "../lab/lab";
import { runScenario, scenarios } from "../lab/scenario";

const required = process.env.TUNNELPAIR_LAB_REQUIRED === "1";
const missing = missingPrerequisites();
const maybe = missing.length === 0 || required ? describe : describe.skip;

maybe("the toy stack in the lab", () => {
    it("deploys, carries traffic, is idempotent and is undone exactly", async () => {
        const lines: string[] = [];
        const report = await runScenario("toy", scenarios.toy, (l) => lines.push(l));
        const failed = report.checks.filter((c) => !c.ok);
        console.log(`${lines.join("\n")}\nlab toy: ${report.checks.length - failed.length} passed, ${failed.length} failed`);
        expect(failed).toEqual([]);
        // both firewall modes ran every step: flows, idempotency, §4.7, restore
        expect(report.checks.filter((c) => c.name.includes("destroy restored"))).toHaveLength(4);
        expect(report.checks.length).toBeGreaterThanOrEqual(30);
    });
});
