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
import {
    bootSysctls,
    flushConntrack,
    installSystemdStandIn,
    rebootHost,
    reloadFirewall,
    runTimerService,
    runUnit,
    startSystemBus,
    startUnit,
    stopSystemBus,
    stopUnit,
    systemctlCalls,
} from "./day2";
import { ExecResult, Lab, startLab } from "./lab";
import { CheckResult, labExec, probeFlow, recordInLab, Scenario, snapshotAll } from "./scenario";
import { diffSnapshots, Snapshot, unitDir } from "./snapshot";
import { loadWorld, World } from "./world";

/**
 * Whether `unit`'s four files, its three [Install] links and the stored `converge` script are on
 * `host`, and the files pass `systemd-analyze verify` there (exit 0; its complaints in the output).
 */
export function unitsInstalled(lab: Lab, host: string, unit: string, converge: string): Promise<ExecResult> {
    const files = [`${unit}.service`, `${unit}-repair.service`, `${unit}-repair.timer`, `${unit}-firewalld.service`].map((f) => `${unitDir}/${f}`);
    return lab.exec(
        host,
        `set -e; for f in ${files.map((f) => `'${f}'`).join(" ")}; do test -f "$f"; done; ` +
            `test -L '${unitDir}/multi-user.target.wants/${unit}.service'; test -L '${unitDir}/timers.target.wants/${unit}-repair.timer'; ` +
            `test -L '${unitDir}/firewalld.service.wants/${unit}-firewalld.service'; ` +
            `test -f '${converge}'; ` +
            `systemd-analyze verify --man=no ${files.map((f) => `'${f}'`).join(" ")}`,
    );
}

/**
 * Per topology: the hosts rebooted (the router and a host behind it where there is one), the
 * endpoint whose firewall reloads, and whether that reload is also firewalld's, followed by
 * the pair's firewalld hook over a real system bus (once is enough: the hook is per pair).
 */
export const persistencePlans: Record<string, { readonly reboot: readonly string[]; readonly reload: string; readonly firewalld?: boolean }> = {
    toy: { reboot: ["doolittle", "calculon"], reload: "doolittle", firewalld: true },
    // the IPv6 modes (the lab's reboot and reload give back IPv6 too in their worlds): SIT over
    // the toy's IPv4, ip6ip6 over toy6's IPv6 underlay; the drifts too (IPv6 forwarding, the
    // ip6tables chains), with the firewalld hook's reload replacing both families
    "toy-sit": { reboot: ["doolittle", "calculon"], reload: "doolittle", firewalld: true },
    "toy-ip6ip6": { reboot: ["doolittle", "calculon"], reload: "doolittle", firewalld: true },
    ps3: { reboot: ["ps3", "doolittle"], reload: "ps3" },
    man2: { reboot: ["rfe", "comp000"], reload: "rfe" },
    hub: { reboot: ["rfe", "comp000"], reload: "rfe" },
};

/** The units each host of a stack holds (one per pair that touches it) and each one's stored converge script. */
export function persistedPairs(sf: StackFile): Map<string, { pair: string; unit: string; converge: string; tag: string }[]> {
    const model = loadConfig(sourceOfStackFile(sf), { credentials: "supplied" }).model;
    const pairsOn = new Map<string, { pair: string; unit: string; converge: string; tag: string }[]>(Object.keys(model.hosts).map((h) => [h, []]));
    for (const p of model.pairs)
        for (const { plan } of planPair(model, p))
            pairsOn.get(plan.host)!.push({ pair: p.name, unit: unitName(model.stack, p.name), converge: `${plan.stateDir}/converge`, tag: plan.tag });
    return pairsOn;
}

/**
 * The drifts a repair run must undo, made by hand from the pair's manifest on the host: its
 * device (ipip's link, another mode's tunnel) set down, then removed; a route of its deleted;
 * ip_forward, or IPv6's conf.all.forwarding, reset; in each family the pair has rules in
 * (iptables; ip6tables, tables filter6 and mangle6 in the manifest), a chain of its flushed,
 * then a jump of its deleted. Each is a script for the host.
 */
