// Issue 11 item 4 in the lab: the upgrade path from the version users had deployed before
// persistence (lab/oldRecording.ts: commit 2e9dd54, no units, no $STATE/converge). Every host
// gets the systemd stand-in (lab/day2.ts), as in lab/persistence.ts, and one lab boot holds
// three runs, each from the same first snapshot:
//
// 1. the old version's `up` (the engine's state then holds its Commands exactly as it left
//    them: no unit on any host), then today's program `up` against that state: the engine
//    decides update or replace as the provider would (only triggers replace), and each host
//    must get the pair's units and converge, with nothing of the tunnel removed on the way;
//    a reboot of an endpoint and its boot unit bring it back; destroy restores every host;
// 2. the old version's `up`, then destroy straight away (a user who upgrades and destroys):
//    `pulumi destroy` runs the deletes stored in the state, the old version's, and every host
//    must be restored;
// 3. today's `up` on the hosts as they were before any `up`: the fresh deployment the upgraded
//    hosts are compared with (their snapshots and the contents of /var/lib/tunnelpair), then
//    destroy.
// Every destroy must give back the first snapshot, /etc/systemd/system included.
import { readStackFile } from "../components/stackFile";
import { configKeys } from "../components/config";
import { destroy, RunReport, StackState, up } from "../replay/engine";
import { Recording } from "../replay/record";
import { bootSysctls, installSystemdStandIn, rebootHost, runUnit, systemctlCalls } from "./day2";
import { startLab } from "./lab";
import { loadOldRecording, oldVersion } from "./oldRecording";
import { persistedPairs, unitsInstalled } from "./persistence";
import { CheckResult, labExec, probeScript, recordInLab, Scenario, snapshotAll } from "./scenario";
import { diffSnapshots, Snapshot } from "./snapshot";
import { loadWorld, World } from "./world";

/** The stacks with a recording of the old version (tests/fixtures/upgrade/), and the endpoint rebooted after the upgrade. */
export const upgradePlans: Record<string, { readonly reboot: string }> = {
    toy: { reboot: "doolittle" },
};

export interface UpgradeReport {
    readonly checks: CheckResult[];
    /** Wall time in the lab, its boot included, ms. */
    readonly ms: number;
    /** Time spent waiting for another process's lab to end (one lab at a time per machine), ms. */
    readonly waitedMs: number;
}

/** Every file under /var/lib/tunnelpair with the sha256 of its contents, sorted by path: the snapshot lists the files, this compares what they hold. */
const stateContentsScript = `[ ! -d /var/lib/tunnelpair ] || find /var/lib/tunnelpair -type f -exec sha256sum {} + | LC_ALL=C sort -k 2`;

