// The rendered scripts: pinned by snapshots, valid POSIX sh, clean under shellcheck, and
// quoting every value they interpolate.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { FirewallMode } from "../components/model";
import { planEndpoint, planVerify } from "../components/plan";
import { commandString, renderApply, renderConverge, renderRemove, renderVerify, runtimeParts, shellQuote } from "../components/render";
import { validateConfig } from "../components/validate";
import { stackModel, toyConfig } from "./support/toy";

function toyModel(firewall: FirewallMode = "owned") {
    const c = toyConfig();
    c.pairs.toy.firewall = firewall;
    return validateConfig(c, { stack: "toy" });
}

function scripts(): [string, string][] {
    const out: [string, string][] = [];
    for (const mode of ["owned", "open", "none"] as const) {
        const m = toyModel(mode);
        for (const side of ["a", "b"] as const) {
            const plan = planEndpoint(m, m.pairs[0], side);
            // (the deployer's apply holds this text and evals it: see the test of its wrapper)
            out.push([`apply ${mode} ${side}`, renderConverge(plan)], [`remove ${mode} ${side}`, renderRemove(plan)]);
        }
    }
    out.push(["verify", verifyScript()]);
    for (const stack of modeStacks) {
        const m = stackModel(stack);
        for (const side of ["a", "b"] as const) {
            const plan = planEndpoint(m, m.pairs[0], side);
            out.push([`${stack} apply ${side}`, renderConverge(plan)], [`${stack} remove ${side}`, renderRemove(plan)]);
        }
        out.push([`${stack} verify`, renderVerify(planVerify(m, m.pairs[0])!, "a")]);
    }
    return out;
}

/** The example stacks of the modes beyond ipip (issue #15), one per mode rendered so far. */
const modeStacks = ["toy-gre", "toy-sit", "toy-ipip6", "toy-ip6ip6"];

function verifyScript(): string {
    const m = toyModel();
    return renderVerify(planVerify(m, m.pairs[0])!, "a");
}

