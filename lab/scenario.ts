// A stack proven in the lab: boot its world, replay `pulumi up` with the provider's
// semantics, check what must work, replay up again and destroy, and compare every host's
// state with the state before up.
import * as path from "path";
import { FirewallMode } from "../components/model";
import { deployStack } from "../components/program";
import { readStackFile } from "../components/stackFile";
import { destroy, StackState, up } from "../replay/engine";
import { overlayConnections } from "../replay/overlay";
import { recordProgram, Recording } from "../replay/record";
import { ExecResult, sshExec } from "../replay/ssh";
import { Lab, startLab, tapName } from "./lab";
import { diffSnapshots, parseSnapshot, Snapshot, snapshotScript } from "./snapshot";

/** A connection that must work after up and must not before up or after destroy. */
export interface Flow {
    readonly name: string;
    readonly from: string;
    readonly to: string;
    readonly port: number;
    /** The tunnel device on `from` whose packet counters must rise. */
    readonly through?: string;
}

export interface Scenario {
    readonly world: string;
    readonly stackFile: string;
    readonly flows: readonly Flow[];
    /** Firewall modes to run the stack in; the first is the stack file's own. */
    readonly firewallModes?: readonly FirewallMode[];
    /** Checks of the topology's own, run after up (the lab, the stack's recording). */
    readonly extra?: (ctx: Context) => Promise<void>;
}

const root = path.join(__dirname, "..");
export const scenarios: Record<string, Scenario> = {
    toy: {
        world: path.join(root, "lab/worlds/toy.yaml"),
        stackFile: path.join(root, "stacks/Pulumi.toy.yaml"),
        flows: [{ name: "doolittle -> 10.0.2.1:22 (calculon's alias)", from: "doolittle", to: "10.0.2.1", port: 22, through: "tunl1" }],
        firewallModes: ["owned", "open"],
        extra: async (ctx) => {
            // how-to §4.7: with tunl1 down the connection times out; up again, with its route, it answers
            const flow = scenarios.toy.flows[0];
            await ctx.sh("doolittle", "ip link set dev tunl1 down");
            ctx.check("§4.7: tunl1 down on doolittle: the flow times out", !(await ctx.probe(flow)).ok);
            await ctx.sh("doolittle", "ip link set dev tunl1 up && ip route add 10.0.2.0/24 dev tunl1");
            ctx.check("§4.7: tunl1 up again with its route: the flow answers", (await ctx.probe(flow)).ok);
        },
    },
};

export interface CheckResult {
    readonly name: string;
    readonly ok: boolean;
    readonly detail?: string;
}

export interface ScenarioReport {
    readonly name: string;
    readonly checks: CheckResult[];
    readonly bootMs: number;
    readonly upMs: number[];
    readonly destroyMs: number[];
}

export interface Context {
    readonly lab: Lab;
    readonly recording: Recording;
    check(name: string, ok: boolean, detail?: string): void;
    sh(host: string, script: string): Promise<string>;
    probe(flow: Flow): Promise<{ ok: boolean; detail: string }>;
}

/** A TCP connect with a bounded wait, answered by a real sshd banner. */
function probeScript(to: string, port: number): string {
    return `timeout 4 bash -c 'exec 3<>/dev/tcp/${to}/${port} && read -r banner <&3 && echo "$banner"'`;
}

const countersScript = (dev: string) => `cat /sys/class/net/${dev}/statistics/tx_packets /sys/class/net/${dev}/statistics/rx_packets`;

async function snapshotAll(lab: Lab, hosts: string[]): Promise<Record<string, Snapshot>> {
    const out: Record<string, Snapshot> = {};
    await Promise.all(
        hosts.map(async (h) => {
            const r = await lab.exec(h, snapshotScript);
            if (r.code !== 0) throw new Error(`snapshot of ${h} failed: ${r.stderr}`);
            out[h] = parseSnapshot(r.stdout);
        }),
    );
    return out;
}

/** The replay's SSH, bound to the lab's TAP: lab traffic never takes this machine's default route. */
export const labExec = (conn: Parameters<typeof sshExec>[0], command: string, stdin?: string): Promise<ExecResult> =>
    sshExec(conn, command, stdin, { bindInterface: tapName });

