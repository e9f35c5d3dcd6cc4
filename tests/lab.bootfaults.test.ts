// Fault injection on the boot run (lab/faults.ts runBootFaults): with the units installed by
// up, each host of the toy is rebooted and its boot unit run as systemd would, failing at
// each of the run's changing steps in turn. The unit must fail naming host, step and cause
// (what journalctl -u shows), leave the host as the boot found it, and the next boot run
// must give back the state after up; destroy then restores every host.
import { runBootFaults } from "../lab/faults";
import { persistencePlans } from "../lab/persistence";
import { scenarios } from "../lab/scenario";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("faults in the boot run, in the lab", () => {
    it("toy: every failing step of a boot run leaves the host as the boot found it", async () => {
        const lines: string[] = [];
        const r = await runBootFaults("toy", scenarios.toy, persistencePlans.toy.reboot, (l) => lines.push(l));
        expectAllPassed(`boot faults toy: ${r.cases} cases; checks`, lines, r.checks);
        // each host's boot run changes the host in at least its ip batch and its iptables-restore
        expect(r.cases).toBeGreaterThanOrEqual(2 * persistencePlans.toy.reboot.length);
    }, 900_000);
});
