// Fault injection: every create script of a stack, failing at each of its changing steps in
// turn, must leave its host exactly as before, say which host and step failed and why, and
// converge like a clean run when run again. Also: a destroy whose first removal is refused,
// one family's firewall restore refused in a rollback and in a destroy (where the pair has
// chains in both), the SSH connection cut mid-run, and a destroy after a partially applied
// stack.
//
// A step is one command that changes the host (ip ... add/del/set, each command of an
// ip -batch, iptables, iptables-restore, their IPv6 twins, modprobe). The failure comes from
// wrappers put first on the script's PATH, on the lab host only: the product's scripts are run
// unmodified.
import { configKeys } from "../components/config";
import { SshConnection } from "../components/ssh/connection";
import { chainPrefix } from "../components/plan";
import { readStackFile, StackFile } from "../components/stackFile";
import { destroy, Executor, StackState, up } from "../replay/engine";
import { bootSysctls, installSystemdStandIn, managerEnv, rebootHost, runUnit } from "./day2";
import { Lab, startLab } from "./lab";
import { persistedPairs } from "./persistence";
import { CheckResult, labExec, recordInLab, Scenario, snapshotAll } from "./scenario";
import { diffSnapshots, parseSnapshot, Snapshot, snapshotScript } from "./snapshot";
import { loadWorld } from "./world";

const faultDir = "/run/tunnelpair-fault";

/**
 * One wrapper, installed as ip, iptables, iptables-restore, ip6tables, ip6tables-restore and
 * modprobe: it counts the calls that change the host and fails the FAULT_AT-th, as a refusal
 * (exit 2), a missing binary (127) or a hang (it marks ${faultDir}/hung and waits for
 * ${faultDir}/release, then runs the step); every other call goes straight to the real
 * command. FAULT_SCOPE=removals counts only the commands of an \`ip -force -batch\` (a
 * destroy's devices, addresses and routes). Besides, FAULT_ALSO="PROG N" refuses the N-th
 * changing call of PROG (each program's calls counted apart, in ${faultDir}/PROG.calls,
 * whatever the scope; not the commands of an ip batch): e.g. a rollback's or a destroy's
 * restore of one family. ${faultDir}/steps lists each counted step as "N PROG".
 */
const wrapper = `#!/bin/sh
self=\${0##*/}
PATH=\${PATH#${faultDir}:}
fault() {
    case "\${FAULT_KIND:-refuse}" in
        missing) echo "$self: command not found (injected)" >&2; exit 127 ;;
        # hang until the test lets go (it cuts the connection first), 60 s at most
        hang) echo $$ >${faultDir}/hung; n=0; while [ ! -e ${faultDir}/release ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done ;;
        *) echo "RTNETLINK answers: Operation not permitted (injected into $self $*)" >&2; exit 2 ;;
    esac
}
# step [removal]: counts one step (in FAULT_SCOPE); true when it is the one to fail
step() {
    [ "\${FAULT_SCOPE:-all}" = all ] || [ "\${1-}" = removal ] || return 1
    n=0; [ -r ${faultDir}/count ] && read -r n <${faultDir}/count
    n=$((n + 1)); echo "$n" >${faultDir}/count; echo "$n $self" >>${faultDir}/steps
    [ "$n" = "\${FAULT_AT:-0}" ]
}
# also: counts one call of this program; true when FAULT_ALSO names it
also() {
    c=0; [ -r ${faultDir}/$self.calls ] && read -r c <${faultDir}/$self.calls
    c=$((c + 1)); echo "$c" >${faultDir}/$self.calls
    [ "\${FAULT_ALSO-}" = "$self $c" ]
}
# ip [-force] -batch FILE|-: each of its commands is a step of its own, run one by one, as ip
# would: -batch stops at the first that fails, -force tries every one ("Command failed FILE:N")
if [ "$self $1" = "ip -batch" ] || [ "$self $1 $2" = "ip -force -batch" ]; then
    force=; [ "$1" = -force ] && { force=1; shift; }
    i=0 rc=0
    [ "$2" = - ] || exec <"$2"
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        i=$((i + 1))
        # shellcheck disable=SC2086
        if step \${force:+removal}; then (fault $line) && ip $line </dev/null; else ip $line </dev/null; fi || {
            echo "Command failed $2:$i" >&2; rc=1; [ -n "$force" ] || exit 1
        }
    done
    exit $rc
fi
case "$self $*" in
    "ip "*" add "* | "ip "*" del "* | "ip "*" set "* | "ip "*" replace "* | "iptables "*" -"[IDANFX]" "* | iptables-restore* | "ip6tables "*" -"[IDANFX]" "* | ip6tables-restore* | modprobe*) ;;
    *) exec "$self" "$@" ;;
esac
if step; then fault "$@"; fi
if also; then FAULT_KIND=refuse; fault "$@"; fi
exec "$self" "$@"
`;
const installWrappers = `mkdir -p ${faultDir} && cat >${faultDir}/wrapper <<'EOF'
${wrapper}EOF
chmod +x ${faultDir}/wrapper && for c in ip iptables iptables-restore ip6tables ip6tables-restore modprobe; do ln -sf wrapper ${faultDir}/$c; done`;

