// The lab's benchmarks (`npm run bench`): figures printed, nothing asserted.
// (b) Man2 with 1, 8, 32 and 64 compute nodes: replayed up and destroy wall time, SSH sessions
//     and redials, in one lab (lanes of 8 through rfe, the default); then 32 nodes by an Ansible
//     playbook in the same lab (the anchor); last, 64 nodes without lanes.
// (c) iperf3 through the product's tunnel, a tunnel made by hand with `ip tunnel`, and the
//     underlay, on the toy's two hosts, interleaved rounds, with TCP retransmits.
// (d) the toy's replayed apply against the floor (one hand-written script per host, one SSH
//     session each) and against an Ansible playbook doing the same, in the same lab.
// (e) persistence on the toy, in one lab with the systemd stand-in: what one idle repair run
//     costs on a host (its time there, the programs it starts), and up and destroy with
//     persist: boot against persist: none, interleaved.
import { execFile } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { readStackFile, StackFile } from "../components/stackFile";
import { destroy, Executor, StackState, up } from "../replay/engine";
import { planEndpoint } from "../components/plan";
import { configKeys, loadConfig, sourceOfStackFile } from "../components/config";
import { installSystemdStandIn, managerEnv } from "./day2";
import { Lab, startLab } from "./lab";
import { labExec, probeScript, recordInLab } from "./scenario";
import { loadWorld, World } from "./world";

