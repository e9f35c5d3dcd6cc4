// Issue 11 in the lab (lab/persistence.ts): with a systemd stand-in on every host, up installs
// the pair's units; a reboot of each host named, then exactly the boot unit's ExecStart,
// gives back the state after up and the flows; a firewall reload, then the repair service,
// the same; an idle repair run changes nothing; destroy restores every host, the unit
// directories included.
import { persistencePlans, runPersistence } from "../lab/persistence";
import { scenarios } from "../lab/scenario";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("persistence and repair in the lab", () => {
    it.each(Object.keys(persistencePlans))(
        "%s: rebooted hosts and a reloaded firewall come back by themselves",
        async (name) => {
            const lines: string[] = [];
            const plan = persistencePlans[name];
            const r = await runPersistence(name, scenarios[name], plan.reboot, plan.reload, (l) => lines.push(l), { firewalld: plan.firewalld });
            lines.push(`idle repair runs: ${r.idleRepairMs.join(", ")} ms; the converge alone: ${r.idleConvergeMs.join(", ")} ms`);
            expectAllPassed(`persist ${name}`, lines, r.checks);
        },
        900_000,
    );
});