describe("rendered scripts", () => {
    it("match the snapshots for the toy's two hosts", () => {
        const m = toyModel();
        for (const side of ["a", "b"] as const) {
            const plan = planEndpoint(m, m.pairs[0], side);
            expect(renderApply(plan)).toMatchSnapshot(`apply ${side}`);
            expect(renderRemove(plan)).toMatchSnapshot(`remove ${side}`);
        }
        expect(verifyScript()).toMatchSnapshot("verify");
    });

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-render-"));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it.each(scripts())("%s passes sh -n and shellcheck", (name, script) => {
        const file = path.join(dir, `${name.replace(/ /g, "-")}.sh`);
        fs.writeFileSync(file, script);
        execFileSync("sh", ["-n", file]);
        // shellcheck exits non-zero on any finding, warnings and notes included
        execFileSync("shellcheck", ["--shell=sh", "--severity=style", file], { encoding: "utf8" });
    });

    it("starts with set -eu (the probe, a function of b's apply: set +e -u) and uses ip, never ifconfig or route", () => {
        for (const [name, s] of scripts()) {
            // the first command, after the shebang and the header's comments
            const lines = s.split("\n").filter((l) => !l.startsWith("#"));
            expect(name.endsWith("verify") ? lines.slice(0, 2) : lines[0]).toEqual(name.endsWith("verify") ? ["verify_pair() (", "set +e -u"] : "set -eu");
            expect(s).not.toMatch(/\bifconfig\b|^\s*route (add|del)/m);
        }
    });

    it("a persisted pair's apply holds its converge script's text and runs it: what the units store and run", () => {
        const plan = planEndpoint(toyModel(), toyModel().pairs[0], "a");
        const apply = renderApply(plan);
        expect(apply).toMatch(/^TP_SCRIPT='[^]*'\neval "\$TP_SCRIPT"\n$/);
        // the value the shell gives TP_SCRIPT is the converge script, less its last newline
        const held = execFileSync("sh", ["-c", apply.replace(/eval "\$TP_SCRIPT"\n$/, 'printf %s "$TP_SCRIPT"')], { encoding: "utf8" });
        expect(`${held}\n`).toBe(renderConverge(plan));
        expect(renderConverge(plan)).toContain("\nUNIT_SERVICE='[Unit]\n");
        // without persistence the apply is the converge script itself
        const m = validateConfig({ ...toyConfig(), pairs: { toy: { ...toyConfig().pairs.toy, persist: "none" } } }, { stack: "toy" });
        const none = planEndpoint(m, m.pairs[0], "a");
        expect(renderApply(none)).toBe(renderConverge(none));
        expect(renderApply(none)).not.toMatch(/^TP_SCRIPT=/);
    });

    it("b's apply ends with the probe, run before main; the script the units store has none", () => {
        const m = toyModel();
        const probe = renderVerify(planVerify(m, m.pairs[0])!, "a");
        const plan = planEndpoint(m, m.pairs[0], "b");
        const apply = renderApply(plan, probe);
        expect(apply).toMatch(
            /^TP_SCRIPT='[^]*'\n# tunnelpair tunnelpair:toy\/toy: the verification on calculon, after doolittle's deployment [0-9a-f]{16}\nverify_pair\(\) \(\n[^]*\n\)\neval "\$TP_SCRIPT"\n$/,
        );
        const held = execFileSync("sh", ["-c", apply.replace(/eval "\$TP_SCRIPT"\n$/, 'printf %s "$TP_SCRIPT"')], { encoding: "utf8" });
        expect(`${held}\n`).toBe(renderConverge(plan));
        expect(held).not.toContain("verify_pair() (");
        // without persistence: the probe's function before main
        const none = validateConfig({ ...toyConfig(), pairs: { toy: { ...toyConfig().pairs.toy, persist: "none" } } }, { stack: "toy" });
        const bare = planEndpoint(none, none.pairs[0], "b");
        expect(renderApply(bare, probe)).toBe(renderConverge(bare).replace(/\nmain "\$@"\n$/, `\n${probe}\nmain "$@"\n`));
        // the function is defined by the script, and the runtime calls it before the commit
        const defined = execFileSync("sh", ["-c", `${renderApply(bare, probe).replace(/\nmain "\$@"\n$/, "\n")}command -v verify_pair`], { encoding: "utf8" });
        expect(defined).toBe("verify_pair\n");
    });

    it("only a script holding units takes a run without TP_SCRIPT for the units' run of its stored copy", () => {
        // the script's definitions, then from_file alone (it reads only $STATE/converge, here missing)
        const fromFile = (script: string) =>
            execFileSync("sh", ["-c", `${script.replace(/\nmain "\$@"\n$/, "\n")}STATE=/nonexistent/s/p\nfrom_file\necho "from file: $FROM_FILE"`], {
                encoding: "utf8",
            });
        const m = validateConfig({ ...toyConfig(), pairs: { toy: { ...toyConfig().pairs.toy, persist: "none" } } }, { stack: "toy" });
        // persist: none: the apply is the deployer's, and goes on to converge the host
        expect(fromFile(renderApply(planEndpoint(m, m.pairs[0], "a")))).toBe("from file: 0\n");
        // the stored converge of a persisted pair, run by its units: no stored copy, nothing to do
        expect(fromFile(renderConverge(planEndpoint(toyModel(), toyModel().pairs[0], "a")))).toBe(
            "tunnelpair[tunnelpair:toy/toy@doolittle]: no stored script: the pair is not deployed here\n",
        );
    });

    it("bounds every wait: iptables -w, flock -w", () => {
        const s = renderApply(planEndpoint(toyModel(), toyModel().pairs[0], "a"));
        expect(s).toContain('iptables -w "$IPT_WAIT"');
        expect(s).toContain('iptables-restore -w "$IPT_WAIT"');
        expect(s).toContain('flock -w "$LOCK_WAIT" 9');
        expect(s).not.toMatch(/iptables (-t \S+ )?-[ADIC] /);
    });

    it("the probe changes nothing and bounds its wait", () => {
        const s = verifyScript();
        expect(s).not.toMatch(/\bip (-\S+ )*(link|addr|route) (add|del|set|replace)|iptables|\/proc\/sys|>\s*\/(?!dev\/null)/);
        expect(s).toContain('ping -n -q -c 1 -W 1 -I "$FROM" "$TO"');
        expect(s).toMatch(/while \[ "\$n" -lt "\$TRIES" \]/);
        // the full-MTU echoes: DF, one second each, a bounded search (tests/verify.test.ts runs it)
        expect(s).toContain('ping -n -M "do" -c 1 -W 1 -s $(($1 - 28)) -I "$FROM" "$TO"');
        expect(s).toMatch(/\nTRIES=5\nSEARCH=11 /);
        // the digest of a's deployment: another deployment, another script
        expect(renderVerify(planVerify(toyModel(), toyModel().pairs[0])!, "c")).not.toBe(s);
    });

    it("matches IPIP by protocol number 4, never by the name ipip (94)", () => {
        const s = renderApply(planEndpoint(toyModel(), toyModel().pairs[0], "a"));
        expect(s).toContain("-p 4 -j ACCEPT");
        expect(s).not.toMatch(/-p ipip/);
    });
});

