// Issue 11 in the lab: a pair that comes back by itself. The lab has no systemd, so the parts
// are proven separately (README, "Persistence and repair"): with a systemd stand-in on every
// host (lab/day2.ts: /run/systemd/system, a systemctl that logs), `up` installs the units;
// the installed files pass systemd-analyze verify; a reboot (kernel state back to the
// world's, the filesystem kept) followed by exactly the command the boot unit's ExecStart
// names brings every host back to its state after `up`, and the flows work again; a firewall
// reload followed by the repair service's command does the same; an idle repair run changes
// nothing (its time is the figure); destroy then restores every host, the unit directories
// included.
import { destroy, StackState, up } from "../replay/engine";
import { planPair } from "../components/plan";
import { configKeys, loadConfig, sourceOfStackFile } from "../components/config";
import { readStackFile, StackFile } from "../components/stackFile";
import { unitName } from "../components/systemd";
import { bootSysctls, flushConntrack, installSystemdStandIn, rebootHost, reloadFirewall, runTimerService, runUnit, systemctlCalls } from "./day2";
import { ExecResult, Lab, startLab } from "./lab";
import { CheckResult, Flow, labExec, probeScript, recordInLab, Scenario, snapshotAll } from "./scenario";
import { diffSnapshots, Snapshot, unitDir } from "./snapshot";
import { loadWorld, World } from "./world";

/**
 * Whether `unit`'s three files, its two [Install] links and the stored `converge` script are on
 * `host`, and the files pass `systemd-analyze verify` there (exit 0; its complaints in the output).
 */
export function unitsInstalled(lab: Lab, host: string, unit: string, converge: string): Promise<ExecResult> {
    const files = [`${unit}.service`, `${unit}-repair.service`, `${unit}-repair.timer`].map((f) => `${unitDir}/${f}`);
    return lab.exec(
        host,
        `set -e; for f in ${files.map((f) => `'${f}'`).join(" ")}; do test -f "$f"; done; ` +
            `test -L '${unitDir}/multi-user.target.wants/${unit}.service'; test -L '${unitDir}/timers.target.wants/${unit}-repair.timer'; ` +
            `test -f '${converge}'; ` +
            `systemd-analyze verify --man=no ${files.map((f) => `'${f}'`).join(" ")}`,
    );
}

/** Per host of the stack, the units it holds and the stored script they run: one per pair that touches it. */
export function pairUnitsOn(sf: StackFile): Map<string, { unit: string; converge: string }[]> {
    const model = loadConfig(sourceOfStackFile(sf), { credentials: "supplied" }).model;
    const pairsOn = new Map<string, { unit: string; converge: string }[]>(Object.keys(model.hosts).map((h) => [h, []]));
    for (const p of model.pairs)
        for (const { plan } of planPair(model, p)) pairsOn.get(plan.host)!.push({ unit: unitName(model.stack, p.name), converge: `${plan.stateDir}/converge` });
    return pairsOn;
}

/** Per topology: the hosts rebooted (the router and a host behind it where there is one) and the endpoint whose firewall reloads. */
export const persistencePlans: Record<string, { readonly reboot: readonly string[]; readonly reload: string }> = {
    toy: { reboot: ["doolittle", "calculon"], reload: "doolittle" },
    ps3: { reboot: ["ps3", "doolittle"], reload: "ps3" },
    man2: { reboot: ["rfe", "comp000"], reload: "rfe" },
    hub: { reboot: ["rfe", "comp000"], reload: "rfe" },
};

export interface PersistenceReport {
    readonly checks: CheckResult[];
    /** Wall time of each idle repair run (nothing to do) as the lab runs the unit over SSH, ms. */
    readonly idleRepairMs: number[];
    /** The idle converge alone, timed on the host, ms. */
    readonly idleConvergeMs: number[];
}

/**
 * Up with the units, then each host in `reboot` rebooted and brought back by its boot unit,
 * then `reload` (an endpoint) has its firewall reloaded and repaired, then destroy.
 */
