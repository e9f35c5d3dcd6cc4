// Issue 11 in the lab (lab/persistence.ts): with a systemd stand-in on every host, up installs
// the pair's units; a reboot of each host named, then exactly the boot unit's ExecStart,
// gives back the state after up and the flows; a firewall reload, then the repair service,
// the same; an idle repair run changes nothing; destroy restores every host, the unit
// directories included. The IPv6 modes: toy-sit (IPv6 over the toy's IPv4), whose reboot
// gives back IPv6 too; toy-ip6ip6 (over an IPv6 underlay) is left to `npm run lab --
// --persist toy-ip6ip6`, to keep the suite's lab time down.
import { persistencePlans, runPersistence } from "../lab/persistence";
import { scenarios } from "../lab/scenario";
import { expectAllPassed, labDescribe } from "./support/lab";

const inSuite = Object.keys(persistencePlans).filter((name) => name !== "toy-ip6ip6");

labDescribe("persistence and repair in the lab", () => {
    it.each(inSuite)(
        "%s: rebooted hosts and a reloaded firewall come back by themselves",
        async (name) => {
            const lines: string[] = [];
            const plan = persistencePlans[name];
            const r = await runPersistence(name, scenarios[name], plan.reboot, plan.reload, (l) => lines.push(l), { firewalld: plan.firewalld });
            lines.push(`idle repair runs: ${r.idleRepairMs.join(", ")} ms; the converge alone: ${r.idleConvergeMs.join(", ")} ms`);
            expectAllPassed(`persist ${name}`, lines, r.checks);
            if (name === "toy-sit") {
                const count = (re: RegExp) => r.checks.filter((c) => re.test(c.name)).length;
                // each host rebooted lost IPv6's state (its sysctls, addresses, routes, ip6tables
                // as before up) and its boot run brought it back: the ping -6 through sit1 answers
                expect(count(/ rebooted: as before up, IPv6 included, /)).toBe(2);
                expect(count(/^after (doolittle|calculon)'s reboot: .* ping -6 answers$/)).toBe(2);
                // IPv6's own drifts, each put back by one repair run
                expect(count(/the repair run puts back (IPv6 forwarding \(conf\.all\) reset to 0|the jump .* \(ip6tables\) deleted)$/)).toBe(2);
                expect(count(/^destroy restored /)).toBe(2);
            }
        },
        900_000,
    );
});