describe("shell quoting", () => {
    it.each([["plain"], ["it's"], ["a b"], ["$(reboot)"], ["`x`"], ["'"], [""], ["a\nb"]])("round-trips %j through sh", (value) => {
        const out = execFileSync("sh", ["-c", `printf '%s' ${shellQuote(value)}`], { encoding: "utf8" });
        expect(out).toBe(value);
    });

    it("wraps the script for sudo without a prompt", () => {
        expect(commandString("echo 'hi'", true)).toBe(`sudo -n /bin/sh -c 'echo '\\''hi'\\'''`);
        expect(commandString("true", false)).toBe("/bin/sh -c 'true'");
    });
});

/**
 * `script` with each runtime part it holds verbatim (as written, or quoted inside the apply's
 * TP_SCRIPT) shown as "<runtime part NAME>": the same text in every apply and remove script,
 * whole in the toy's and toy-gre's snapshots (every part is in toy-gre's), so the other modes'
 * snapshots keep only what is theirs (the verification script, rendered, stays whole). A part
 * changed or missing in a script is not replaced, and the snapshot fails.
 */
function runtimeMarked(script: string): string {
    let s = script;
    for (const part of runtimeParts.map((p) => `runtime/${p}.sh`)) {
        const text = fs.readFileSync(path.join(__dirname, "../components", part), "utf8");
        for (const form of [text, shellQuote(text).slice(1, -1)]) s = s.split(form).join(`<runtime part ${part}>`);
    }
    return s;
}