/**
 * Waits (10 s at most) until the hung step has no sshd among its ancestors (its session ended
 * and it was handed to init), then lets it go; fails when the session is still there.
 */
const sshdGoneThenRelease = `under_sshd() {
    p=$1
    while [ "$p" -gt 1 ]; do
        c=$(cat /proc/$p/comm 2>/dev/null) || return 1
        case $c in sshd*) return 0 ;; esac
        p=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$p/status)
    done
    return 1
}
read -r pid <${faultDir}/hung
n=0
while under_sshd "$pid" && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
under_sshd "$pid" && { echo "the hung step ($pid) is still under sshd" >&2; exit 1; }
: >${faultDir}/release`;

function withFault(command: string, at: number, kind: "refuse" | "missing" | "hang", scope: "all" | "removals" = "all", also = ""): string {
    return `rm -f ${faultDir}/count ${faultDir}/steps ${faultDir}/*.calls ${faultDir}/hung ${faultDir}/release; PATH=${faultDir}:$PATH FAULT_AT=${at} FAULT_KIND=${kind} FAULT_SCOPE=${scope} FAULT_ALSO='${also}' ${command}`;
}

export interface FaultReport {
    readonly checks: CheckResult[];
    readonly cases: number;
}

/**
 * The first pair's a side with one more admit (TCP port 2222 from the b side's network), where
 * the pair's firewall is owned: its Command's create, which rebuilds the pair's INPUT chain and
 * changes nothing else, and the rule it adds as iptables -S prints it.
 */
async function changedAdmit(sf: StackFile, lab: Lab): Promise<{ command: string; create: string; port: number; rule: RegExp } | undefined> {
    const pairs = JSON.parse(JSON.stringify(sf.config[configKeys.pairs])) as Record<string, PairSketch>;
    const [name, pair] = Object.entries(pairs)[0];
    if ((pair.firewall ?? "owned") !== "owned" || !pair.b.network) return undefined;
    const port = 2222;
    pair.a.admit = [...(pair.a.admit ?? []), { from: [pair.b.network], protocol: "tcp", ports: [port] }];
    const changed = await recordInLab(sf, lab, { [configKeys.pairs]: pairs });
    const command = changed.resources.find((r) => r.name === `${name}-a-${pair.a.host}`);
    if (!command) return undefined;
    const rule = new RegExp(`^-A ${chainPrefix(sf.stack, name)}-IN6? .*-p tcp .*--dport ${port} `, "m");
    return { command: command.name, create: command.inputs.create as string, port, rule };
}

interface PairSketch {
    firewall?: string;
    a: { host: string; admit?: unknown[] };
    b: { network?: string };
}

async function snapshot(lab: Lab, host: string): Promise<Snapshot> {
    const r = await lab.exec(host, snapshotScript);
    if (r.code !== 0) throw new Error(`snapshot of ${host}: ${r.stderr}`);
    return parseSnapshot(r.stdout);
}

/**
 * `opts.hosts`: only the scripts of these hosts (the hub's shared router: its other scripts
 * are man2's and the toy's, which their own runs cover).
 */
