// The runtime (components/runtime/*.sh) has, for every kind of object the planner can emit,
// the functions apply and remove dispatch to by name: a kind added to HostObject without its
// section in the runtime fails here, not on a host. The scripts are only defined, never run.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { HostObject, HostPlan, objectLine, planEndpoint } from "../components/plan";
import { renderApply, renderConverge, renderRemove, runtimeParts } from "../components/render";
import { stackModel } from "./support/toy";

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

// Each function of the runtime is defined in one part: a part that redefined another's (as
// ipv6.sh did) would leave two texts of one function, one of them dead.
describe("the runtime's functions", () => {
    it("are each defined once, in one part", () => {
        const where = new Map<string, string[]>();
        for (const p of runtimeParts) {
            const text = fs.readFileSync(path.join(runtimeDir, `${p}.sh`), "utf8");
            for (const m of text.matchAll(/^([A-Za-z_][A-Za-z0-9_]*)\(\)/gm)) where.set(m[1], [...(where.get(m[1]) ?? []), p]);
        }
        expect(where.size).toBeGreaterThan(100);
        expect([...where].filter(([, ps]) => ps.length > 1)).toEqual([]);
    });
});

// read_text reads small files by the shell where a program did: it must give exactly what
// the program gave (cat's text for slurp, head's for load_files), whatever the file holds.
describe("files read by the shell", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-read-"));
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
    const texts: [string, string][] = [
        ["lines", "own sysctl net/ipv4/ip_forward 1\nhad addr 10.0.1.1/24 eth0\n"],
        ["no last newline", "a\nb"],
        ["blank lines, trailing too", "\n  two spaces\n\n\tand a tab\\n back\\slash *\n\n\n"],
        ["empty", ""],
        ["one newline", "\n"],
    ];
    it.each(texts)("%s: read_text as cat, slurp as $(cat) and a newline, load_files' manifest as head's", (_, text) => {
        const state = path.join(dir, "state");
        fs.mkdirSync(state, { recursive: true });
        fs.writeFileSync(path.join(state, "manifest"), text);
        const probe = [
            `STATE=${state}; DESIRED=`,
            `read_text "$STATE/manifest"; printf '%s' "$_t" >${dir}/read`,
            `slurp "$STATE/manifest"; printf '%s' "$_c" >${dir}/slurp`,
            `_c=$(cat "$STATE/manifest"); printf '%s' "\${_c:+$_c$NL}" >${dir}/cat`,
            `load_files; printf '%s' "$FILES" >${dir}/files`,
            `printf '%s' "$NL$(head -n 999999999 "$STATE/manifest" /dev/null)" >${dir}/head`,
        ].join("\n");
        execFileSync("dash", ["-c", `${script.slice(0, -'main "$@"\n'.length)}\n${probe}`], { encoding: "utf8" });
        const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
        expect(read("read")).toBe(text);
        expect(read("slurp")).toBe(read("cat"));
        expect(read("files")).toBe(read("head"));
    });
});

/**
 * Every program a converge and a destroy of `plan` start, run by dash with a PATH of stubs only:
 * `ip`, the xtables programs, flock and modprobe print the host's state from files of the test
 * (`files(after)`: before the apply, or after it for the destroy) and record their calls; the
 * coreutils the runtime uses are recorded and then run. sysctls are files of the test too: the
 * run touches nothing of this machine but its own scratch directory.
 */