export async function runPersistence(
    name: string,
    s: Scenario,
    reboot: readonly string[],
    reload: string,
    log: (l: string) => void = () => undefined,
): Promise<PersistenceReport> {
    const checks: CheckResult[] = [];
    const check = (n: string, ok: boolean, detail?: string) => {
        checks.push({ name: n, ok, detail });
        log(`${ok ? "ok  " : "FAIL"} ${n}${detail && !ok ? `\n       ${detail.split("\n").join("\n       ")}` : ""}`);
    };
    const idleRepairMs: number[] = [];
    const idleConvergeMs: number[] = [];
    const world: World = typeof s.world === "string" ? loadWorld(s.world) : s.world;
    const lab = await startLab(world);
    try {
        const sf = readStackFile(s.stackFile);
        const hosts = Object.keys(sf.config[configKeys.hosts] as object);
        const pairsOn = pairUnitsOn(sf);
        const unitsOn = new Map([...pairsOn].map(([h, ps]) => [h, ps.map((p) => p.unit)]));
        for (const h of hosts) {
            await bootSysctls(lab, h); // what a reboot gives back, read before anything is deployed
            await installSystemdStandIn(lab, h);
        }
        const probe = async (f: Flow) => {
            const r = await lab.exec(f.from, probeScript(f.to, f.port));
            return r.code === 0 && r.stdout.startsWith("SSH-");
        };
        const flowsWork = async (when: string) => {
            for (const f of s.flows) check(`${when}: ${f.name} answers`, await probe(f));
        };
        const same = (when: string, a: Record<string, Snapshot>, b: Record<string, Snapshot>, only = hosts) => {
            for (const h of only) {
                // A host that holds two pairs gets them back in either order (systemd starts
                // their boot units side by side; here they run one after the other): devices,
                // addresses and the pairs' jumps at the top of a chain may then be listed in
                // another order, the same lines each. Nothing else may differ.
                const reordered = (l: string) => pairsOn.get(h)!.length > 1 && /^\w+: same lines, other order$/.test(l);
                const all = diffSnapshots(a[h], b[h]);
                const d = all.filter((l) => !reordered(l));
                const note = all.length > d.length ? `; ${all.length - d.length} sections the same lines in another order` : "";
                check(`${when}: ${h} as after up (${d.length} diff lines${note})`, d.length === 0, d.join("\n"));
            }
        };

        const before = await snapshotAll(lab, hosts);
        const state = new StackState();
        const first = await up(await recordInLab(sf, lab), state, labExec).catch((e: Error) => e);
        check("up succeeds", !(first instanceof Error), first instanceof Error ? first.message : undefined);
        if (first instanceof Error) return { checks, idleRepairMs, idleConvergeMs };
        const afterUp = await snapshotAll(lab, hosts);
        await flowsWork("after up");

        for (const h of hosts) {
            for (const { unit: u, converge } of pairsOn.get(h)!) {
                const installed = await unitsInstalled(lab, h, u, converge);
                check(
                    `${h}: ${u}'s units and links installed, and they pass systemd-analyze verify`,
                    installed.code === 0,
                    installed.stdout + installed.stderr,
                );
            }
            const calls = await systemctlCalls(lab, h);
            check(
                `${h}: systemd reloaded and each repair timer started (${calls.join("; ")})`,
                calls.includes("daemon-reload") && unitsOn.get(h)!.every((u) => calls.includes(`start ${u}-repair.timer`)),
            );
        }

        // an idle repair run on each host: nothing to do, nothing changed
        for (const h of hosts) {
            for (const u of unitsOn.get(h)!) {
                const t0 = Date.now();
                const r = await runTimerService(lab, h, u);
                idleRepairMs.push(Date.now() - t0);
                check(
                    `${h}: an idle run of ${u}-repair.service changes nothing (${Date.now() - t0} ms)`,
                    r.code === 0 && / 0 added, 0 removed, /.test(r.stdout),
                    r.stdout + r.stderr,
                );
            }
        }
        same("after the idle repair runs", afterUp, await snapshotAll(lab, hosts));
        // the converge alone, on the host, without SSH or the stand-in's reading of the unit
        for (const h of hosts) {
            for (const { converge } of pairsOn.get(h)!) {
                const t = await lab.exec(h, `t0=$(date +%s%N); /bin/sh '${converge}' >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 ))`);
                const ms = Number(t.stdout.trim());
                idleConvergeMs.push(ms);
                check(`${h}: the idle converge itself takes ${ms} ms on the host`, t.code === 0 && ms > 0, t.stderr);
            }
        }

        for (const h of reboot) {
            await rebootHost(lab, world, h);
            const down = await snapshotAll(lab, [h]);
            check(
                `${h} rebooted: what the pair made is gone (${diffSnapshots(afterUp[h], down[h]).length} diff lines)`,
                diffSnapshots(afterUp[h], down[h]).length > 0,
            );
            for (const u of unitsOn.get(h)!) {
                const r = await runUnit(lab, h, `${u}.service`);
                check(`${h}: the boot run of ${u}.service succeeds`, r.code === 0, r.stdout + r.stderr);
            }
            same(`${h} after its boot run`, afterUp, await snapshotAll(lab, hosts));
            await flowsWork(`after ${h}'s reboot`);
        }

        await reloadFirewall(lab, world, reload);
        // a reload leaves conntrack alone, and the tunnel's IPIP, seen both ways, is ESTABLISHED:
        // it would flow on through the world's rules until the entry ages out; a new one cannot
        await flushConntrack(lab, reload);
        const reloaded = await snapshotAll(lab, [reload]);
        check(
            `${reload}'s firewall reloaded: the pair's chains are gone (${diffSnapshots(afterUp[reload], reloaded[reload]).length} diff lines)`,
            diffSnapshots(afterUp[reload], reloaded[reload]).length > 0,
        );
        for (const u of unitsOn.get(reload)!) {
            const r = await runTimerService(lab, reload, u);
            check(`${reload}: the repair run of ${u} puts them back`, r.code === 0 && !/ 0 added, 0 removed, /.test(r.stdout), r.stdout + r.stderr);
            const again = await runTimerService(lab, reload, u);
            check(
                `${reload}: a second repair run changes nothing`,
                again.code === 0 && / 0 added, 0 removed, /.test(again.stdout),
                again.stdout + again.stderr,
            );
        }
        same(`${reload} after the repair`, afterUp, await snapshotAll(lab, hosts));
        await flowsWork(`after ${reload}'s firewall reload and repair`);

        const gone = await destroy(state, labExec).catch((e: Error) => e);
        check("destroy succeeds", !(gone instanceof Error) && state.resources.size === 0, gone instanceof Error ? gone.message : undefined);
        const afterDestroy = await snapshotAll(lab, hosts);
        for (const h of hosts) {
            const d = diffSnapshots(before[h], afterDestroy[h]);
            check(`destroy restored ${h}, /etc/systemd/system included (${d.length} diff lines)`, d.length === 0, d.join("\n"));
            const calls = await systemctlCalls(lab, h);
            check(
                `${h}: destroy stopped each repair timer`,
                unitsOn.get(h)!.every((u) => calls.some((c: string) => c.startsWith("stop ") && c.includes(`${u}-repair.timer`))),
                calls.join("; "),
            );
        }
    } finally {
        await lab.stop();
    }
    return { checks, idleRepairMs, idleConvergeMs };
}

export type { Lab };