export async function runFaults(
    name: string,
    s: Scenario,
    log: (l: string) => void = () => undefined,
    opts: { hosts?: readonly string[] } = {},
): Promise<FaultReport> {
    const checks: CheckResult[] = [];
    const check = (n: string, ok: boolean, detail?: string) => {
        checks.push({ name: n, ok, detail });
        if (!ok) log(`FAIL ${n}${detail ? `\n       ${detail.split("\n").join("\n       ")}` : ""}`);
    };
    let cases = 0;
    const lab = await startLab(s.world);
    try {
        const sf = readStackFile(s.stackFile);
        const recording = await recordInLab(sf, lab);
        const commands = recording.resources.filter((r) => r.type === "command:remote:Command");
        for (const host of Object.keys(sf.config[configKeys.hosts] as object)) {
            const r = await lab.exec(host, installWrappers);
            if (r.code !== 0) throw new Error(`installing the fault wrappers on ${host}: ${r.stderr}`);
        }
        const run = (c: (typeof commands)[number], text: string) => labExec(c.inputs.connection as SshConnection, text);
        const rebuild = await changedAdmit(sf, lab);

        for (const c of commands) {
            const host = hostOf(c.name, Object.keys(sf.config[configKeys.hosts] as object));
            if (opts.hosts && !opts.hosts.includes(host)) continue;
            const create = c.inputs.create as string;
            const del = c.inputs.delete as string;
            // what this Command waits for is there first, as in an up (b's apply ends with the
            // probe, which needs a's), and goes after its cases
            const waited = commands.filter((d) => c.dependencies.includes(d.urn));
            for (const d of waited) {
                const r = await run(d, d.inputs.create as string);
                if (r.code !== 0) throw new Error(`${d.name}, which ${c.name} waits for: its create failed: ${r.stderr}`);
            }
            const before = await snapshot(lab, host);
            // a first run loads ipip (a step the later runs do not have); then a clean run, counting its changing steps
            await run(c, create);
            await run(c, del);
            const clean = await run(c, withFault(create, 0, "refuse"));
            const steps = Number((await lab.exec(host, `cat ${faultDir}/count 2>/dev/null || echo 0`)).stdout.trim());
            check(`${c.name}: clean create succeeds (${steps} changing steps)`, clean.code === 0, clean.stderr);
            const applied = await snapshot(lab, host);
            // what the clean create listed of the firewall's, each family's, and its steps in order ("N PROG")
            const listed = (await lab.exec(host, "cat /var/lib/tunnelpair/*/*/manifest 2>/dev/null")).stdout.split("\n").filter((l) => l !== "");
            const firewall6 = listed.filter((l) => /^own (chain|jump) \S+6 /.test(l));
            const firewall4 = listed.filter((l) => /^own (chain|jump) \S*[^6\s] /.test(l));
            const stepLog = (await lab.exec(host, `cat ${faultDir}/steps 2>/dev/null`)).stdout.split("\n");
            await run(c, withFault(del, 0, "refuse", "removals"));
            const removals = Number((await lab.exec(host, `cat ${faultDir}/count 2>/dev/null || echo 0`)).stdout.trim());
            check(`${c.name}: delete after the clean create restores ${host}`, diffSnapshots(before, await snapshot(lab, host)).length === 0);

            for (let k = 1; k <= steps; k++) {
                const kind = k % 3 === 0 ? "missing" : "refuse";
                cases++;
                const failed = await run(c, withFault(create, k, kind));
                const named = namesFault(failed.stderr, host);
                check(`${c.name} step ${k}/${steps} (${kind}): fails, naming host, step and cause`, failed.code !== 0 && named, failed.stderr);
                const d = diffSnapshots(before, await snapshot(lab, host));
                check(`${c.name} step ${k}/${steps} (${kind}): ${host} left as before (${d.length} diff lines)`, d.length === 0, d.join("\n"));
                const rerun = await run(c, create);
                const d2 = diffSnapshots(applied, await snapshot(lab, host));
                check(
                    `${c.name} step ${k}/${steps}: a rerun converges to the clean state (${d2.length} diff lines)`,
                    rerun.code === 0 && d2.length === 0,
                    rerun.stderr + d2.join("\n"),
                );
                await run(c, del);
            }

            // a destroy whose first removal of a device, address or route is refused: it fails
            // naming that object, removes the rest, keeps only that one listed; the next destroy
            // restores the host
            if (removals > 0) {
                cases++;
                await run(c, create);
                const refused = await run(c, withFault(del, 1, "refuse", "removals"));
                // (where its manifest is, as the error says)
                const stateDir = /stay listed in (\S+)\/manifest /.exec(refused.stderr)?.[1];
                const left = await lab.exec(host, `cat '${stateDir}/manifest'`);
                const named = /removing (\S.*) failed: .*injected/.exec(refused.stderr)?.[1];
                // what differs from before is the state directory and that object (its address or key)
                const token = named?.split(" ")[1] ?? "";
                const rest = diffSnapshots(before, await snapshot(lab, host)).filter((l) => !l.startsWith("state:") && !l.includes(token));
                check(
                    `${c.name}: destroy with its first device, address or route removal refused: fails naming it (${named ?? "none"}), removes the rest, only it stays listed`,
                    stateDir !== undefined && refused.code !== 0 && named !== undefined && left.stdout.trim() === `own ${named}` && rest.length === 0,
                    `${refused.stderr}\nmanifest: ${left.stdout}${left.stderr}\nnot removed:\n${rest.join("\n")}`,
                );
                const again = await run(c, del);
                const d = diffSnapshots(before, await snapshot(lab, host));
                check(
                    `${c.name}: the next destroy removes it and restores ${host} (${d.length} diff lines)`,
                    again.code === 0 && d.length === 0,
                    again.stderr + d.join("\n"),
                );
            }

            // where the pair has firewall chains in both families (sit): one family's restore
            // refused must not keep the other's from going, in a rollback or in a destroy
            if (firewall4.length > 0 && firewall6.length > 0) {
                // (a) the run fails at the step after ip6tables-restore committed its chains, and its
                // rollback's iptables-restore is refused: the undo of IPv6's still goes. IPv4's
                // refused undo leaves IPv4's chains and jumps (on a first run nothing records
                // them); the rerun takes them up and the delete removes them.
                const commit6 = stepLog
                    .map((l) => /^(\d+) ip6tables-restore$/.exec(l))
                    .filter((m) => m !== null)
                    .pop();
                const k = commit6 ? Number(commit6[1]) + 1 : 0;
                // (the rollback's iptables-restore: the first after those of the run up to step k)
                const undo4 = stepLog.filter((l) => /^\d+ iptables-restore$/.test(l) && Number(l.split(" ")[0]) < k).length + 1;
                cases++;
                const failed = await run(c, withFault(create, k, "refuse", "all", `iptables-restore ${undo4}`));
                const calls = (
                    await lab.exec(
                        host,
                        `cd ${faultDir} && for p in iptables-restore ip6tables-restore; do echo "$p $(cat $p.calls 2>/dev/null || echo 0)"; done`,
                    )
                ).stdout;
                const d = diffSnapshots(before, await snapshot(lab, host));
                const not4 = d.filter((l) => !l.startsWith("iptables: "));
                check(
                    `${c.name}: a run failing at step ${k}/${steps} (after ip6tables-restore), its rollback's iptables-restore refused: fails, ${host} as before but for IPv4's chains and jumps (${not4.length} other diff lines)`,
                    commit6 !== undefined &&
                        k <= steps &&
                        failed.code !== 0 &&
                        namesFault(failed.stderr, host) &&
                        d.some((l) => l.startsWith("iptables: ")) &&
                        not4.length === 0,
                    `${failed.stderr}\nrestores started:\n${calls}\n${d.join("\n")}`,
                );
                const rerun = await run(c, create);
                const d2 = diffSnapshots(applied, await snapshot(lab, host));
                check(`${c.name}: after it, a rerun converges (${d2.length} diff lines)`, rerun.code === 0 && d2.length === 0, rerun.stderr + d2.join("\n"));
                await run(c, del);
                const d3 = diffSnapshots(before, await snapshot(lab, host));
                check(`${c.name}: and its delete restores ${host} (${d3.length} diff lines)`, d3.length === 0, d3.join("\n"));

                // (b) a destroy whose ip6tables-restore is refused: IPv4's chains and jumps go,
                // only IPv6's stay listed; the next destroy restores the host
                cases++;
                await run(c, create);
                const refused = await run(c, withFault(del, 0, "refuse", "all", "ip6tables-restore 1"));
                const left = (await lab.exec(host, "cat /var/lib/tunnelpair/*/*/manifest 2>/dev/null")).stdout.split("\n").filter((l) => l !== "");
                const rest = diffSnapshots(before, await snapshot(lab, host));
                const v4 = rest.filter((l) => l.startsWith("iptables: "));
                const other = rest.filter((l) => !l.startsWith("iptables: ") && !l.startsWith("ip6tables: ") && !l.startsWith("state: "));
                check(
                    `${c.name}: destroy with its ip6tables-restore refused: fails, IPv4's ${firewall4.length} chains and jumps gone from ${host} and from the manifest, only IPv6's ${firewall6.length} stay listed`,
                    refused.code !== 0 &&
                        /injected/.test(refused.stderr) &&
                        left.join("\n") === firewall6.join("\n") &&
                        v4.length === 0 &&
                        rest.some((l) => l.startsWith("ip6tables: ")) &&
                        other.length === 0,
                    `${refused.stderr}\nmanifest:\n${left.join("\n")}\nnot removed:\n${[...v4, ...other].join("\n")}`,
                );
                const again = await run(c, del);
                const d4 = diffSnapshots(before, await snapshot(lab, host));
                check(
                    `${c.name}: the next destroy removes IPv6's and restores ${host} (${d4.length} diff lines)`,
                    again.code === 0 && d4.length === 0,
                    again.stderr + d4.join("\n"),
                );
            }

            // the connection cut mid-run: the step in the middle hangs, the client goes away
            if (steps > 1) {
                cases++;
                const k = Math.ceil(steps / 2);
                const conn = c.inputs.connection as SshConnection;
                // the run hangs at step k; once it is there, the client goes away (as when the
                // deployer's process dies), then the step is let go: the script meets the closed
                // pipe and rolls back
                const cut = new AbortController();
                const running = labExec(conn, withFault(create, k, "hang"), undefined, { timeoutMs: 120_000, signal: cut.signal });
                const hung = await lab.exec(
                    host,
                    `n=0; while [ ! -e ${faultDir}/hung ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n + 1)); done; [ -e ${faultDir}/hung ]`,
                    {
                        timeoutMs: 90_000,
                    },
                );
                cut.abort();
                const gone = await running;
                // let go only once the host has seen the client go: no sshd above the hung step
                const released = await lab.exec(host, sshdGoneThenRelease, { timeoutMs: 30_000 });
                // Its end is when it lets go of the host's lock (the run and its children hold
                // /var/lib), not a fixed time: a loaded machine rolls back slower than a fixed wait allows.
                const ended = await lab.exec(host, `flock -w 90 /var/lib true && cat ${faultDir}/count`);
                const reached = Number(ended.stdout.trim());
                check(
                    `${c.name}: SSH cut at step ${k}: the run reached the hung step, lost its client and ended (${reached} steps)`,
                    hung.code === 0 && gone.code !== 0 && released.code === 0 && ended.code === 0 && reached >= k,
                    `hung: ${hung.code}; client: ${gone.code} ${gone.stderr}; sshd gone: ${released.code} ${released.stderr}; ended: ${ended.code} ${ended.stderr}`,
                );
                const d = diffSnapshots(before, await snapshot(lab, host));
                check(`${c.name}: SSH cut at step ${k}: ${host} rolled back (${d.length} diff lines)`, d.length === 0, d.join("\n"));
                const rerun = await run(c, create);
                check(
                    `${c.name}: after the cut, a rerun converges`,
                    rerun.code === 0 && diffSnapshots(applied, await snapshot(lab, host)).length === 0,
                    rerun.stderr,
                );
                await run(c, del);
            }
            // a change whose run fails: the chain it rebuilt is put back, and the next run still
            // applies the change (a rolled-back rebuild once left the new rules in the chain's
            // file, and every later run took the chain for up to date)
            if (rebuild && rebuild.command === c.name) {
                cases++;
                await run(c, create);
                const applied = await snapshot(lab, host);
                const failed = await run(c, withFault(rebuild.create, 1, "refuse"));
                const d = diffSnapshots(applied, await snapshot(lab, host));
                check(
                    `${c.name}: a run adding an admit, failing at its first step: fails, ${host} left as it was (${d.length} diff lines)`,
                    failed.code !== 0 && d.length === 0,
                    `${failed.stderr}\n${d.join("\n")}`,
                );
                const rerun = await run(c, rebuild.create);
                const rules = (await lab.exec(host, "iptables -S; ip6tables -S 2>/dev/null")).stdout;
                check(
                    `${c.name}: its rerun applies the admit (port ${rebuild.port} in the pair's INPUT chain)`,
                    rerun.code === 0 && rebuild.rule.test(rules),
                    `${rerun.stdout}${rerun.stderr}\n${rules}`,
                );
                await run(c, del);
            }
            const d = diffSnapshots(before, await snapshot(lab, host));
            check(`${c.name}: ${host} restored after its fault cases`, d.length === 0, d.join("\n"));
            for (const w of [...waited].reverse()) await run(w, w.inputs.delete as string);
        }

        // a stack applied partway, then destroyed: the last endpoint's command fails at its
        // first step (an endpoint always has steps; a hub's second compute-node script may
        // find everything already held and change nothing)
        cases++;
        const last = commands.filter((c) => /-[ab]-/.test(c.name)).pop()!;
        const befores = Object.fromEntries(
            await Promise.all(Object.keys(sf.config[configKeys.hosts] as object).map(async (h) => [h, await snapshot(lab, h)] as const)),
        );
        const failing: Executor = (conn, text, stdin) =>
            text === last.inputs.create ? labExec(conn, withFault(text, 1, "refuse"), stdin) : labExec(conn, text, stdin);
        const state = new StackState();
        const partial = await up(recording, state, failing).then(
            () => undefined,
            (e: Error) => e,
        );
        check(`partial up: fails on ${last.name}`, partial instanceof Error && !state.resources.has(last.urn), partial?.message);
        await destroy(state, labExec);
        for (const [h, b] of Object.entries(befores)) {
            const d = diffSnapshots(b, await snapshot(lab, h));
            check(`destroy after the partial up restores ${h} (${d.length} diff lines)`, d.length === 0, d.join("\n"));
        }
        for (const h of Object.keys(sf.config[configKeys.hosts] as object)) await lab.exec(h, `rm -rf ${faultDir}`);
    } finally {
        await lab.stop();
    }
    log(`faults ${name}: ${cases} cases, ${checks.filter((c) => c.ok).length} checks passed, ${checks.filter((c) => !c.ok).length} failed`);
    return { checks, cases };
}