function programsStarted(plan: HostPlan, files: (after: boolean) => Record<string, string>): { apply: string[]; remove: string[] } {
    const t = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-programs-"));
    try {
        const bin = path.join(t, "bin");
        fs.mkdirSync(bin);
        const cat = "/bin/cat";
        const stub = (name: string, body: string) =>
            fs.writeFileSync(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >>${t}/log\n${body}\n`, { mode: 0o755 });
        stub(
            "ip",
            [
                'case "$*" in',
                `    "-4 -o -force -batch -") ${cat} >/dev/null; ${cat} ${t}/ip4 ;;`,
                `    "-6 -o -force -batch -") ${cat} >/dev/null; ${cat} ${t}/ip6 ;;`,
                `    *"-batch -") ${cat} >/dev/null ;;`,
                '    "-d -o link show "*) exit 1 ;;',
                "esac",
            ].join("\n"),
        );
        for (const fam of ["", "6"]) {
            stub(`ip${fam}tables-save`, `${cat} ${t}/save${fam || "4"}`);
            stub(`ip${fam}tables-restore`, `${cat} >/dev/null`);
            stub(`ip${fam}tables`, "");
        }
        for (const p of ["flock", "modprobe"]) stub(p, "");
        for (const p of ["cat", "head", "mkdir", "mv", "rm", "rmdir", "tr", "ln", "chmod"]) {
            const real = execFileSync("sh", ["-c", `command -v ${p}`], { encoding: "utf8" }).trim();
            stub(p, `exec ${real} "$@"`);
        }
        for (const [k, v] of Object.entries({ "net/ipv4/ip_forward": "0", "net/ipv6/conf/all/forwarding": "0" })) {
            fs.mkdirSync(path.dirname(path.join(t, "proc", k)), { recursive: true });
            fs.writeFileSync(path.join(t, "proc", k), `${v}\n`);
        }
        const run = (script: string, entry: string, after: boolean): string[] => {
            for (const [f, text] of Object.entries(files(after))) fs.writeFileSync(path.join(t, f), text);
            fs.writeFileSync(path.join(t, "log"), "");
            const probe = [
                `ROOT=${t}/root; STATE=$ROOT/${plan.stack}/${plan.pair}; HOSTSTATE=$ROOT/.host`,
                `sysctl_read() { read_first "${t}/proc/$1"; }`,
                `sysctl_write() { printf '%s\\n' "$2" >"${t}/proc/$1"; }`,
                `PATH=${bin}`,
                entry,
            ].join("\n");
            execFileSync("dash", ["-c", `${script}\n${probe}`], { encoding: "utf8", stdio: "pipe" });
            return fs
                .readFileSync(path.join(t, "log"), "utf8")
                .split("\n")
                .filter((l) => l !== "" && !l.startsWith("modprobe ")) // (only where this machine lacks the module)
                .map((l) => l.split(t).join("T").trimEnd());
        };
        const converge = renderConverge(plan);
        const remove = renderRemove(plan);
        expect(converge.endsWith('\nmain "$@"\n') && remove.endsWith("\nremove\n")).toBe(true);
        return {
            apply: run(converge.slice(0, -'main "$@"\n'.length), "main", false),
            remove: run(remove.slice(0, -"remove\n".length), "remove", true),
        };
    } finally {
        fs.rmSync(t, { recursive: true, force: true });
    }
}

/** The host's state as ip and the *-save programs print it, before a pair's apply and after it. */
function hostState(plan: HostPlan, after: boolean): Record<string, string> {
    const addr = (i: number, dev: string, cidr: string, label = dev) =>
        `${i}: ${dev}    ${cidr.includes(":") ? "inet6" : "inet"} ${cidr} scope global ${label}\\       valid_lft forever preferred_lft forever`;
    const ip: Record<4 | 6, string[]> = {
        4: [
            "130.88.196.129 dev eth0 src 130.88.198.58 uid 0 \\    cache mtu 1500 ",
            addr(1, "lo", "127.0.0.1/8"),
            addr(2, "eth0", "130.88.198.58/16"),
            "130.88.0.0/16 dev eth0 proto kernel scope link src 130.88.198.58",
        ],
        // (the IPv6 underlay of stacks/Pulumi.toy-ip6ip6.yaml and -ipip6: the route to the peer first)
        6: [
            "2001:db8:88::129 from :: dev eth0 proto kernel src 2001:db8:88::58 metric 256 pref medium",
            addr(1, "lo", "::1/128"),
            addr(2, "eth0", "2001:db8:88::58/64"),
            "2001:db8:88::/64 dev eth0 proto kernel metric 256 pref medium",
        ],
    };
    const tables: Record<string, string[]> = { filter: [], mangle: [], filter6: [], mangle6: [] };
    if (after)
        for (const o of plan.objects) {
            const fam = (s: string) => (s.includes(":") ? 6 : 4);
            if (o.kind === "addr") ip[fam(o.cidr)].splice(1, 0, addr(5, o.dev, o.cidr, o.label ?? o.dev));
            if (o.kind === "route" && "dev" in o) ip[fam(o.dest)].push(`${o.dest} dev ${o.dev} scope link`);
            if (o.kind === "chain") tables[o.table].push(`:${o.name} - [0:0]`, ...o.rules);
            if (o.kind === "jump") tables[o.table].push(`-A ${o.from} -m comment --comment "${plan.tag}" -j ${o.chain}`);
        }
    const save = (fam: "" | "6") =>
        ["filter", "mangle"]
            .map((t) => [`*${t}`, ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ...tables[`${t}${fam}`], "COMMIT"].join("\n"))
            .join("\n");
    return { ip4: ip[4].join("\n") + "\n", ip6: ip[6].join("\n") + "\n", save4: save(""), save6: save("6") };
}

describe("the programs a run starts", () => {
    const plan = (stack: string) => {
        const m = stackModel(stack, (c) => (c.pairs.toy.persist = "none"));
        return planEndpoint(m, m.pairs[0], "a");
    };
    const v6 = /^(ip -6 |ip6tables)/;

    it("an IPv4 pair (the toy, ipip) starts no IPv6 program, on apply or destroy: only ip -4, iptables-save and -restore", () => {
        const p = plan("toy");
        const { apply, remove } = programsStarted(p, (after) => hostState(p, after));
        const state = `T/root/${p.stack}/${p.pair}`;
        const fwd = "T/root/.host/sysctl/net/ipv4/ip_forward";
        expect(apply).toEqual([
            "flock -w 60 9",
            "ip -4 -o -force -batch -",
            `mkdir -p ${state}/chains ${fwd}/holders`,
            "iptables-save",
            "iptables-restore -w 10 --noflush",
            "iptables-save",
            `mv ${fwd}/orig.new ${fwd}/orig`,
            "ip -batch -",
            `mv ${state}/manifest.new ${state}/manifest`,
        ]);
        // the manifest and ip_forward's original read by the shell; one rm for the state and
        // the host-wide value's directory
        expect(remove).toEqual([
            "flock -w 60 9",
            "ip -4 -o -force -batch -",
            "ip -force -batch -",
            "iptables-save",
            "iptables-restore -w 10 --noflush",
            `rm -rf ${state} ${fwd}`,
            `rmdir T/root/.host/sysctl/net/ipv4 T/root/.host/sysctl/net T/root/.host/sysctl T/root/.host T/root ${state.replace(/\/[^/]*$/, "")} T/root`,
        ]);
        expect([...apply, ...remove].filter((l) => v6.test(l))).toEqual([]);
    });

    it("a gre pair starts no IPv6 program either", () => {
        const p = plan("toy-gre");
        const { apply, remove } = programsStarted(p, (after) => hostState(p, after));
        expect(apply).toContain("iptables-restore -w 10 --noflush");
        expect([...apply, ...remove].filter((l) => v6.test(l))).toEqual([]);
    });

    it.each(["toy-ip6ip6", "toy-ipip6"])("%s (an IPv6 underlay) reads IPv6's state and writes ip6tables; iptables only where it carries IPv4", (stack) => {
        const p = plan(stack);
        const { apply, remove } = programsStarted(p, (after) => hostState(p, after));
        const v4 = stack === "toy-ipip6";
        // (the underlay address and the route to the peer, IPv6's, read before anything changes)
        expect(apply).toContain("ip -6 -o -force -batch -");
        for (const run of [apply, remove]) {
            expect(run).toContain("ip6tables-restore -w 10 --noflush");
            expect(run.includes("iptables-restore -w 10 --noflush")).toBe(v4);
        }
        // (the IPv4 read: ipip6's addresses and routes are IPv4's; ip6ip6 has nothing of IPv4)
        expect(apply.includes("ip -4 -o -force -batch -")).toBe(v4);
    });

    it("a SIT pair reads and writes IPv6's state with the IPv6 programs (the stubs see them: the checks above can fail)", () => {
        const p = plan("toy-sit");
        const { apply, remove } = programsStarted(p, (after) => hostState(p, after));
        for (const run of [apply, remove]) {
            expect(run).toContain("ip -6 -o -force -batch -");
            expect(run).toContain("ip6tables-save");
            expect(run).toContain("ip6tables-restore -w 10 --noflush");
            expect(run).toContain("iptables-restore -w 10 --noflush");
        }
    });
});

/**
 * A host of stubs that keeps its firewall's state: each family's *-save prints its file, which
 * that family's restore rewrites, with the tables as after the pair's apply for an input that
 * adds, as before it for one that removes (a "-D" or "-X" in it), unless the family is told to
 * refuse (`refuse`: its restore then fails as when the xtables lock stays held, and changes
 * nothing). `ip -batch -` (an apply's changes) fails when `ipBatch` says so; `ip -force -batch
 * -` (a destroy's, an undo's) succeeds. The log holds every program started, each restore's
 * input after it, indented.
 */
function firewallHost(plan: HostPlan) {
    const t = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-firewall-"));
    const bin = path.join(t, "bin");
    fs.mkdirSync(bin);
    const cat = "/bin/cat";
    const stub = (name: string, body: string) => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\necho "${name} $*" >>${t}/log\n${body}\n`, { mode: 0o755 });
    stub(
        "ip",
        [
            'case "$*" in',
            `    "-4 -o -force -batch -") ${cat} >/dev/null; ${cat} ${t}/ip4 ;;`,
            `    "-6 -o -force -batch -") ${cat} >/dev/null; ${cat} ${t}/ip6 ;;`,
            `    "-batch -") ${cat} >/dev/null; if [ -e ${t}/refuse-ip ]; then echo "RTNETLINK answers: Operation not permitted" >&2; echo "Command failed -:1" >&2; exit 1; fi ;;`,
            `    *"-batch -") ${cat} >/dev/null ;;`,
            '    "-d -o link show "*) exit 1 ;;',
            "esac",
        ].join("\n"),
    );
    for (const fam of ["4", "6"]) {
        const x = fam === "4" ? "iptables" : "ip6tables";
        stub(`${x}-save`, `${cat} ${t}/save${fam}`);
        stub(
            `${x}-restore`,
            [
                `in=$(${cat})`,
                `printf '%s\\n' "$in" | while IFS= read -r l; do echo "    $l"; done >>${t}/log`,
                'case "$in" in',
                `    *"-D "* | *"-X "*)`,
                `        if [ -e ${t}/refuse${fam} ]; then echo "Another app is currently holding the xtables lock. Stopped waiting after 10s." >&2; exit 4; fi`,
                `        ${cat} ${t}/save${fam}.before >${t}/save${fam} ;;`,
                `    *) ${cat} ${t}/save${fam}.after >${t}/save${fam} ;;`,
                "esac",
            ].join("\n"),
        );
        stub(x, "");
    }
    for (const p of ["flock", "modprobe"]) stub(p, "");
    for (const p of ["cat", "head", "mkdir", "mv", "rm", "rmdir", "tr", "ln", "chmod"])
        stub(p, `exec ${execFileSync("sh", ["-c", `command -v ${p}`], { encoding: "utf8" }).trim()} "$@"`);
    for (const [k, v] of Object.entries({ "net/ipv4/ip_forward": "0", "net/ipv6/conf/all/forwarding": "0" })) {
        fs.mkdirSync(path.dirname(path.join(t, "proc", k)), { recursive: true });
        fs.writeFileSync(path.join(t, "proc", k), `${v}\n`);
    }
    const before = hostState(plan, false);
    const after = hostState(plan, true);
    for (const f of ["save4", "save6"]) {
        fs.writeFileSync(path.join(t, f), before[f]);
        fs.writeFileSync(path.join(t, `${f}.before`), before[f]);
        fs.writeFileSync(path.join(t, `${f}.after`), after[f]);
    }
    const state = path.join(t, "root", plan.stack, plan.pair);
    return {
        state,
        /** Runs the apply (main) or the destroy (remove), with the host's addresses and routes as before or after the apply. */
        run(entry: "main" | "remove", refuse: ("ip" | "4" | "6")[] = []) {
            const ip = entry === "main" ? before : after;
            fs.writeFileSync(path.join(t, "ip4"), ip.ip4);
            fs.writeFileSync(path.join(t, "ip6"), ip.ip6);
            for (const r of ["ip", "4", "6"]) fs.rmSync(path.join(t, r === "ip" ? "refuse-ip" : `refuse${r}`), { force: true });
            for (const r of refuse) fs.writeFileSync(path.join(t, r === "ip" ? "refuse-ip" : `refuse${r}`), "");
            fs.writeFileSync(path.join(t, "log"), "");
            const text = entry === "main" ? renderConverge(plan).slice(0, -'main "$@"\n'.length) : renderRemove(plan).slice(0, -"remove\n".length);
            const probe = [
                `ROOT=${t}/root; STATE=$ROOT/${plan.stack}/${plan.pair}; HOSTSTATE=$ROOT/.host`,
                `sysctl_read() { read_first "${t}/proc/$1"; }`,
                `sysctl_write() { printf '%s\\n' "$2" >"${t}/proc/$1"; }`,
                `PATH=${bin}`,
                entry,
            ].join("\n");
            const r = spawnSync("dash", ["-c", `${text}\n${probe}`], { encoding: "utf8" });
            const log = fs.readFileSync(path.join(t, "log"), "utf8").split("\n");
            return { status: r.status, stdout: r.stdout, stderr: r.stderr, log };
        },
        /** Each family's firewall as its *-save prints it now: "before" or "after" the pair's apply, or "other". */
        tables(): Record<"4" | "6", string> {
            const now = (f: string) => fs.readFileSync(path.join(t, `save${f}`), "utf8");
            const which = (f: string) => (now(f) === before[`save${f}`] ? "before" : now(f) === after[`save${f}`] ? "after" : "other");
            return { 4: which("4"), 6: which("6") };
        },
        manifest: () => (fs.existsSync(path.join(state, "manifest")) ? fs.readFileSync(path.join(state, "manifest"), "utf8") : undefined),
        cleanup: () => fs.rmSync(t, { recursive: true, force: true }),
    };
}

