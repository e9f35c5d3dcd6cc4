// The tunnel modes beyond ipip on real kernels (issue #15): the toy stack as a GRE tunnel with
// key 42 (stacks/Pulumi.toy-gre.yaml) through the toy's checks in both firewall modes, with
// GRE's own (device, key, MTU less 28, protocol 47 admitted from the peer only), then its
// fault injection; the toy as SIT (stacks/Pulumi.toy-sit.yaml), IPv6 between the aliases in a
// world with IPv6, in firewall modes owned and none; the toy over an IPv6 underlay
// (lab/worlds/toy6.yaml) as ipip6 (its IPv4 flow) and ip6ip6 (IPv6 between the aliases), in both
// modes too. Five lab boots, a few minutes of the suite's wall time.
import { runFaults } from "../lab/faults";
import { runScenario, scenarios } from "../lab/scenario";
import { expectAllPassed, labDescribe } from "./support/lab";

labDescribe("the tunnel modes in the lab", () => {
    it("GRE: the toy-gre stack deploys, carries traffic, is idempotent and is undone exactly", async () => {
        const lines: string[] = [];
        const report = await runScenario("toy-gre", scenarios["toy-gre"], (l) => lines.push(l));
        expectAllPassed("lab toy-gre", lines, report.checks);
        expect(report.checks.filter((c) => c.name.includes("destroy restored"))).toHaveLength(4);
        // GRE's own checks ran: the device and its MTU on both ends in both modes, the rules in owned
        expect(report.checks.filter((c) => /gre1 is a gre device .* with key 42|gre1 MTU is auto|naming protocol 47/.test(c.name))).toHaveLength(10);
        // (startLab may first wait up to 600 s for another process's lab)
    }, 1200_000);

    it("GRE: every failing step of the toy-gre scripts leaves the host as it was", async () => {
        const lines: string[] = [];
        const r = await runFaults("toy-gre", scenarios["toy-gre"], (l) => lines.push(l));
        expectAllPassed(`faults toy-gre: ${r.cases} cases; checks`, lines, r.checks);
        expect(r.cases).toBeGreaterThanOrEqual(15);
    }, 1800_000);

    it("SIT: the toy-sit stack carries IPv6 over IPv4, is idempotent and is undone exactly (ip6tables and IPv6 sysctls included)", async () => {
        const lines: string[] = [];
        const report = await runScenario("toy-sit", scenarios["toy-sit"], (l) => lines.push(l));
        expectAllPassed("lab toy-sit", lines, report.checks);
        expect(report.checks.filter((c) => c.name.includes("destroy restored"))).toHaveLength(4);
        expect(report.checks.filter((c) => /after up: .* ping -6 answers/.test(c.name))).toHaveLength(2);
        // SIT's own checks ran: device, MTU, addresses, forwarding on both ends in both modes; the rules and the doctor in owned
        expect(
            report.checks.filter((c) => /sit1 is a sit device of mode ip6ip|sit1 MTU is auto|IPv6 forwarding 1|MSS leaving by sit1 clamped/.test(c.name)),
        ).toHaveLength(16);
        expect(report.checks.filter((c) => /naming protocol 41|ip6tables holds the pair's chains|the doctor/.test(c.name))).toHaveLength(8);
        // a router's default route: turning IPv6 forwarding on refused, nothing changed (owned)
        expect(report.checks.filter((c) => /refuses to turn it on, naming eth0|the rerun finds the pair as it was/.test(c.name))).toHaveLength(2);
    }, 1200_000);
    for (const mode of ["ipip6", "ip6ip6"] as const) {
        it(`${mode}: the toy-${mode} stack carries the toy over an IPv6 underlay through ip6tnl1, is idempotent and is undone exactly`, async () => {
            const lines: string[] = [];
            const report = await runScenario(`toy-${mode}`, scenarios[`toy-${mode}`], (l) => lines.push(l));
            expectAllPassed(`lab toy-${mode}`, lines, report.checks);
            expect(report.checks.filter((c) => c.name.includes("destroy restored"))).toHaveLength(4);
            // ip6tnl's own checks ran: device and MTU on both ends in both modes; the probe's
            // failure and recovery in both; the rules, the pair's rule alone and the doctor in owned
            expect(report.checks.filter((c) => /ip6tnl1 is an ip6tnl device of mode|ip6tnl1 MTU is auto/.test(c.name))).toHaveLength(8);
            expect(report.checks.filter((c) => /\] verify with next header|\] verify after: verified through ip6tnl1/.test(c.name))).toHaveLength(4);
            expect(
                report.checks.filter((c) => /the ip6tables rules naming next header|by the pair's rule alone|the doctor finds nothing wrong/.test(c.name)),
            ).toHaveLength(4);
        }, 1200_000);
    }
});