const root = path.join(__dirname, "..");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function must(lab: Lab, host: string, script: string): Promise<string> {
    const r = await lab.exec(host, script, { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`${host}: ${script.split("\n")[0]}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
}

/** A compute node's own routes in the lab's Man2 world, before any deployment (what man2Undo puts back). */
const nodeRoutes = ["default via 192.168.1.254", "169.254.0.0/16 dev eth0"] as const;

/** Man2's world and stack with `nodes` compute nodes (comp000 and its copies) behind rfe. */
function man2With(nodes: number, sf: StackFile, world: World, jumpSessions?: number): { world: World; sf: StackFile } {
    const w = JSON.parse(JSON.stringify(world)) as World;
    const config = JSON.parse(JSON.stringify(sf.config)) as Record<string, unknown>;
    const hosts = config[configKeys.hosts] as Record<string, unknown>;
    const a = (config[configKeys.pairs] as { man2: { a: { computeNodes?: unknown[] } } }).man2.a;
    const computeNodes: unknown[] = [];
    a.computeNodes = computeNodes;
    if (jumpSessions !== undefined) (hosts.rfe as { connection: Record<string, unknown> }).connection.jumpSessions = jumpSessions;
    for (let i = 0; i < nodes; i++) {
        const name = `comp${String(i).padStart(3, "0")}`;
        const address = `192.168.104.${100 + i}`;
        w.hosts[name] ??= {
            management: false,
            jump: "rfe",
            interfaces: { eth0: { segment: "cluster", addresses: [`${address}/16`] } },
            routes: [...nodeRoutes],
            sysctls: {},
        };
        hosts[name] = { connection: { host: address, user: "root", agent: true, proxy: "rfe" }, underlay: { interface: "eth0", address: `${address}/16` } };
        computeNodes.push({ host: name, gateway: "192.168.1.253", dropLinkLocal: true });
    }
    return { world: { ...w, name: `man2-${nodes}` }, sf: { ...sf, config } };
}

/** Man2 by hand (the how-to's section 6, as TOPOLOGIES lists it): one script per host, no state, no checks. */
function man2Scripts(nodes: number): Record<string, string> {
    const tcpUdp = (rule: string) => ["tcp", "udp"].map((p) => `iptables -I FORWARD ${rule} -p ${p} -j ACCEPT`);
    const out: Record<string, string> = {
        rfe: [
            "set -e",
            "echo 1 >/proc/sys/net/ipv4/ip_forward",
            "ip tunnel add tunl1 mode ipip local 130.88.200.10 remote 130.88.198.58",
            "echo 2 >/proc/sys/net/ipv4/conf/tunl1/rp_filter",
            "ip addr add 10.200.100.100/24 dev tunl1 noprefixroute",
            "ip link set dev tunl1 up",
            "ip route add 10.200.200.0/24 dev tunl1",
            "iptables -I INPUT -s 130.88.198.58 -d 130.88.200.10 -p 4 -j ACCEPT",
            "iptables -I INPUT -s 130.88.198.58 -p tcp -j ACCEPT",
            "iptables -I FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT",
            ...tcpUdp("-s 192.168.104.0/24 -d 130.88.0.0/16 -i eth0 -o eth3"),
            ...tcpUdp("-s 10.200.200.100 -d 192.168.104.0/24 -i tunl1 -o eth0"),
            ...tcpUdp("-s 130.88.196.129 -d 192.168.104.0/24 -i tunl1 -o eth0"),
            "iptables -t nat -A POSTROUTING -s 192.168.104.0/24 -o eth3 -j MASQUERADE",
        ].join("\n"),
        doolittle: [
            "set -e",
            "echo 1 >/proc/sys/net/ipv4/ip_forward",
            "ip tunnel add tunl1 mode ipip local 130.88.198.58 remote 130.88.200.10",
            "ip addr add 10.200.200.100/24 dev tunl1 noprefixroute",
            "ip link set dev tunl1 up",
            "ip route add 10.200.100.0/24 dev tunl1",
            "ip route add 192.168.104.0/24 dev tunl1",
            "iptables -I INPUT -s 130.88.200.10 -d 130.88.198.58 -p 4 -j ACCEPT",
            "iptables -I INPUT -s 10.200.100.0/24,10.200.200.0/24,130.88.196.129 -p tcp --dport 22 -j ACCEPT",
            "iptables -I FORWARD -m state --state ESTABLISHED,RELATED -j ACCEPT",
            "iptables -I FORWARD -s 130.88.196.129 -d 192.168.104.0/24 -i eth0 -o tunl1 -j ACCEPT",
        ].join("\n"),
        calculon: "ip route add 192.168.104.0/24 via 130.88.198.58",
    };
    for (let i = 0; i < nodes; i++)
        out[`comp${String(i).padStart(3, "0")}`] = "set -e\nip route replace default via 192.168.1.253\nip route del 169.254.0.0/16 dev eth0";
    return out;
}

/**
 * What man2Scripts did, undone on each host (the world's own routes back on the nodes), so that
 * the lab's next run starts clean: each `iptables -I`/`-A` deleted with its own rule, the tunnel
 * (its addresses, routes and sysctls go with it), the routes, ip_forward (off in the world).
 */
function man2Undo(nodes: number): Record<string, string> {
    const scripts = man2Scripts(nodes);
    const undo = (script: string) =>
        script
            .split("\n")
            .reverse()
            .flatMap((l) => {
                if (/^iptables .* -[IA] /.test(l)) return [l.replace(/ -[IA] /, " -D ")];
                const tunnel = /^ip tunnel add (\S+) /.exec(l);
                if (tunnel) return [`ip tunnel del ${tunnel[1]}`];
                const route = /^ip route add (\S+) via /.exec(l);
                if (route) return [`ip route del ${route[1]}`];
                if (l === "echo 1 >/proc/sys/net/ipv4/ip_forward") return ["echo 0 >/proc/sys/net/ipv4/ip_forward"];
                return [];
            })
            .join("\n");
    const out: Record<string, string> = {};
    for (const [h, script] of Object.entries(scripts))
        out[h] = h.startsWith("comp") ? `ip route replace ${nodeRoutes[0]}\nip route add ${nodeRoutes[1]}` : undo(script);
    return out;
}

/** Ansible tasks, as its users write them: a `shell` task per command of a script (its `set -e` aside), run only on `host` if given. */
function shellTasks(script: string, indent: string, host?: string): string {
    const q = JSON.stringify;
    return script
        .split("\n")
        .filter((l) => l !== "set -e")
        .map(
            (cmd) =>
                `${indent}- name: ${q(cmd)}\n${indent}  ansible.builtin.shell: ${q(cmd)}${host ? `\n${indent}  when: inventory_hostname == ${q(host)}` : ""}`,
        )
        .join("\n");
}

/** The same by Ansible, as its users write it: a play per kind of host, a task per step; forks and the rest at their defaults. */
function man2Playbook(nodes: number): { playbook: string; inventory: (sshConfig: string) => string } {
    const scripts = man2Scripts(nodes);
    const play = (hosts: string, script: string) => `- hosts: ${hosts}\n  gather_facts: false\n  tasks:\n${shellTasks(script, "    ")}\n`;
    const names = Object.keys(scripts).filter((h) => h.startsWith("comp"));
    return {
        playbook: [play("rfe", scripts.rfe), play("doolittle", scripts.doolittle), play("calculon", scripts.calculon), play("nodes", scripts.comp000)].join(""),
        inventory: (sshConfig) =>
            `[routers]\nrfe\ndoolittle\ncalculon\n[nodes]\n${names.join("\n")}\n` +
            `[all:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\nansible_ssh_common_args=-F ${sshConfig}\n`,
    };
}

/** (b) */
export async function benchScale(log: (l: string) => void): Promise<void> {
    const sf = readStackFile(path.join(root, "stacks/Pulumi.man2.yaml"));
    const base = loadWorld(path.join(root, "lab/worlds/man2.yaml"));
    const counts = [1, 8, 32, 64];
    const anchorNodes = 32;
    const lab = await startLab(man2With(Math.max(...counts), sf, base).world, { memoryMiB: 1536 });
    const product = new Map<number, number>();
    try {
        log(`scale: lab with ${Object.keys(lab.hosts).length} hosts booted in ${s(lab.bootMs)}`);
        const rows: string[] = [];
        let first: { ms: number; sessions: number } | undefined;
        // one up and destroy of `n` nodes, redials counted; `lanes`: rfe's jumpSessions (default 8)
        const measure = async (n: number, lanes?: number) => {
            const recording = await recordInLab(man2With(n, sf, base, lanes).sf, lab);
            const commands = recording.resources.filter((r) => r.type === "command:remote:Command");
            // a compute node's session goes through rfe: one session to the node, one hop on rfe
            const sessions = commands.length + commands.filter((c) => (c.inputs.connection as { proxy?: unknown }).proxy).length;
            // every dial that failed before its command ran (sshd's MaxStartups resetting it)
            const redials = { up: 0, destroy: 0 };
            const counting =
                (k: keyof typeof redials): Executor =>
                (conn, command, stdin) =>
                    labExec(conn, command, stdin, { onDialFailed: () => redials[k]++ });
            const state = new StackState();
            const t0 = Date.now();
            const u = await up(recording, state, counting("up")).catch((e: Error) => e);
            if (u instanceof Error) {
                return `nodes ${n}, jumpSessions ${lanes}: up FAILED after ${s(Date.now() - t0)} and ${redials.up} failed dials: ${u.message.split("\n")[0]}`;
            }
            const d = await destroy(state, counting("destroy"));
            if (lanes === undefined) product.set(n, u.ms);
            first ??= { ms: u.ms, sessions };
            // one compute node's Command, as its session and script took it (median)
            const node = (steps: typeof u.steps) => s(median(steps.filter((x) => x.name.includes("-node-")).map((x) => x.ms)));
            return `nodes ${n}${lanes ? `, jumpSessions ${lanes}` : ""}: up ${s(u.ms)}, destroy ${s(d.ms)} (x${(d.ms / u.ms).toFixed(2)} of up), ${commands.length} commands, ${sessions} SSH sessions, redials up ${redials.up} destroy ${redials.destroy} (up time x${(u.ms / first.ms).toFixed(1)} for sessions x${(sessions / first.sessions).toFixed(1)}); a node's Command up ${node(u.steps)}, destroy ${node(d.steps)} (median)`;
        };
        for (const n of counts) {
            rows.push(await measure(n));
            log(`scale man2 ${rows[rows.length - 1]}`);
        }
        log(`scale man2: ${rows.join("; ")}. The lab kernel has one CPU: parallel sessions share it.`);

        // the anchor: the same Man2 by an Ansible playbook, in the same lab
        if (!fs.existsSync("/usr/bin/ansible-playbook")) {
            log("scale: the Ansible anchor skipped (ansible-playbook not installed: ./setup --bench)");
        } else {
            const book = man2Playbook(anchorNodes);
            fs.writeFileSync(path.join(lab.dir, "man2.yml"), book.playbook);
            fs.writeFileSync(path.join(lab.dir, "man2.inventory"), book.inventory(lab.sshConfigFile));
            const a = await run("ansible-playbook", ["-i", path.join(lab.dir, "man2.inventory"), path.join(lab.dir, "man2.yml")], ansibleEnv(lab));
            if (a.code !== 0) throw new Error(`ansible-playbook failed: ${a.out.slice(-2000)}`);
            // the playbook's deployment carries the how-to's flow 2, as the product's does
            const flow = await lab.exec("doolittle", probeScript("192.168.104.100", 22));
            // undone, 8 hosts at a time (rfe's MaxStartups): the run without lanes below deploys the same devices and routes
            const undo = Object.entries(man2Undo(anchorNodes));
            for (let i = 0; i < undo.length; i += 8) await Promise.all(undo.slice(i, i + 8).map(([h, script]) => must(lab, h, `set -e\n${script}`)));
            const p = product.get(anchorNodes)!;
            log(
                `scale man2 ${anchorNodes} nodes: ansible-playbook ${s(a.ms)} (forks and ssh at Ansible's defaults, ProxyJump through rfe; doolittle -> comp000:22 ${flow.code === 0 && flow.stdout.startsWith("SSH-") ? "answers" : "DOES NOT answer"}), product up ${s(p)}: ansible/product ${(a.ms / p).toFixed(1)}`,
            );
        }

        // last (what a failed up leaves behind needs no cleaning: the lab stops): every node at once
        const max = Math.max(...counts);
        log(`scale man2 without lanes: ${await measure(max, max)}`);
    } finally {
        await lab.stop();
    }
}

interface Iperf {
    mbps: number;
    retransmits: number;
    mss: number;
    /** ICMP "fragmentation needed" the sender received during the run: retransmits caused by the MTU. */
    fragNeeded: number;
}

/** Destination-unreachable messages received, from /proc/net/snmp (frag-needed is one of them). */
const unreachables =
    "awk '/^IcmpMsg:/ { if (!h) { split($0, k); h = 1 } else { split($0, v); for (i in k) if (k[i] == \"InType3\") print v[i] } }' /proc/net/snmp; echo 0";

async function iperf(lab: Lab, to: string): Promise<Iperf> {
    const server = lab.exec("calculon", "timeout 30 iperf3 -s -1 -p 5201 >/dev/null 2>&1", { timeoutMs: 40_000 });
    await must(lab, "calculon", "for i in $(seq 100); do ss -Hltn 'sport = :5201' | grep -q . && exit 0; sleep 0.1; done; exit 1");
    const icmp0 = Number((await must(lab, "doolittle", unreachables)).split("\n")[0]);
    const out = await must(lab, "doolittle", `iperf3 -c ${to} -p 5201 -t 6 -O 1 -J`);
    const icmp1 = Number((await must(lab, "doolittle", unreachables)).split("\n")[0]);
    await server;
    const j = JSON.parse(out) as { start: { tcp_mss_default: number }; end: { sum_sent: { retransmits: number }; sum_received: { bits_per_second: number } } };
    return { mbps: j.end.sum_received.bits_per_second / 1e6, retransmits: j.end.sum_sent.retransmits, mss: j.start.tcp_mss_default, fragNeeded: icmp1 - icmp0 };
}

/** (c) */
export async function benchThroughput(log: (l: string) => void, rounds = 5): Promise<void> {
    const sf = readStackFile(path.join(root, "stacks/Pulumi.toy.yaml"));
    const lab = await startLab(path.join(root, "lab/worlds/toy.yaml"));
    const results: Record<"product" | "reference" | "underlay", Iperf[]> = { product: [], reference: [], underlay: [] };
    // the same opening for iperf3 in every case; the reference tunnel also needs IPIP let in
    const open = "iptables -I INPUT -p tcp --dport 5201 -j ACCEPT";
    const reference = (local: string, remote: string, addr: string) =>
        [
            `ip tunnel add tunl9 mode ipip local ${local} remote ${remote}`,
            `ip addr add ${addr}/30 dev tunl9`,
            "ip link set dev tunl9 up",
            `iptables -I INPUT -p 4 -s ${remote} -j ACCEPT`,
        ].join(" && ");
    const unreference = (remote: string) => `ip tunnel del tunl9 && iptables -D INPUT -p 4 -s ${remote} -j ACCEPT`;
    try {
        await must(lab, "calculon", open);
        const recording = await recordInLab(sf, lab);
        for (let r = 0; r < rounds; r++) {
            const state = new StackState();
            await up(recording, state, labExec);
            results.product.push(await iperf(lab, "10.0.2.2"));
            await destroy(state, labExec);
            await must(lab, "doolittle", reference("130.88.198.58", "130.88.196.129", "10.9.0.1"));
            await must(lab, "calculon", reference("130.88.196.129", "130.88.198.58", "10.9.0.2"));
            results.reference.push(await iperf(lab, "10.9.0.2"));
            await must(lab, "doolittle", unreference("130.88.196.129"));
            await must(lab, "calculon", unreference("130.88.198.58"));
            results.underlay.push(await iperf(lab, "130.88.196.129"));
            log(
                `throughput round ${r + 1}: ${Object.entries(results)
                    .map(
                        ([k, v]) =>
                            `${k} ${v[r].mbps.toFixed(0)} Mbit/s (MSS ${v[r].mss}, ${v[r].retransmits} retransmits, ${v[r].fragNeeded} ICMP unreachable)`,
                    )
                    .join(", ")}`,
            );
        }
    } finally {
        await lab.stop();
    }
    const m = (k: keyof typeof results) => median(results[k].map((x) => x.mbps));
    const retr = (k: keyof typeof results) => results[k].map((x) => x.retransmits).join("/");
    const icmp = (k: keyof typeof results) => results[k].reduce((n, x) => n + x.fragNeeded, 0);
    log(
        `throughput (median of ${rounds}, Mbit/s): product ${m("product").toFixed(0)}, reference ${m("reference").toFixed(0)}, underlay ${m("underlay").toFixed(0)}`,
    );
    log(
        `retransmits per round: product ${retr("product")}, reference ${retr("reference")}, underlay ${retr("underlay")}; MSS product ${results.product[0].mss}, reference ${results.reference[0].mss}; ICMP unreachable received by the sender: product ${icmp("product")}, reference ${icmp("reference")} (none: no retransmit is the MTU's; the lab's one CPU drops under load)`,
    );
    log(
        `throughput: product/reference ${(m("product") / m("reference")).toFixed(2)}, product/underlay ${(m("product") / m("underlay")).toFixed(2)} (reference/underlay ${(m("reference") / m("underlay")).toFixed(2)}: the lab's one CPU, no product involved)`,
    );
}

/** The toy by hand: the how-to's §4 commands, one script per host, no state, no checks. */
function floorScripts(): Record<string, { apply: string; undo: string }> {
    const side = (local: string, remote: string, alias: string, tunnel: string, far: string) => ({
        apply: [
            "set -e",
            "echo 1 >/proc/sys/net/ipv4/ip_forward",
            `iptables -I INPUT -s ${remote} -d ${local} -p 4 -j ACCEPT`,
            `ip tunnel add tunl1 mode ipip local ${local} remote ${remote}`,
            `ip addr add ${alias}/24 dev eth0 label eth0:0 noprefixroute`,
            `ip addr add ${tunnel}/24 dev tunl1 noprefixroute`,
            "ip link set dev tunl1 up",
            `ip route add ${far} dev tunl1`,
        ].join("\n"),
        undo: [
            `ip tunnel del tunl1`,
            `ip addr del ${alias}/24 dev eth0`,
            `iptables -D INPUT -s ${remote} -d ${local} -p 4 -j ACCEPT`,
            "echo 0 >/proc/sys/net/ipv4/ip_forward",
        ].join("; "),
    });
    return {
        doolittle: side("130.88.198.58", "130.88.196.129", "10.0.1.1", "10.0.1.2", "10.0.2.0/24"),
        calculon: side("130.88.196.129", "130.88.198.58", "10.0.2.1", "10.0.2.2", "10.0.1.0/24"),
    };
}

/** The same by Ansible: one play, a task per step, on both hosts at once. */
function playbook(): string {
    const scripts = floorScripts();
    const tasks = (h: string) => shellTasks(scripts[h].apply, "      ", h);
    return `- hosts: all\n  gather_facts: false\n  tasks:\n${tasks("doolittle")}\n${tasks("calculon")}\n`;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; ms: number }> {
    const t0 = Date.now();
    return new Promise((resolve) => {
        execFile(cmd, args, { env, maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
            resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}`, ms: Date.now() - t0 }),
        );
    });
}

function ansibleEnv(lab: Lab): NodeJS.ProcessEnv {
    return {
        ...process.env,
        ANSIBLE_HOST_KEY_CHECKING: "False",
        ANSIBLE_NOCOLOR: "1",
        ANSIBLE_LOCAL_TEMP: path.join(lab.dir, "ansible"),
        ANSIBLE_REMOTE_TEMP: "/tmp/.ansible",
    };
}

/** (d) */
export async function benchApply(log: (l: string) => void, rounds = 5): Promise<void> {
    const sf = readStackFile(path.join(root, "stacks/Pulumi.toy.yaml"));
    const lab = await startLab(path.join(root, "lab/worlds/toy.yaml"));
    const times = { product: [] as number[], floor: [] as number[], ansible: [] as number[] };
    const ansible = fs.existsSync("/usr/bin/ansible-playbook");
    try {
        const recording = await recordInLab(sf, lab);
        const scripts = floorScripts();
        const undo = () => Promise.all(Object.entries(scripts).map(([h, x]) => lab.exec(h, x.undo)));
        const book = path.join(lab.dir, "toy.yml");
        fs.writeFileSync(book, playbook());
        fs.writeFileSync(
            path.join(lab.dir, "inventory"),
            `[all]\ndoolittle\ncalculon\n[all:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\nansible_ssh_common_args=-F ${lab.sshConfigFile}\n`,
        );
        const env = ansibleEnv(lab);
        for (let r = 0; r < rounds; r++) {
            const state = new StackState();
            const u = await up(recording, state, labExec);
            times.product.push(u.ms);
            await destroy(state, labExec);

            const t0 = Date.now();
            const floor = await Promise.all(Object.entries(scripts).map(([h, x]) => lab.exec(h, x.apply)));
            times.floor.push(Date.now() - t0);
            if (floor.some((f) => f.code !== 0)) throw new Error(`the floor scripts failed: ${floor.map((f) => f.stderr).join(" | ")}`);
            await undo();

            if (ansible) {
                const a = await run("ansible-playbook", ["-i", path.join(lab.dir, "inventory"), book], env);
                if (a.code !== 0) throw new Error(`ansible-playbook failed: ${a.out.slice(-2000)}`);
                times.ansible.push(a.ms);
                await undo();
            }
            log(`apply round ${r + 1}: product ${s(times.product[r])}, floor ${s(times.floor[r])}${ansible ? `, ansible ${s(times.ansible[r])}` : ""}`);
        }
    } finally {
        await lab.stop();
    }
    const p = median(times.product);
    const f = median(times.floor);
    const a = ansible ? median(times.ansible) : undefined;
    log(
        `apply toy (median of ${rounds}): product ${s(p)} (b's apply, which ends with the probe, after a's), floor ${s(f)}${a ? `, ansible ${s(a)}` : ""}; product/floor ${(p / f).toFixed(2)}${a ? `, ansible/product ${(a / p).toFixed(1)}` : " (ansible-playbook not installed: ./setup --bench)"}`,
    );
}

/**
 * The programs a run started, from `strace -f -e trace=execve` output: each successful
 * execve's program, by its base name, in order (a call strace split in two, "<unfinished
 * ...>" and "<... execve resumed>", is joined by its pid).
 */
export function execedPrograms(trace: string): string[] {
    const pending = new Map<string, string>();
    const out: string[] = [];
    for (const line of trace.split("\n")) {
        const call = /^(\d+)\s+execve\("([^"]*)"/.exec(line);
        const resumed = /^(\d+)\s+<\.\.\. execve resumed>.*= (-?\d+)/.exec(line);
        if (call) {
            const done = / = (-?\d+)(?: \w+.*)?$/.exec(line);
            if (!done) pending.set(call[1], call[2]);
            else if (done[1] === "0") out.push(path.basename(call[2]));
        } else if (resumed) {
            const p = pending.get(resumed[1]);
            pending.delete(resumed[1]);
            if (p !== undefined && resumed[2] === "0") out.push(path.basename(p));
        }
    }
    return out;
}

/** (e) */
export async function benchRepair(log: (l: string) => void, rounds = 5, idleRuns = 9): Promise<void> {
    const sf = readStackFile(path.join(root, "stacks/Pulumi.toy.yaml"));
    const model = loadConfig(sourceOfStackFile(sf), { credentials: "supplied" }).model;
    const host = "doolittle";
    const converge = `${planEndpoint(model, model.pairs[0], "a").stateDir}/converge`;
    const lab = await startLab(path.join(root, "lab/worlds/toy.yaml"));
    const times = { boot: { up: [] as number[], destroy: [] as number[] }, none: { up: [] as number[], destroy: [] as number[] } };
    const idle: number[] = [];
    const floor: number[] = [];
    let programs: string[] | undefined;
    try {
        // both hosts "run systemd" (the stand-in): persist: boot installs the units there
        for (const h of ["doolittle", "calculon"]) await installSystemdStandIn(lab, h);
        const persist = (mode: "boot" | "none") => {
            const pairs = JSON.parse(JSON.stringify(sf.config[configKeys.pairs])) as Record<string, { persist?: string }>;
            for (const p of Object.values(pairs)) p.persist = mode;
            return recordInLab(sf, lab, { [configKeys.pairs]: pairs });
        };
        const recordings = { boot: await persist("boot"), none: await persist("none") };
        for (let r = 0; r < rounds; r++) {
            for (const mode of ["boot", "none"] as const) {
                const state = new StackState();
                times[mode].up.push((await up(recordings[mode], state, labExec)).ms);
                times[mode].destroy.push((await destroy(state, labExec)).ms);
            }
            log(
                `repair round ${r + 1}: persist boot: up ${s(times.boot.up[r])}, destroy ${s(times.boot.destroy[r])}; persist none: up ${s(times.none.up[r])}, destroy ${s(times.none.destroy[r])}`,
            );
        }

        // an idle repair run: the converge the units run, with nothing to do, timed on the host
        // (systemd's PATH, in /, stdin /dev/null; the SSH session's environment otherwise)
        const state = new StackState();
        await up(recordings.boot, state, labExec);
        const env = `PATH='${managerEnv.PATH}' LANG='${managerEnv.LANG}'`;
        const run = `${env} /bin/sh '${converge}' </dev/null`;
        const ms = "$(( ($(date +%s%N) - t0) / 1000000 ))";
        const out = await must(
            lab,
            host,
            `cd / || exit 1
${run} >/dev/null || exit 1   # (a first run, not timed: a warm-up)
for i in $(seq ${idleRuns}); do
    t0=$(date +%s%N); ${run} >/tmp/tunnelpair-bench.out || exit 1; echo "idle ${ms}"
    grep -q ' 0 added, 0 removed, ' /tmp/tunnelpair-bench.out || { cat /tmp/tunnelpair-bench.out >&2; exit 1; }
    t0=$(date +%s%N); /bin/true; echo "floor ${ms}"
done
rm -f /tmp/tunnelpair-bench.out`,
        );
        for (const [, what, n] of out.matchAll(/^(idle|floor) (\d+)$/gm)) (what === "idle" ? idle : floor).push(Number(n));
        const traced = await lab.exec(
            host,
            `command -v strace >/dev/null || exit 3; cd / && ${env} strace -f -qq -e trace=execve -o /tmp/tunnelpair-bench.trace /bin/sh '${converge}' </dev/null >/dev/null && cat /tmp/tunnelpair-bench.trace; rm -f /tmp/tunnelpair-bench.trace`,
        );
        if (traced.code === 0) programs = execedPrograms(traced.stdout);
        else if (traced.code !== 3) throw new Error(`${host}: strace of the idle run: exit ${traced.code}: ${traced.stderr}`);
        await destroy(state, labExec);
    } finally {
        await lab.stop();
    }
    const tally = new Map<string, number>();
    for (const p of programs ?? []) tally.set(p, (tally.get(p) ?? 0) + 1);
    const counted = programs
        ? `${programs.length} programs (${[...tally].map(([p, n]) => (n > 1 ? `${p} x${n}` : p)).join(", ")})`
        : "programs not counted (strace not installed: ./setup --bench)";
    log(
        `repair: an idle repair run on ${host} (the converge with nothing to do, timed on the host) ${median(idle)} ms (median of ${idle.length}; ${Math.min(...idle)}-${Math.max(...idle)}), ${counted}; a /bin/true timed the same way ${median(floor)} ms`,
    );
    const mb = { up: median(times.boot.up), destroy: median(times.boot.destroy) };
    const mn = { up: median(times.none.up), destroy: median(times.none.destroy) };
    log(
        `repair: toy (median of ${rounds}, interleaved) persist boot: up ${s(mb.up)}, destroy ${s(mb.destroy)}; persist none: up ${s(mn.up)}, destroy ${s(mn.destroy)}; the units and the stored script cost up ${((mb.up - mn.up) / 1000).toFixed(2)} s, destroy ${((mb.destroy - mn.destroy) / 1000).toFixed(2)} s`,
    );
}
