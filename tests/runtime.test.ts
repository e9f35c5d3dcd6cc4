// The runtime (components/runtime/*.sh) has, for every kind of object the planner can emit,
// the functions apply and remove dispatch to by name: a kind added to HostObject without its
// section in the runtime fails here, not on a host. The scripts are only defined, never run.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { HostObject, HostPlan, objectLine } from "../components/plan";
import { renderApply, runtimeParts } from "../components/render";

// One or more objects of every kind: the type makes the table exhaustive (a new kind in
// HostObject without an entry here does not compile), and each variant of a kind's line.
const samples: { [K in HostObject["kind"]]: Extract<HostObject, { kind: K }>[] } = {
    link: [{ kind: "link", dev: "tunl1", local: "130.88.198.58", remote: "130.88.196.129", ttl: "inherit" }],
    tunnel: [
        { kind: "tunnel", dev: "gre1", mode: "gre", local: "130.88.198.58", remote: "130.88.196.129", ttl: "inherit", key: 42 },
        { kind: "tunnel", dev: "gre2", mode: "gre", local: "130.88.198.58", remote: "130.88.196.130", ttl: "64" },
    ],
    mtu: [
        { kind: "mtu", dev: "tunl1", value: "auto", peer: "130.88.196.129" },
        { kind: "mtu", dev: "tunl1", value: 1380, peer: "130.88.196.129" },
    ],
    tunmtu: [
        { kind: "tunmtu", dev: "gre1", value: "auto", peer: "130.88.196.129", overhead: 28 },
        { kind: "tunmtu", dev: "gre2", value: 1400, peer: "130.88.196.130", overhead: 24 },
    ],
    state: [{ kind: "state", dev: "tunl1" }],
    addr: [
        { kind: "addr", cidr: "10.0.1.2/24", dev: "tunl1", prefixRoute: false },
        { kind: "addr", cidr: "10.0.1.1/24", dev: "eth0", label: "eth0:0", prefixRoute: true },
        { kind: "addr", cidr: "10.0.0.1/32", dev: "tunl1", prefixRoute: true, peer: "10.0.0.2/32" },
    ],
    route: [
        { kind: "route", dest: "10.0.2.0/24", dev: "tunl1" },
        { kind: "route", dest: "192.168.104.0/24", via: "130.88.198.58" },
    ],
    devsysctl: [{ kind: "devsysctl", dev: "tunl1", key: "rp_filter", value: "2" }],
    gateway: [{ kind: "gateway", via: "192.168.1.253" }],
    noroute: [{ kind: "noroute", dest: "169.254.0.0/16" }],
    sysctl: [{ kind: "sysctl", key: "net/ipv4/ip_forward", value: "1" }],
    chain: [{ kind: "chain", table: "filter", name: "TP-1-IN", rules: ["-A TP-1-IN -j ACCEPT"] }],
    jump: [{ kind: "jump", table: "filter", from: "INPUT", chain: "TP-1-IN" }],
    fwopen: [{ kind: "fwopen" }],
    unit: [{ kind: "unit", name: "tunnelpair-s-p" }],
};
const objects: HostObject[] = Object.values(samples).flat();
const kinds = Object.keys(samples);

const plan: HostPlan = { host: "h", stack: "s", pair: "p", tag: "tunnelpair:s/p", stateDir: "/nonexistent/s/p", objects };
const script = renderApply(plan);
const runtimeDir = path.join(__dirname, "..", "components", "runtime");
const runtimeText = runtimeParts.map((p) => fs.readFileSync(path.join(runtimeDir, `${p}.sh`), "utf8")).join("\n");

/** Runs the rendered script up to (not including) its call of main, then `probe`; prints its output. */
function defined(probe: string): string {
    expect(script.endsWith('\nmain "$@"\n')).toBe(true);
    return execFileSync("sh", ["-c", `${script.slice(0, -'main "$@"\n'.length)}\n${probe}`], { encoding: "utf8" });
}
/** The names among `names` that the runtime does not define as shell functions. */
function missing(names: string[]): string[] {
    const out = defined(names.map((n) => `case "$(command -v ${n})" in ${n}) ;; *) echo ${n} ;; esac`).join("\n"));
    return out.split("\n").filter((l) => l !== "");
}

describe("the runtime's object kinds", () => {
    it("the kind of each object's line is the word it starts with", () => {
        for (const o of objects) expect(objectLine(o).split(" ")[0]).toBe(o.kind);
    });

    it("knows exactly the kinds the planner emits (KINDS)", () => {
        expect(defined('printf "%s\\n" $KINDS').trim().split("\n").sort()).toEqual([...kinds].sort());
    });

    it("defines preflight_, present_, add_ and del_ for every kind", () => {
        expect(missing(kinds.flatMap((k) => ["preflight", "present", "add", "del"].map((verb) => `${verb}_${k}`)))).toEqual([]);
    });

    it("a kind of the iptables batch queues its removal there (queue_del_); a host-wide one saves, sets and restores", () => {
        const ipt = defined(kinds.map((k) => `eval "[ \\"\\$BATCH_${k}\\" != ipt ]" || echo ${k}`).join("\n"))
            .trim()
            .split("\n");
        expect(ipt.sort()).toEqual(["chain", "jump"]);
        const hostwide = kinds.filter((k) => missing([`dir_${k}`]).length === 0);
        expect(hostwide.sort()).toEqual(["fwopen", "gateway", "noroute", "sysctl"]);
        expect(missing([...ipt.map((k) => `queue_del_${k}`), ...hostwide.flatMap((k) => ["save", "set", "restore"].map((verb) => `${verb}_${k}`))])).toEqual(
            [],
        );
    });

    it("defines the function of every undo step the runtime journals", () => {
        const undos = [...runtimeText.matchAll(/journal "(add|del) ([a-z]+)\b/g)].map((m) => `${m[1]}_${m[2]}`);
        expect(undos).toEqual(expect.arrayContaining(["del_newlink", "add_down", "add_link", "del_addr", "del_jump"]));
        expect(missing([...new Set(undos), "chain_restore"])).toEqual([]);
    });

    it("puts together every part in components/runtime", () => {
        expect(fs.readdirSync(runtimeDir).sort()).toEqual(runtimeParts.map((p) => `${p}.sh`).sort());
    });
});
