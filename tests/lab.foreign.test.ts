// Foreign and pre-existing state (lab/foreign.ts): a device that is not ours, an address the
// admin had, ip_forward already on, DROP policies, the admin's rules added after up, the
// firewall reloaded between up and destroy.
import { runForeign } from "../lab/foreign";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("foreign state in the lab", () => {
    it("toy: what the pair does not own, it leaves as it finds it", async () => {
        const lines: string[] = [];
        const checks = await runForeign((l) => lines.push(l));
        expectAllPassed("foreign", lines, checks);
        expect(checks.length).toBeGreaterThanOrEqual(25);
    });
});
