// Foreign and pre-existing state on the toy's hosts: what the admin had, or does meanwhile,
// the pair must refuse to touch or leave as it finds it.
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { configKeys } from "../components/config";
import { SshConnection } from "../components/ssh/connection";
import { readStackFile } from "../components/stackFile";
import { destroy, StackState, up } from "../replay/engine";
import { overlayConnections } from "../replay/overlay";
import { startLab } from "./lab";
import { CheckResult, labExec, probeScript, recordInLab, scenarios, snapshotAll } from "./scenario";
import { diffSnapshots } from "./snapshot";

interface Case {
    readonly name: string;
    /** Run on the host before up; what the snapshot "before" includes. */
    readonly setup: [string, string][];
    /** After up: [host, script] run by the admin, and lines the destroy must keep. */
    readonly meanwhile?: [string, string][];
    /** After meanwhile: each endpoint's apply runs again (a repair run, a later pulumi up). */
    readonly rerun?: boolean;
    /** up must fail (the pair refuses), naming this. */
    readonly refusal?: RegExp;
    /** Undoes the setup by hand at the end. */
    readonly cleanup: [string, string][];
}

const cases: Case[] = [
    {
        name: "a tunl1 that is not ours is refused and left untouched",
        setup: [["doolittle", "modprobe ipip; ip link add tunl1 type ipip local 130.88.198.58 remote 130.88.196.200 && ip link set tunl1 alias admin-tunnel"]],
        refusal: /tunl1 exists and is not ours \(ifalias 'admin-tunnel'/,
        cleanup: [["doolittle", "ip link del tunl1"]],
    },
    {
        name: "an address the admin already had stays after destroy",
        setup: [["doolittle", "ip addr add 10.0.1.1/24 dev eth0 label eth0:0 noprefixroute"]],
        cleanup: [["doolittle", "ip addr del 10.0.1.1/24 dev eth0"]],
    },
    {
        name: "an address the admin had, gone after up and put back by the next run, is still the admin's: it stays after destroy",
        setup: [["doolittle", "ip addr add 10.0.1.1/24 dev eth0 label eth0:0 noprefixroute"]],
        meanwhile: [["doolittle", "ip addr del 10.0.1.1/24 dev eth0"]],
        rerun: true,
        cleanup: [["doolittle", "ip addr del 10.0.1.1/24 dev eth0"]],
    },
    {
        name: "ip_forward already 1 is still 1 after destroy",
        setup: [["calculon", "echo 1 >/proc/sys/net/ipv4/ip_forward"]],
        cleanup: [["calculon", "echo 0 >/proc/sys/net/ipv4/ip_forward; echo 0 >/proc/sys/net/ipv4/conf/all/accept_redirects || true"]],
    },
    {
        name: "FORWARD and INPUT policy DROP: the tunnel works through our chains, the policies are unchanged after destroy",
        setup: [
            ["doolittle", "iptables -P FORWARD DROP && iptables -P INPUT DROP"],
            ["calculon", "iptables -P INPUT DROP"],
        ],
        cleanup: [
            ["doolittle", "iptables -P FORWARD ACCEPT && iptables -P INPUT ACCEPT"],
            ["calculon", "iptables -P INPUT ACCEPT"],
        ],
    },
    {
        name: "rules the admin adds after up are still there after destroy",
        setup: [],
        meanwhile: [
            ["doolittle", "iptables -I INPUT 1 -s 10.9.9.9/32 -j ACCEPT && iptables -A FORWARD -s 10.9.9.8/32 -j DROP && ip route add 10.9.9.0/24 dev eth0"],
        ],
        cleanup: [["doolittle", "iptables -D INPUT -s 10.9.9.9/32 -j ACCEPT; iptables -D FORWARD -s 10.9.9.8/32 -j DROP; ip route del 10.9.9.0/24 dev eth0"]],
    },
    {
        name: "the firewall service reloading between up and destroy: destroy still succeeds and restores",
        setup: [["doolittle", "iptables-save >/run/fw.before"]],
        meanwhile: [["doolittle", "iptables-restore </run/fw.before"]],
        cleanup: [["doolittle", "rm -f /run/fw.before"]],
    },
];

export async function runForeign(log: (l: string) => void = () => undefined): Promise<CheckResult[]> {
    const checks: CheckResult[] = [];
    const check = (name: string, ok: boolean, detail?: string) => {
        checks.push({ name, ok, detail });
        log(`${ok ? "ok  " : "FAIL"} ${name}${detail && !ok ? `\n       ${detail.split("\n").join("\n       ")}` : ""}`);
    };
    const s = scenarios.toy;
    const lab = await startLab(s.world);
    try {
        const sf = readStackFile(s.stackFile);
        const recording = await recordInLab(sf, lab);
        const hosts = ["doolittle", "calculon"];
        const sh = async (host: string, script: string) => {
            const r = await lab.exec(host, script);
            if (r.code !== 0) throw new Error(`${host}: ${script}: ${r.stderr}`);
        };
        for (const c of cases) {
            for (const [h, script] of c.setup) await sh(h, script);
            const before = await snapshotAll(lab, hosts);
            const state = new StackState();
            const result = await up(recording, state, labExec).then(
                () => undefined,
                (e: Error) => e,
            );
            if (c.refusal) {
                check(`${c.name}: up fails with the refusal`, result instanceof Error && c.refusal.test(result.message), result?.message);
                const d = diffSnapshots(before.doolittle, (await snapshotAll(lab, ["doolittle"])).doolittle);
                check(`${c.name}: doolittle untouched by the refused apply (${d.length} diff lines)`, d.length === 0, d.join("\n"));
            } else {
                check(`${c.name}: up succeeds`, result === undefined, result?.message);
                const flow = s.flows[0];
                const p = await lab.exec(flow.from, probeScript(flow.to, flow.port));
                check(`${c.name}: the toy flow answers`, p.code === 0 && p.stdout.startsWith("SSH-"), p.stderr);
            }
            for (const [h, script] of c.meanwhile ?? []) await sh(h, script);
            const expected = c.meanwhile && !c.rerun ? await snapshotAll(lab, hosts) : before;
            if (c.rerun) {
                for (const r of recording.resources.filter((x) => x.inputs.delete !== undefined && hosts.some((h) => x.name.endsWith(`-${h}`)))) {
                    const again = await labExec(r.inputs.connection as never, r.inputs.create as string);
                    check(`${c.name}: ${r.name}'s apply runs again`, again.code === 0, again.stderr);
                }
            }
            const gone = await destroy(state, labExec).then(
                () => undefined,
                (e: Error) => e,
            );
            check(`${c.name}: destroy succeeds`, gone === undefined, gone?.message);
            const after = await snapshotAll(lab, hosts);
            for (const h of hosts) {
                // after "meanwhile", the admin's own changes must stay; ours must go
                const ref = c.meanwhile ? before[h] : expected[h];
                const d = diffSnapshots(ref, after[h]).filter((l) => !(c.meanwhile && !c.rerun && adminLine(l)));
                check(`${c.name}: ${h} as the admin left it (${d.length} diff lines)`, d.length === 0, d.join("\n"));
                const wanted = diffSnapshots(before[h], expected[h]).filter(adminLine);
                if (wanted.length > 0) {
                    const kept = diffSnapshots(before[h], after[h]).filter(adminLine);
                    check(`${c.name}: ${h} keeps the admin's ${wanted.length} added lines`, kept.length === wanted.length, kept.join("\n"));
                }
            }
            for (const [h, script] of c.cleanup) await lab.exec(h, script);
        }

        // Bounded waits. A run that hangs holding the host's lock: the next fails within its
        // lock wait, naming the host, having changed nothing.
        const before = await snapshotAll(lab, ["doolittle"]);
        const holder = lab.exec("doolittle", "exec 9</var/lib; flock 9; : >/run/held; sleep 70", { timeoutMs: 120000 });
        await lab.exec("doolittle", "n=0; while [ ! -e /run/held ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; rm -f /run/held");
        const doolittle = recording.resources.find((r) => r.name === "toy-a-doolittle")!;
        const t0 = Date.now();
        const locked = await labExec(doolittle.inputs.connection as never, doolittle.inputs.create as string);
        const lockMs = Date.now() - t0;
        check(
            `a hung run holding the lock: the next fails in ${lockMs} ms (bound 60 s + SSH), naming the host`,
            locked.code !== 0 && lockMs < 75000 && /@doolittle\]: error: .*lock/.test(locked.stderr),
            locked.stderr,
        );
        const d = diffSnapshots(before.doolittle, (await snapshotAll(lab, ["doolittle"])).doolittle);
        check(`a hung run holding the lock: doolittle unchanged (${d.length} diff lines)`, d.length === 0, d.join("\n"));
        await holder;
        // A host that does not answer: up fails within the connection's bound, naming the host.
        const unreachable = JSON.parse(JSON.stringify(overlayConnections(sf, lab).values[configKeys.hosts])) as Record<
            string,
            { connection: Record<string, unknown> }
        >;
        unreachable.doolittle.connection.host = "198.18.0.99";
        const r2 = await recordInLab(sf, lab, { [configKeys.hosts]: unreachable });
        const t1 = Date.now();
        const state2 = new StackState();
        const failed = await up(r2, state2, labExec).then(
            () => undefined,
            (e: Error) => e,
        );
        const ms = Date.now() - t1;
        check(
            `a host that does not answer: up fails in ${ms} ms (dialErrorLimit 10: 11 dials, perDialTimeout 10 s), naming 198.18.0.99`,
            failed instanceof Error && ms < 90000 && failed.message.includes("198.18.0.99"),
            failed?.message,
        );
        await destroy(state2, labExec);
        // A key with a passphrase (connection.privateKeyPassword): ssh asks the runner's askpass helper, never a terminal.
        const conn = doolittle.inputs.connection as SshConnection;
        const sealed = sealedKey(lab.privateKey, "lab passphrase");
        const opened = await labExec({ ...conn, privateKey: sealed, privateKeyPassword: "lab passphrase" }, "echo opened");
        check(
            "a key with its passphrase: the SSH layer unlocks it and runs the command",
            opened.code === 0 && opened.stdout === "opened",
            `exit ${opened.code} ${opened.stderr}`,
        );
        const t2 = Date.now();
        const wrong = await labExec({ ...conn, privateKey: sealed, privateKeyPassword: "not it", dialErrorLimit: 0 }, "echo opened");
        check(
            `a key with a wrong passphrase: refused in ${Date.now() - t2} ms, nothing run, nothing asked of a terminal`,
            wrong.code !== 0 && wrong.stdout === "" && Date.now() - t2 < 30000,
            `exit ${wrong.code} ${wrong.stderr}`,
        );
    } finally {
        await lab.stop();
    }
    return checks;
}

/** The lab's key encrypted with a passphrase, as ssh-keygen -p writes it (a scratch copy, removed). */
function sealedKey(privateKey: string, passphrase: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-key-"));
    try {
        const file = path.join(dir, "key");
        fs.writeFileSync(file, privateKey.endsWith("\n") ? privateKey : `${privateKey}\n`, { mode: 0o600 });
        execFileSync("ssh-keygen", ["-q", "-p", "-P", "", "-N", passphrase, "-f", file]);
        return fs.readFileSync(file, "utf8");
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** Lines the admin's own changes in the "meanwhile" cases add. */
function adminLine(l: string): boolean {
    return /10\.9\.9\./.test(l);
}
