// Anti-spoofing with a forger host in the lab (lab/spoof.ts).
import { runSpoof } from "../lab/spoof";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("spoofing in the lab", () => {
    it("drops forged IPIP: wrong outer source, wrong local address, inner source not behind the peer", async () => {
        const lines: string[] = [];
        const checks = await runSpoof((l) => lines.push(l));
        expectAllPassed("spoof", lines, checks);
        expect(checks).toHaveLength(6);
    });
});