export async function runScenario(name: string, s: Scenario, log: (line: string) => void = () => undefined, keepLab?: (lab: Lab) => Promise<void>): Promise<ScenarioReport> {
    const checks: CheckResult[] = [];
    const check = (n: string, ok: boolean, detail?: string) => {
        checks.push({ name: n, ok, detail });
        log(`${ok ? "ok  " : "FAIL"} ${n}${detail && !ok ? `\n       ${detail.split("\n").join("\n       ")}` : ""}`);
    };
    const upMs: number[] = [];
    const destroyMs: number[] = [];
    const lab = await startLab(s.world);
    log(`lab ${name}: booted in ${lab.bootMs} ms (${Object.keys(lab.hosts).length} hosts)`);
    try {
        if (keepLab) {
            await keepLab(lab);
            return { name, checks, bootMs: lab.bootMs, upMs, destroyMs };
        }
        const sf = readStackFile(s.stackFile);
        const hostsOfStack = Object.keys(sf.config["tunnelpair:hosts"] as object);
        const sh = async (host: string, script: string) => {
            const r = await lab.exec(host, script);
            if (r.code !== 0) throw new Error(`${host}: ${script}: exit ${r.code}: ${r.stderr}`);
            return r.stdout;
        };
        const probe = async (f: Flow) => {
            const r = await lab.exec(f.from, probeScript(f.to, f.port));
            return { ok: r.code === 0 && r.stdout.startsWith("SSH-"), detail: `exit ${r.code} ${r.stdout}${r.stderr}`.trim() };
        };
        const counters = async (host: string, dev: string) => (await sh(host, countersScript(dev))).trim().split("\n").map(Number);

        for (const mode of s.firewallModes ?? ["owned"]) {
            const tag = `[firewall ${mode}]`;
            const overlaid = overlayConnections(sf, lab);
            const pairs = JSON.parse(JSON.stringify(overlaid.config["tunnelpair:pairs"])) as Record<string, { firewall?: string }>;
            for (const p of Object.values(pairs)) p.firewall = mode;
            const recording = await recordProgram({ stack: sf.stack, config: { ...overlaid.config, "tunnelpair:pairs": pairs }, secretKeys: overlaid.secretKeys, program: deployStack });
            const ctx: Context = { lab, recording, check: (n, ok, d) => check(`${tag} ${n}`, ok, d), sh, probe };

            const before = await snapshotAll(lab, hostsOfStack);
            for (const f of s.flows) ctx.check(`before up: ${f.name} does not answer`, !(await probe(f)).ok);

            const state = new StackState();
            const first = await up(recording, state, labExec).catch((e: Error) => e);
            if (first instanceof Error) {
                ctx.check("up succeeds", false, first.message);
                await destroy(state, labExec).catch(() => undefined);
                continue;
            }
            upMs.push(first.ms);
            ctx.check(`up succeeds (${first.ms} ms, ${first.steps.length} commands)`, first.steps.every((x) => x.ok));
            const afterUp = await snapshotAll(lab, hostsOfStack);

            for (const f of s.flows) {
                const c0 = f.through ? await counters(f.from, f.through) : undefined;
                const r = await probe(f);
                ctx.check(`after up: ${f.name} answers`, r.ok, r.detail);
                if (f.through && c0) {
                    const c1 = await counters(f.from, f.through);
                    ctx.check(`after up: ${f.from} ${f.through} tx/rx packet counters rose (${c0.join("/")} -> ${c1.join("/")})`, c1[0] > c0[0] && c1[1] > c0[1]);
                }
            }

            const second = await up(recording, state, labExec);
            ctx.check("second up: the engine has nothing to do", second.steps.length === 0, JSON.stringify(second.steps));
            // the scripts themselves are idempotent: run again (as an update would), they change nothing
            const reruns = await Promise.all(
                [...state.resources.values()].map(async (r) => {
                    const res = await labExec(r.inputs.connection as never, r.inputs.create as string);
                    return { name: r.name, res };
                }),
            );
            for (const { name: n, res } of reruns) {
                ctx.check(`rerun of ${n}'s create: 0 added, 0 removed`, res.code === 0 && / 0 added, 0 removed, /.test(res.stdout), res.stdout + res.stderr);
            }
            const afterRerun = await snapshotAll(lab, hostsOfStack);
            for (const h of hostsOfStack) {
                const d = diffSnapshots(afterUp[h], afterRerun[h]);
                ctx.check(`rerun left ${h} unchanged (${d.length} diff lines)`, d.length === 0, d.join("\n"));
            }

            if (s.extra) await s.extra(ctx);

            const gone = await destroy(state, labExec).catch((e: Error) => e);
            if (gone instanceof Error) {
                ctx.check("destroy succeeds", false, gone.message);
                continue;
            }
            destroyMs.push(gone.ms);
            ctx.check(`destroy succeeds (${gone.ms} ms)`, gone.steps.every((x) => x.ok) && state.resources.size === 0);
            const afterDestroy = await snapshotAll(lab, hostsOfStack);
            for (const h of hostsOfStack) {
                const d = diffSnapshots(before[h], afterDestroy[h]);
                ctx.check(`destroy restored ${h} (${d.length} diff lines)`, d.length === 0, d.join("\n"));
            }
            for (const f of s.flows) ctx.check(`after destroy: ${f.name} does not answer`, !(await probe(f)).ok);
        }
    } finally {
        await lab.stop();
    }
    return { name, checks, bootMs: lab.bootMs, upMs, destroyMs };
}