// A pair with firewall tables in both families (sit: IPv4's chains admit protocol 41, IPv6's
// check the inner sources). The undo of its firewall, and its destroy, try both families'
// restores: one refused (the xtables lock still held after -w 10) must not keep the other's
// from going, nor leave listed what has gone.
describe("a refused firewall restore in a rollback or a destroy (toy-sit: tables in both families)", () => {
    const m = stackModel("toy-sit", (c) => (c.pairs.toy.persist = "none"));
    const p = planEndpoint(m, m.pairs[0], "a");
    const lines = p.objects.filter((o) => o.kind === "chain" || o.kind === "jump").map(objectLine);
    const v4 = lines.filter((l) => !l.split(" ")[1].endsWith("6"));
    const v6 = lines.filter((l) => l.split(" ")[1].endsWith("6"));
    let host: ReturnType<typeof firewallHost>;
    beforeEach(() => (host = firewallHost(p)));
    afterEach(() => host.cleanup());
    const restores = (log: string[], x: string) => log.filter((l) => l === `${x}-restore -w 10 --noflush`).length;

    it("has both families' chains and jumps (the cases below can fail)", () => {
        expect(v4.length).toBeGreaterThan(0);
        expect(v6.length).toBeGreaterThan(0);
    });

    it("a failed apply's rollback still removes IPv6's chains and jumps when iptables-restore is refused, and says so", () => {
        const r = host.run("main", ["ip", "4"]);
        expect(r.status).not.toBe(0);
        // (each family's commit, IPv4's first, then each family's undo, IPv6's first)
        expect(r.log.filter((l) => l.endsWith("-restore -w 10 --noflush"))).toEqual(
            ["iptables", "ip6tables", "ip6tables", "iptables"].map((x) => `${x}-restore -w 10 --noflush`),
        );
        expect(host.tables()).toEqual({ 4: "after", 6: "before" });
        expect(r.stderr).toMatch(/error: iptables-restore -w 10 --noflush failed: Another app is currently holding the xtables lock/);
        expect(r.stderr).toMatch(/warning: undo of '.*del chain filter TP-\S+-IN;.*' failed/);
        // never "nothing was changed" where an undo was refused
        expect(r.stderr).toMatch(/warning: this run's changes were undone but for what is named above, which is still on the host\n$/);
        expect(r.stderr).not.toMatch(/nothing was changed/);
        expect(fs.existsSync(host.state)).toBe(false);
    });

    it("… and IPv4's when ip6tables-restore is refused", () => {
        const r = host.run("main", ["ip", "6"]);
        expect(r.status).not.toBe(0);
        expect(r.log.filter((l) => l.endsWith("-restore -w 10 --noflush"))).toEqual(
            ["iptables", "ip6tables", "ip6tables", "iptables"].map((x) => `${x}-restore -w 10 --noflush`),
        );
        expect(host.tables()).toEqual({ 4: "before", 6: "after" });
        expect(r.stderr).toMatch(/error: ip6tables-restore -w 10 --noflush failed: Another app/);
        expect(r.stderr).not.toMatch(/nothing was changed/);
    });

    it("a destroy whose ip6tables-restore is refused removes IPv4's chains and jumps, and keeps listed only IPv6's", () => {
        expect(host.run("main").status).toBe(0);
        expect(host.tables()).toEqual({ 4: "after", 6: "after" });
        const r = host.run("remove", ["6"]);
        expect(r.status).toBe(1);
        expect(host.tables()).toEqual({ 4: "before", 6: "after" });
        expect(host.manifest()).toBe(v6.map((l) => `own ${l}\n`).join(""));
        expect(r.stderr).toMatch(/warning: removing the IPv6 firewall rules failed: ip6tables-restore -w 10 --noflush failed: Another app/);
        expect(r.stderr).not.toMatch(/IPv4 firewall/);
        expect(r.stderr).toMatch(new RegExp(`error: ${v6.length} objects could not be removed; they stay listed`));
        for (const l of v4) expect(r.stdout).toContain(`: - ${l}\n`);
        for (const l of v6) expect(r.stdout).not.toContain(`: - ${l}\n`);
        // the next destroy removes them
        const again = host.run("remove");
        expect(again.status).toBe(0);
        expect([restores(again.log, "iptables"), restores(again.log, "ip6tables")]).toEqual([0, 1]);
        expect(host.tables()).toEqual({ 4: "before", 6: "before" });
        expect(fs.existsSync(host.state)).toBe(false);
    });

    it("a destroy whose iptables-restore is refused still removes IPv6's, and keeps listed only IPv4's", () => {
        expect(host.run("main").status).toBe(0);
        const r = host.run("remove", ["4"]);
        expect(r.status).toBe(1);
        expect(restores(r.log, "ip6tables")).toBe(1);
        expect(host.tables()).toEqual({ 4: "after", 6: "before" });
        expect(host.manifest()).toBe(v4.map((l) => `own ${l}\n`).join(""));
        expect(r.stderr).toMatch(/warning: removing the IPv4 firewall rules failed: iptables-restore -w 10 --noflush failed: Another app/);
        expect(r.stderr).toMatch(new RegExp(`error: ${v4.length} objects could not be removed`));
        const again = host.run("remove");
        expect(again.status).toBe(0);
        expect(host.tables()).toEqual({ 4: "before", 6: "before" });
    });
});
