// Foreign and pre-existing state (lab/foreign.ts): a device that is not ours, an address the
// admin had, ip_forward already on, DROP policies, the admin's rules added after up, the
// firewall reloaded between up and destroy.
import { runForeign } from "../lab/foreign";
import { missingPrerequisites } from "../lab/lab";

const required = process.env.TUNNELPAIR_LAB_REQUIRED === "1";
const maybe = missingPrerequisites().length === 0 || required ? describe : describe.skip;

maybe("foreign state in the lab", () => {
    it("toy: what the pair does not own, it leaves as it finds it", async () => {
        const lines: string[] = [];
        const checks = await runForeign((l) => lines.push(l));
        const failed = checks.filter((c) => !c.ok);
        console.log(`${lines.join("\n")}\nforeign: ${checks.length - failed.length} passed, ${failed.length} failed`);
        expect(failed).toEqual([]);
        expect(checks.length).toBeGreaterThanOrEqual(25);
    });
});
