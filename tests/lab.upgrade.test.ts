// Issue 11 item 4 in the lab (lab/upgrade.ts): hosts deployed by the version before
// persistence (2e9dd54) get the pair's units at the next up, come back after a reboot, and
// destroy restores them exactly, upgraded or not; upgraded hosts are as a fresh deployment.
import { scenarios } from "../lab/scenario";
import { runUpgrade, upgradePlans } from "../lab/upgrade";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("upgrading from the version before persistence, in the lab", () => {
    it.each(Object.keys(upgradePlans))(
        "%s: the next up installs the units, destroy restores every host, upgraded or not",
        async (name) => {
            const lines: string[] = [];
            const r = await runUpgrade(name, scenarios[name], upgradePlans[name].reboot, (l) => lines.push(l));
            lines.push(`lab time: ${r.ms} ms (after waiting ${r.waitedMs} ms for the machine's lab lock)`);
            expectAllPassed(`upgrade ${name}`, lines, r.checks);
        },
        900_000,
    );
});