/** The fault wrappers' variables for a unit run (runUnit's env): what withFault sets for a script run over SSH. */
function faultEnv(at: number, kind: "refuse" | "missing"): Record<string, string> {
    return { PATH: `${faultDir}:${managerEnv.PATH}`, FAULT_AT: String(at), FAULT_KIND: kind, FAULT_SCOPE: "all" };
}

/**
 * The boot run under fault injection: with a systemd stand-in on every host, `up` installs
 * the units; then each host in `boot` is rebooted and its boot unit run as systemd would,
 * failing at each of that run's changing steps in turn. Each failing run must say (in what
 * the unit prints, its journal) which host and step failed and why, leave the host as the
 * boot found it, and the next boot run must bring the host back to its state after `up`.
 * Destroy then restores every host.
 */
export async function runBootFaults(name: string, s: Scenario, boot: readonly string[], log: (l: string) => void = () => undefined): Promise<FaultReport> {
    const checks: CheckResult[] = [];
    const check = (n: string, ok: boolean, detail?: string) => {
        checks.push({ name: n, ok, detail });
        if (!ok) log(`FAIL ${n}${detail ? `\n       ${detail.split("\n").join("\n       ")}` : ""}`);
    };
    let cases = 0;
    const world = typeof s.world === "string" ? loadWorld(s.world) : s.world;
    const lab = await startLab(world);
    try {
        const sf = readStackFile(s.stackFile);
        const hosts = Object.keys(sf.config[configKeys.hosts] as object);
        const pairsOn = persistedPairs(sf);
        for (const h of hosts) {
            await bootSysctls(lab, h);
            await installSystemdStandIn(lab, h);
            const r = await lab.exec(h, installWrappers);
            if (r.code !== 0) throw new Error(`installing the fault wrappers on ${h}: ${r.stderr}`);
        }
        const before = await snapshotAll(lab, hosts);
        const state = new StackState();
        await up(await recordInLab(sf, lab), state, labExec);
        const afterUp = await snapshotAll(lab, hosts);
        const steps = async (h: string) => Number((await lab.exec(h, `cat ${faultDir}/count 2>/dev/null || echo 0`)).stdout.trim());
        // as withFault does for a run over SSH: each faulty run counts its steps from 0
        const resetCount = async (h: string) =>
            void (await lab.exec(h, `rm -f ${faultDir}/count ${faultDir}/steps ${faultDir}/*.calls ${faultDir}/hung ${faultDir}/release`));

        for (const h of boot) {
            for (const { unit } of pairsOn.get(h)!) {
                await rebootHost(lab, world, h);
                const booted = await snapshot(lab, h);
                await resetCount(h);
                const clean = await runUnit(lab, h, unit, { env: faultEnv(0, "refuse") });
                const n = await steps(h);
                const d0 = diffSnapshots(afterUp[h], await snapshot(lab, h));
                check(
                    `${h}: a clean boot run of ${unit} (${n} changing steps) gives back the state after up`,
                    clean.code === 0 && n > 0 && d0.length === 0,
                    clean.stderr + d0.join("\n"),
                );
                for (let k = 1; k <= n; k++) {
                    const kind = k % 3 === 0 ? "missing" : "refuse";
                    cases++;
                    await rebootHost(lab, world, h);
                    await resetCount(h);
                    const failed = await runUnit(lab, h, unit, { env: faultEnv(k, kind) });
                    const named = namesFault(failed.stderr, h);
                    check(
                        `${h} boot run step ${k}/${n} (${kind}): the unit fails, naming host, step and cause`,
                        failed.code !== 0 && named,
                        `exit ${failed.code}\n${failed.stdout}${failed.stderr}`,
                    );
                    const d = diffSnapshots(booted, await snapshot(lab, h));
                    check(`${h} boot run step ${k}/${n} (${kind}): ${h} left as the boot found it (${d.length} diff lines)`, d.length === 0, d.join("\n"));
                    const again = await runUnit(lab, h, unit);
                    const d2 = diffSnapshots(afterUp[h], await snapshot(lab, h));
                    check(
                        `${h} boot run step ${k}/${n}: the next boot run gives back the state after up (${d2.length} diff lines)`,
                        again.code === 0 && d2.length === 0,
                        again.stderr + d2.join("\n"),
                    );
                }
            }
        }
        await destroy(state, labExec);
        const after = await snapshotAll(lab, hosts);
        for (const h of hosts) {
            const d = diffSnapshots(before[h], after[h]);
            check(`destroy after the boot faults restores ${h} (${d.length} diff lines)`, d.length === 0, d.join("\n"));
            await lab.exec(h, `rm -rf ${faultDir}`);
        }
    } finally {
        await lab.stop();
    }
    log(`boot faults ${name}: ${cases} cases, ${checks.filter((c) => c.ok).length} checks passed, ${checks.filter((c) => !c.ok).length} failed`);
    return { checks, cases };
}

/** Whether a failed run's stderr names the host, the step (or error) and the injected cause. */
function namesFault(stderr: string, host: string): boolean {
    return new RegExp(`tunnelpair\\[[^\\]]*@${host}\\]: .*(step|error)`).test(stderr) && /injected/.test(stderr);
}

/** Command names end with the host: "<pair>-<role>-<host>". */
function hostOf(commandName: string, hosts: string[]): string {
    const h = hosts.filter((x) => commandName.endsWith(`-${x}`)).sort((x, y) => y.length - x.length)[0];
    if (!h) throw new Error(`no host for ${commandName}`);
    return h;
}