// Issue 15: the modes beyond ipip. An ipip pair's scripts hold none of their runtime (the
// snapshots above are those of the version before them); a pair of another mode has its own.
describe("the scripts of the other modes", () => {
    it.each(modeStacks)("%s: match the snapshots", (stack) => {
        const m = stackModel(stack);
        const shown = stack === "toy-gre" ? (s: string) => s : runtimeMarked;
        for (const side of ["a", "b"] as const) {
            const plan = planEndpoint(m, m.pairs[0], side);
            expect(shown(renderApply(plan))).toMatchSnapshot(`${stack} apply ${side}`);
            expect(shown(renderRemove(plan))).toMatchSnapshot(`${stack} remove ${side}`);
        }
        expect(shown(renderVerify(planVerify(m, m.pairs[0])!, "a"))).toMatchSnapshot(`${stack} verify`);
    });

    it("an ipip pair's scripts hold no part of the other modes' runtime; a gre pair's apply and remove do", () => {
        const part = "# --- the tunnel modes beyond ipip (issue #15)";
        const toy = toyModel();
        const gre = stackModel("toy-gre");
        for (const m of [toy, gre]) {
            const plan = planEndpoint(m, m.pairs[0], "a");
            for (const s of [renderConverge(plan), renderRemove(plan)]) expect(s.includes(part)).toBe(m === gre);
        }
    });

    it("no script holds SC2317's exemption: no function of the runtime is defined twice, so none is unreachable", () => {
        for (const [, s] of scripts()) expect(s).not.toContain("SC2317");
    });

    it("SIT: the device, the MTU less 20, protocol 41 in iptables only, the IPv6 rules and forwarding in ip6tables' tables", () => {
        const m = stackModel("toy-sit");
        const plan = planEndpoint(m, m.pairs[0], "a");
        const s = renderConverge(plan);
        const p = "TP-" + /TP-([0-9a-f]{8})-IN /.exec(s)![1];
        expect(s).toContain("tunnel sit1 sit 130.88.198.58 130.88.196.129 inherit -\n");
        expect(s).toContain("tunmtu sit1 auto 130.88.196.129 20\n");
        expect(s).toContain("sysctl net/ipv6/conf/all/forwarding 1\n");
        expect(s).not.toContain("net/ipv4/ip_forward 1");
        expect(s).toContain("addr fd00:0:0:1::2/64 sit1 - noprefixroute\n");
        expect(s).toContain("addr fd00:0:0:1::1/64 eth0 - noprefixroute\n");
        expect(s).toContain("route fd00:0:0:2::/64 dev sit1\n");
        // the underlay's rules: protocol 41 from and to the peer, nothing else, in iptables' filter
        expect(s).toContain(`chain filter ${p}-IN\n`);
        expect(s).toContain(`${p}-IN) _rules='-A ${p}-IN -s 130.88.196.129/32 -d 130.88.198.58/32 -p 41 -j ACCEPT\n' ;;`);
        expect(s).toContain(`${p}-OUT) _rules='-A ${p}-OUT -s 130.88.198.58/32 -d 130.88.196.129/32 -p 41 -j ACCEPT\n' ;;`);
        // what the tunnel carries: in filter6 (ip6tables' filter), the inner sources checked
        for (const c of ["SRC6", "IN6", "OUT6", "FWD6"]) expect(s).toContain(`chain filter6 ${p}-${c}\n`);
        // (b's tunnel address is inside b's network, which a routes into the tunnel)
        expect(s).toContain(`${p}-SRC6) _rules='-A ${p}-SRC6 -s fd00:0:0:2::/64 -j RETURN\n-A ${p}-SRC6 -j DROP\n' ;;`);
        expect(s).toContain(`-A ${p}-IN6 -i sit1 -s fd00:0:0:2::2/128 -d fd00:0:0:1::2/128 -p ipv6-icmp -j ACCEPT`);
        expect(s).toContain(`jump filter6 FORWARD ${p}-FWD6\n`);
        expect(s).toContain(`chain mangle6 ${p}-MSS6\n`);
        expect(s).not.toMatch(/-p (4|47|icmp) /);
        const v = renderVerify(planVerify(m, m.pairs[0])!, "a");
        expect(v).toContain("$((mtu + 20))-byte packets (the MTU and SIT's 20 bytes)");
        expect(v).toContain("its firewall admitting protocol 41 from $LOCAL");
        expect(v).toContain('ping -6 -n -M "do" -c 1 -W 1 -s $(($1 - 48))');
        expect(v).toContain('ping -6 -n -q -c 1 -W 1 -I "$FROM" "$TO"');
        expect(v).toContain("FLOOR=1280");
        expect(v).toContain('ip -6 -o route get "$TO"');
        expect(v).not.toMatch(/ping -n|ip -4 /);
    });

    it("ip6ip6: the ip6tnl device between the IPv6 underlay addresses, the MTU less 40, next header 41 from the peer only, all in ip6tables", () => {
        const m = stackModel("toy-ip6ip6");
        const s = renderConverge(planEndpoint(m, m.pairs[0], "a"));
        const p = "TP-" + /TP-([0-9a-f]{8})-IN6 /.exec(s)![1];
        expect(s).toContain("tunnel ip6tnl1 ip6ip6 2001:db8:88::58 2001:db8:88::129 inherit -\n");
        expect(s).toContain("tunmtu ip6tnl1 auto 2001:db8:88::129 40\n");
        expect(s).toContain("sysctl net/ipv6/conf/all/forwarding 1\n");
        // underlay and overlay of one family share the IN6 and OUT6 chains, the underlay's rule first
        expect(s).toContain(
            `${p}-IN6) _rules='-A ${p}-IN6 -s 2001:db8:88::129/128 -d 2001:db8:88::58/128 -p 41 -j ACCEPT\n-A ${p}-IN6 -i ip6tnl1 -j ${p}-SRC6\n`,
        );
        expect(s).toContain(`${p}-OUT6) _rules='-A ${p}-OUT6 -s 2001:db8:88::58/128 -d 2001:db8:88::129/128 -p 41 -j ACCEPT\n`);
        expect(s).toContain(`-A ${p}-IN6 -i ip6tnl1 -s fd00:0:0:2::2/128 -d fd00:0:0:1::2/128 -p ipv6-icmp -j ACCEPT`);
        expect(s).not.toMatch(/^(chain|jump) (filter|mangle|nat) /m);
        const v = renderVerify(planVerify(m, m.pairs[0])!, "a");
        expect(v).toContain("$((mtu + 40))-byte packets (the MTU and ip6ip6's 40 bytes)");
        expect(v).toContain("its firewall admitting protocol 41 from $LOCAL");
        expect(v).toContain('ping -6 -n -q -c 1 -W 1 -I "$FROM" "$TO"');
    });

    it("ipip6: next header 4 from the peer in ip6tables chains of their own; what the tunnel carries in iptables, as the toy's", () => {
        const m = stackModel("toy-ipip6");
        const s = renderConverge(planEndpoint(m, m.pairs[0], "a"));
        const p = "TP-" + /TP-([0-9a-f]{8})-IN6 /.exec(s)![1];
        expect(s).toContain("tunnel ip6tnl1 ipip6 2001:db8:88::58 2001:db8:88::129 inherit -\n");
        expect(s).toContain("tunmtu ip6tnl1 auto 2001:db8:88::129 40\n");
        expect(s).toContain("sysctl net/ipv4/ip_forward 1\n");
        expect(s).toContain(`${p}-IN6) _rules='-A ${p}-IN6 -s 2001:db8:88::129/128 -d 2001:db8:88::58/128 -p 4 -j ACCEPT\n' ;;`);
        expect(s).toContain(`${p}-OUT6) _rules='-A ${p}-OUT6 -s 2001:db8:88::58/128 -d 2001:db8:88::129/128 -p 4 -j ACCEPT\n' ;;`);
        expect(s).toContain(`${p}-IN) _rules='-A ${p}-IN -i ip6tnl1 -j ${p}-SRC\n-A ${p}-IN -i ip6tnl1 -s 10.0.2.2/32 -d 10.0.1.2/32 -p icmp -j ACCEPT\n' ;;`);
        for (const l of ["chain filter6 ${p}-IN6", "chain filter6 ${p}-OUT6", "chain filter ${p}-SRC", "chain filter ${p}-FWD", "chain mangle ${p}-MSS"])
            expect(s).toContain(l.replace("${p}", p) + "\n");
        expect(s).toContain("addr 10.0.1.1/24 eth0 eth0:0 noprefixroute\n");
        const v = renderVerify(planVerify(m, m.pairs[0])!, "a");
        expect(v).toContain("$((mtu + 40))-byte packets (the MTU and ipip6's 40 bytes)");
        expect(v).toContain("its firewall admitting protocol 4 from $LOCAL");
        expect(v).toContain('ping -n -q -c 1 -W 1 -I "$FROM" "$TO"');
        expect(v).not.toContain("ping -6");
    });

    it("GRE: the device with its key, the MTU less 28, protocol 47 admitted from the peer only", () => {
        const m = stackModel("toy-gre");
        const plan = planEndpoint(m, m.pairs[0], "a");
        const s = renderConverge(plan);
        expect(s).toContain("tunnel gre1 gre 130.88.198.58 130.88.196.129 inherit 42\n");
        expect(s).toContain("tunmtu gre1 auto 130.88.196.129 28\n");
        expect(s).toContain("-A TP-77f2ed9d-IN -s 130.88.196.129/32 -d 130.88.198.58/32 -p 47 -j ACCEPT");
        expect(s).not.toMatch(/-p 4 /);
        const v = renderVerify(planVerify(m, m.pairs[0])!, "a");
        expect(v).toContain("$((mtu + 28))-byte packets (the MTU and GRE's 28 bytes)");
        expect(v).toContain("its firewall admitting protocol 47 from $LOCAL");
        expect(v).not.toContain("protocol 4 ");
    });
});