function drifts(manifest: string, tag: string): { name: string; script: string }[] {
    const own = manifest
        .split("\n")
        .filter((l) => l.startsWith("own "))
        .map((l) => l.slice(4).split(" "));
    const first = (kind: string) => own.find((w) => w[0] === kind);
    const out: { name: string; script: string }[] = [];
    const link = own.find((w) => w[0] === "link" || w[0] === "tunnel");
    if (link)
        out.push(
            { name: `the device ${link[1]} set down`, script: `ip link set ${link[1]} down` },
            { name: `the device ${link[1]} removed`, script: `ip link del ${link[1]}` },
        );
    const route = first("route");
    if (route) out.push({ name: `the route ${route.slice(1).join(" ")}`, script: `ip route del ${route.slice(1).join(" ")}` });
    if (own.some((w) => w[0] === "sysctl" && w[1] === "net/ipv4/ip_forward" && w[2] === "1"))
        out.push({ name: "ip_forward reset to 0", script: "echo 0 >/proc/sys/net/ipv4/ip_forward" });
    // (writing it rewrites every conf.*.forwarding of IPv6: the repair's write puts them back)
    if (own.some((w) => w[0] === "sysctl" && w[1] === "net/ipv6/conf/all/forwarding" && w[2] === "1"))
        out.push({ name: "IPv6 forwarding (conf.all) reset to 0", script: "echo 0 >/proc/sys/net/ipv6/conf/all/forwarding" });
    // a table of the manifest's as a command: "filter" -> iptables -t filter, "filter6" -> ip6tables -t filter
    const xt = (table: string) => (table.endsWith("6") ? `ip6tables -t ${table.slice(0, -1)}` : `iptables -t ${table}`);
    const families = [false, true].filter((v6) => own.some((w) => w[0] === "chain" && w[1].endsWith("6") === v6));
    for (const v6 of families) {
        const chain = own.find((w) => w[0] === "chain" && w[1].endsWith("6") === v6)!;
        out.push({ name: `the chain ${chain[2]} flushed`, script: `${xt(chain[1])} -F ${chain[2]}` });
    }
    for (const v6 of families) {
        const jump = own.find((w) => w[0] === "jump" && w[1].endsWith("6") === v6);
        if (!jump) continue;
        out.push({
            name: `the jump ${jump[2]} -> ${jump[3]}${v6 ? " (ip6tables)" : ""} deleted`,
            script: `${xt(jump[1])} -D ${jump[2]} -m comment --comment '${tag}' -j ${jump[3]}`,
        });
    }
    return out;
}

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
    opts: { firewalld?: boolean } = {},
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
    const inLab = Date.now();
    log(`lab ${name}: booted in ${lab.bootMs} ms`);
    try {
        const sf = readStackFile(s.stackFile);
        const hosts = Object.keys(sf.config[configKeys.hosts] as object);
        const pairsOn = persistedPairs(sf);
        const unitsOn = new Map([...pairsOn].map(([h, ps]) => [h, ps.map((p) => p.unit)]));
        for (const h of hosts) {
            await bootSysctls(lab, h); // what a reboot gives back, read before anything is deployed
            await installSystemdStandIn(lab, h);
        }
        const flowsWork = async (when: string) => {
            for (const f of s.flows) {
                const r = await probeFlow(lab, f);
                check(`${when}: ${f.name} answers`, r.ok, r.detail);
            }
        };
        const same = (when: string, a: Record<string, Snapshot>, b: Record<string, Snapshot>, only = hosts, routesRemade = false) => {
            for (const h of only) {
                // A host that holds two pairs gets them back in either order (systemd starts
                // their boot units side by side; here they run one after the other): devices,
                // addresses and the pairs' jumps at the top of a chain may then be listed in
                // another order, the same lines each. So may the routes of a device that went
                // down and came back (the kernel lists them in the order they were made again).
                // Nothing else may differ.
                const reordered = (l: string) =>
                    (pairsOn.get(h)!.length > 1 && /^\w+: same lines, other order$/.test(l)) || (routesRemade && l === "route: same lines, other order");
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
            // firewalld does not run here: its hook waits for it (WantedBy=), and firewalld is never started
            check(
                `${h}: the firewalld hook is not started where firewalld does not run`,
                calls.some((c) => c.includes("is-active") && c.includes("firewalld.service")) &&
                    !calls.some((c) => c.startsWith("start ") && c.includes("firewalld")),
                calls.join("; "),
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
            if (world.ipv6) {
                // the reboot's IPv6 part (lab/day2.ts) proven here, IPv4's by tests/lab.day2.test.ts:
                // the host is as before up, IPv6's addresses, routes, sysctls and ip6tables
                // included, but for the files the pair keeps (its state directory, its units)
                const files = (x: Snapshot) => Object.fromEntries(Object.entries(x).filter(([k]) => k !== "state" && k !== "units"));
                const d = diffSnapshots(files(before[h]), files(down[h]));
                check(`${h} rebooted: as before up, IPv6 included, but for the pair's files (${d.length} diff lines)`, d.length === 0, d.join("\n"));
            }
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

        // firewalld's reload, followed by the hook: a real system bus, the Reloaded signal;
        // then each kind of drift the converge owns, one at a time, and the admin's own change
        if (opts.firewalld) {
            for (const { unit: u, converge, tag } of pairsOn.get(reload)!) {
                const manifest = (await lab.exec(reload, `cat '${converge.replace(/converge$/, "manifest")}'`)).stdout;
                for (const d of drifts(manifest, tag)) {
                    const made = await lab.exec(reload, d.script);
                    const drifted = diffSnapshots(afterUp[reload], (await snapshotAll(lab, [reload]))[reload]);
                    check(`${reload}: drift "${d.name}" (${drifted.length} diff lines)`, made.code === 0 && drifted.length > 0, made.stderr);
                    const r = await runTimerService(lab, reload, u);
                    check(`${reload}: the repair run puts back ${d.name}`, r.code === 0 && !/ 0 added, 0 removed, /.test(r.stdout), r.stdout + r.stderr);
                    same(`${reload} after repairing ${d.name}`, afterUp, await snapshotAll(lab, hosts), [reload], true);
                }
                // what the pair does not own: an admin's rule and route stay through a repair run
                const admin = "iptables -I INPUT 1 -s 192.0.2.9/32 -j DROP && ip route add 192.0.2.0/28 dev lo";
                await lab.exec(reload, admin);
                const withAdmin = await snapshotAll(lab, [reload]);
                const r = await runTimerService(lab, reload, u);
                const d = diffSnapshots(withAdmin[reload], (await snapshotAll(lab, [reload]))[reload]);
                check(
                    `${reload}: a repair run leaves the admin's own rule and route alone (${d.length} diff lines)`,
                    r.code === 0 && / 0 added, 0 removed, /.test(r.stdout) && d.length === 0,
                    r.stdout + d.join("\n"),
                );
                await lab.exec(reload, "iptables -D INPUT -s 192.0.2.9/32 -j DROP; ip route del 192.0.2.0/28 dev lo");
            }
            await flowsWork(`after the drifts on ${reload} and their repair`);

            // a repair run that waited for the lock while a deployment replaced the stored
            // script: it does nothing (the next run is the new script's)
            for (const { unit: u, converge } of pairsOn.get(reload)!) {
                const snap = await snapshotAll(lab, [reload]);
                await lab.exec(reload, `cp -p '${converge}' /run/tunnelpair-lab/converge.kept`);
                const holder = lab.exec(
                    reload,
                    "exec 9</var/lib; flock 9; : >/run/tunnelpair-lab/held; while [ ! -e /run/tunnelpair-lab/release ]; do sleep 0.1; done",
                    {
                        timeoutMs: 60_000,
                    },
                );
                await lab.exec(reload, "n=0; while [ ! -e /run/tunnelpair-lab/held ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done");
                const waiting = runTimerService(lab, reload, u);
                // the run is waiting on the lock (its flock is there) when the deployment writes
                await lab.exec(reload, "n=0; while ! pgrep -x flock >/dev/null && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done");
                await lab.exec(reload, `printf '# a newer deployment\n' >>'${converge}'; : >/run/tunnelpair-lab/release`);
                await holder;
                const r = await waiting;
                const d = diffSnapshots(snap[reload], (await snapshotAll(lab, [reload]))[reload]).filter((l) => !l.includes(converge));
                check(
                    `${reload}: a repair run that waited for the lock while the script was replaced does nothing (${d.length} diff lines)`,
                    r.code === 0 && /a newer deployment replaced this script/.test(r.stdout) && !/applied:/.test(r.stdout) && d.length === 0,
                    r.stdout + r.stderr + d.join("\n"),
                );
                await lab.exec(reload, `mv -f /run/tunnelpair-lab/converge.kept '${converge}'; rm -f /run/tunnelpair-lab/held /run/tunnelpair-lab/release`);
            }
        }
        if (opts.firewalld) {
            for (const u of unitsOn.get(reload)!) {
                const hook = `${u}-firewalld.service`;
                const bus = await startSystemBus(lab, reload);
                await systemctlCalls(lab, reload, { clear: true });
                const pid = await startUnit(lab, reload, hook); // as systemd does when firewalld starts
                const repairStarts = async () => (await systemctlCalls(lab, reload)).filter((c) => c === `start --no-block ${u}-repair.service`).length;
                const waitStarts = async (n: number) => {
                    for (let i = 0; i < 100 && (await repairStarts()) < n; i++) await new Promise((r) => setTimeout(r, 100));
                    return repairStarts();
                };
                check(`${reload}: ${hook} starts the repair once as it starts`, (await waitStarts(1)) === 1, (await systemctlCalls(lab, reload)).join("; "));
                // let busctl register its match before anything is sent
                await new Promise((r) => setTimeout(r, 1500));
                const emit = (member: string, sig = "") =>
                    lab.exec(reload, `busctl --system emit /org/fedoraproject/FirewallD1 org.fedoraproject.FirewallD1 ${member} ${sig}`);
                const other = await emit("DefaultZoneChanged", "s public");
                await new Promise((r) => setTimeout(r, 1500));
                check(`${reload}: another firewalld signal starts nothing`, other.code === 0 && (await repairStarts()) === 1, other.stderr);
                await reloadFirewall(lab, world, reload);
                await flushConntrack(lab, reload);
                const sent = await emit("Reloaded");
                check(`${reload}: firewalld's Reloaded signal starts the repair at once`, sent.code === 0 && (await waitStarts(2)) === 2, sent.stderr);
                const r = await runTimerService(lab, reload, u); // what systemd runs on that start
                check(`${reload}: the repair it started puts the chains back`, r.code === 0 && !/ 0 added, 0 removed, /.test(r.stdout), r.stdout + r.stderr);
                same(`${reload} after firewalld's reload and the hook's repair`, afterUp, await snapshotAll(lab, hosts), hosts, true);
                await flowsWork(`after firewalld's reload on ${reload}`);
                const said = await stopUnit(lab, reload, hook, pid);
                check(`${reload}: the hook said what it did`, said.includes(`firewalld reloaded: starting ${u}-repair.service`), said);
                await stopSystemBus(lab, reload, bus);
            }
        }

        // A host holding two pairs: their unit links share the .wants directories, which either
        // pair may have made. One pair destroyed alone leaves the other's units and links whole;
        // the full destroy below, whichever pair goes last, takes every made directory away.
        for (const h of hosts.filter((h) => pairsOn.get(h)!.length > 1)) {
            const res = [...state.resources.values()];
            const alone = res.find((r) => r.name.endsWith(`-${h}`) && !res.some((o) => o.dependencies.includes(r.urn)));
            if (!alone) continue;
            const one = new StackState();
            one.resources.set(alone.urn, alone);
            const r = await destroy(one, labExec).catch((e: Error) => e);
            if (!(r instanceof Error)) state.resources.delete(alone.urn);
            // its name is `<pair>-<role>-<host>` (tunnelPair.ts), the role one word
            const pairOfAlone = alone.name.slice(0, -(h.length + 1)).replace(/-[a-z]+$/, "");
            const kept = pairsOn.get(h)!.filter((p) => p.pair !== pairOfAlone);
            const still = await Promise.all(kept.map((p) => unitsInstalled(lab, h, p.unit, p.converge)));
            check(
                `${h}: ${alone.name} destroyed alone leaves the other pair's units and links (${kept.map((p) => p.unit).join(", ")})`,
                !(r instanceof Error) && kept.length === pairsOn.get(h)!.length - 1 && still.every((x) => x.code === 0),
                r instanceof Error ? r.message : still.map((x) => x.stdout + x.stderr).join("\n"),
            );
        }

        const gone = await destroy(state, labExec).catch((e: Error) => e);
        check("destroy succeeds", !(gone instanceof Error) && state.resources.size === 0, gone instanceof Error ? gone.message : undefined);
        const afterDestroy = await snapshotAll(lab, hosts);
        for (const h of hosts) {
            const d = diffSnapshots(before[h], afterDestroy[h]);
            check(`destroy restored ${h}, /etc/systemd/system included (${d.length} diff lines)`, d.length === 0, d.join("\n"));
            const calls = await systemctlCalls(lab, h);
            check(
                `${h}: destroy stopped each repair timer and firewalld hook`,
                unitsOn
                    .get(h)!
                    .every((u) => calls.some((c: string) => c.startsWith("stop ") && c.includes(`${u}-repair.timer`) && c.includes(`${u}-firewalld.service`))),
                calls.join("; "),
            );
        }
    } finally {
        await lab.stop();
        log(`lab ${name}: ${Date.now() - inLab} ms in the lab`);
    }
    return { checks, idleRepairMs, idleConvergeMs };
}

export type { Lab };