export async function runUpgrade(name: string, s: Scenario, reboot: string, log: (l: string) => void = () => undefined): Promise<UpgradeReport> {
    const checks: CheckResult[] = [];
    const check = (n: string, ok: boolean, detail?: string) => {
        checks.push({ name: n, ok, detail });
        log(`${ok ? "ok  " : "FAIL"} ${n}${detail && !ok ? `\n       ${detail.split("\n").join("\n       ")}` : ""}`);
    };
    const world: World = typeof s.world === "string" ? loadWorld(s.world) : s.world;
    const asked = Date.now();
    const lab = await startLab(world);
    const waitedMs = Date.now() - asked - lab.bootMs;
    const t0 = Date.now() - lab.bootMs;
    const report = () => ({ checks, ms: Date.now() - t0, waitedMs });
    log(`lab ${name}: booted in ${lab.bootMs} ms (after waiting ${waitedMs} ms for the machine's lab lock)`);
    try {
        const sf = readStackFile(s.stackFile);
        const hosts = Object.keys(sf.config[configKeys.hosts] as object);
        const pairsOn = persistedPairs(sf);
        for (const h of hosts) {
            await bootSysctls(lab, h); // what a reboot gives back, read before anything is deployed
            await installSystemdStandIn(lab, h);
        }
        const oldRecording = loadOldRecording(sf.stack, lab);
        const newRecording = await recordInLab(sf, lab);

        const before = await snapshotAll(lab, hosts);
        const flowsWork = async (when: string) => {
            for (const f of s.flows) {
                const r = await lab.exec(f.from, probeScript(f.to, f.port));
                check(`${when}: ${f.name} answers`, r.code === 0 && r.stdout.startsWith("SSH-"), `exit ${r.code} ${r.stdout}${r.stderr}`);
            }
        };
        const same = (when: string, a: Record<string, Snapshot>, b: Record<string, Snapshot>) => {
            for (const h of hosts) {
                const d = diffSnapshots(a[h], b[h]);
                check(`${when}: ${h} (${d.length} diff lines)`, d.length === 0, d.join("\n"));
            }
        };
        const stateContents = async () => {
            const out: Record<string, string> = {};
            for (const h of hosts) {
                const r = await lab.exec(h, stateContentsScript);
                if (r.code !== 0) throw new Error(`${h}: reading /var/lib/tunnelpair failed: exit ${r.code}: ${r.stderr}`);
                out[h] = r.stdout;
            }
            return out;
        };
        const apply = async (what: string, recording: Recording, state: StackState): Promise<RunReport | undefined> => {
            const r = await up(recording, state, labExec).catch((e: Error) => e);
            check(`${what} succeeds${r instanceof Error ? "" : ` (${r.ms} ms)`}`, !(r instanceof Error), r instanceof Error ? r.message : undefined);
            return r instanceof Error ? undefined : r;
        };
        const destroyRestores = async (what: string, state: StackState) => {
            const r = await destroy(state, labExec).catch((e: Error) => e);
            check(
                `${what}: destroy succeeds${r instanceof Error ? "" : ` (${r.ms} ms, ${r.steps.map((x) => `${x.op} ${x.name}`).join(", ")})`}`,
                !(r instanceof Error) && state.resources.size === 0,
                r instanceof Error ? r.message : undefined,
            );
            same(`${what}: destroy restored, /etc/systemd/system included`, before, await snapshotAll(lab, hosts));
        };

        // 1. the old version's up, then today's up against its state
        const upgraded = new StackState();
        if (!(await apply(`the ${oldVersion} version's up`, oldRecording, upgraded))) return report();
        await flowsWork(`after the ${oldVersion} version's up`);
        const afterOld = await snapshotAll(lab, hosts);
        for (const h of hosts) {
            const units = diffSnapshots({ units: before[h].units }, { units: afterOld[h].units });
            const converge = await lab.exec(
                h,
                pairsOn
                    .get(h)!
                    .map((p) => `test ! -e '${p.converge}'`)
                    .join(" && "),
            );
            const calls = await systemctlCalls(lab, h);
            check(
                `after the ${oldVersion} version's up: ${h} has no unit (/etc/systemd/system unchanged), no stored converge, and systemctl was never called`,
                units.length === 0 && converge.code === 0 && calls.length === 0,
                [...units, `converge absent: ${converge.code === 0}`, `systemctl calls: ${calls.join("; ")}`].join("\n"),
            );
        }
        const upgrade = await apply("today's up over it", newRecording, upgraded);
        if (!upgrade) return report();
        // only triggers replace; they name the pair and the host's SSH address and port, the same in both versions
        // (the old probe's own Command goes: b's apply probes now; it had no delete, so nothing runs)
        const ops = upgrade.steps.map((x) => `${x.op} ${x.name}`).filter((o) => !/^delete \S+-verify$/.test(o));
        const commands = newRecording.resources.filter((r) => r.type === "command:remote:Command").map((r) => r.name);
        check(
            `the upgrade updates each Command in place, nothing else deleted or replaced (${upgrade.steps.map((x) => `${x.op} ${x.name}`).join(", ")})`,
            ops.length === commands.length && commands.every((c) => ops.includes(`update ${c}`)),
        );
        // the tunnel stays up through the upgrade: the host's update only adds the unit
        for (const h of hosts) {
            const said = upgrade.steps.find((x) => x.op === "update" && x.name.endsWith(`-${h}`))?.output ?? "";
            const added = said.split("\n").filter((l) => /^tunnelpair\[[^\]]*\]: \+ /.test(l));
            const removed = said.split("\n").filter((l) => /^tunnelpair\[[^\]]*\]: - /.test(l));
            const units = pairsOn.get(h)!.map((p) => p.unit);
            check(
                `the upgrade's run on ${h} adds only the pair's unit (${added.length} added) and removes nothing (${removed.length} removed)`,
                removed.length === 0 && added.length === units.length && units.every((u) => added.some((l) => l.endsWith(`: + unit ${u}`))),
                said,
            );
        }
        for (const h of hosts) {
            for (const { unit, converge } of pairsOn.get(h)!) {
                const installed = await unitsInstalled(lab, h, unit, converge);
                check(
                    `after the upgrade: ${h} has ${unit}'s units, links and converge, and they pass systemd-analyze verify`,
                    installed.code === 0,
                    installed.stdout + installed.stderr,
                );
            }
            const calls = await systemctlCalls(lab, h);
            check(
                `after the upgrade: ${h}'s systemd reloaded and each repair timer started (${calls.join("; ")})`,
                calls.includes("daemon-reload") && pairsOn.get(h)!.every((p) => calls.includes(`start ${p.unit}-repair.timer`)),
            );
        }
        const afterUpgrade = await snapshotAll(lab, hosts);
        const upgradedState = await stateContents();
        await flowsWork("after the upgrade");

        await rebootHost(lab, world, reboot);
        const down = await snapshotAll(lab, [reboot]);
        check(
            `${reboot} rebooted: what the pair made is gone (${diffSnapshots(afterUpgrade[reboot], down[reboot]).length} diff lines)`,
            diffSnapshots(afterUpgrade[reboot], down[reboot]).length > 0,
        );
        for (const { unit } of pairsOn.get(reboot)!) {
            const r = await runUnit(lab, reboot, `${unit}.service`);
            check(`${reboot}: the boot run of ${unit}.service succeeds`, r.code === 0, r.stdout + r.stderr);
        }
        same(`${reboot} after its boot run: as after the upgrade`, afterUpgrade, await snapshotAll(lab, hosts));
        await flowsWork(`after ${reboot}'s reboot`);
        await destroyRestores("after the upgrade", upgraded);

        // 2. the old version's up, then destroy: the state's deletes are the old version's
        const notUpgraded = new StackState();
        if (await apply(`the ${oldVersion} version's up (again)`, oldRecording, notUpgraded)) await destroyRestores(`without the upgrade's up`, notUpgraded);

        // 3. the reference: today's up on the hosts as they were before any up (checked above)
        const fresh = new StackState();
        if (await apply("today's up on the restored hosts", newRecording, fresh)) {
            same("the upgraded hosts are as a fresh deployment leaves them", await snapshotAll(lab, hosts), afterUpgrade);
            const freshState = await stateContents();
            for (const h of hosts)
                check(
                    `${h}: /var/lib/tunnelpair holds the same files, the same contents, upgraded or fresh`,
                    freshState[h] === upgradedState[h],
                    `fresh:\n${freshState[h]}upgraded:\n${upgradedState[h]}`,
                );
            await destroyRestores("the fresh deployment", fresh);
        }
    } finally {
        await lab.stop();
    }
    return report();
}
