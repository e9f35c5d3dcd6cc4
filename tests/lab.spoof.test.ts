// Anti-spoofing with a forger host in the lab (lab/spoof.ts).
import { missingPrerequisites } from "../lab/lab";
import { runSpoof } from "../lab/spoof";

const required = process.env.TUNNELPAIR_LAB_REQUIRED === "1";
const maybe = missingPrerequisites().length === 0 || required ? describe : describe.skip;

maybe("spoofing in the lab", () => {
    it("drops forged IPIP: wrong outer source, wrong local address, inner source not behind the peer", async () => {
        const lines: string[] = [];
        const checks = await runSpoof((l) => lines.push(l));
        const failed = checks.filter((c) => !c.ok);
        console.log(`${lines.join("\n")}\nspoof: ${checks.length - failed.length} passed, ${failed.length} failed`);
        expect(failed).toEqual([]);
        expect(checks).toHaveLength(6);
    });
});
