// Day-2 operations in the lab (issue 11): what the lab needs to prove persistence across a
// reboot and repair after a firewall reload, without systemd inside the lab kernel.
//
// - installSystemdStandIn: a host "runs systemd" (sd_booted(3): /run/systemd/system is a
//   directory) and its systemctl is a stub, bind-mounted over the real binary inside that
//   host's mount namespace, that logs its arguments and changes nothing;
// - rebootHost: what a boot loses goes back to the world's boot state (links, addresses,
//   routes, rules, iptables, the snapshot's sysctls; in a world with IPv6, IPv6's too and
//   ip6tables); the filesystem stays;
// - runUnit / runTimerService: a unit's ExecStart= run as systemd runs a service (root,
//   systemd's environment and working directory, stdin /dev/null);
// - reloadFirewall: every iptables table (and, in a world with IPv6, ip6tables table) back to
//   the world's ruleset, as a firewall reload.
//
// Every script here runs on a lab host through lab.exec, never on this machine.
import * as fs from "fs";
import * as path from "path";
import { readStackFile } from "../components/stackFile";
import { destroy, StackState, up } from "../replay/engine";
import { ExecResult, Lab, startLab } from "./lab";
import { CheckResult, labExec, probeScript, recordInLab, snapshotAll } from "./scenario";
import { diffSnapshots, fallbackDevices, Snapshot, snapshotSysctl6Files, snapshotSysctlFiles, unitDir } from "./snapshot";
import { parseUnitFile, planService } from "./unitfile";
import { loadWorld, World } from "./world";

/** The lab's own files on a host (its private /run): the stand-in, its log, the reboot's work files. */
const labRun = "/run/tunnelpair-lab";
export const systemctlLog = `${labRun}/systemctl.log`;
/** The units the stand-in's is-active reports active: a file of each one's name. */
const activeDir = `${labRun}/active`;
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

async function sh(lab: Lab, host: string, script: string, what: string): Promise<string> {
    const r = await lab.exec(host, script);
    if (r.code !== 0) throw new Error(`${host}: ${what}: exit ${r.code}: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
}

// --- the systemd stand-in ---------------------------------------------------------------

/**
 * The stub: one line per call, its arguments joined by single spaces, appended with one
 * write; exit 0 for what the runtime calls; "enabled" for is-enabled; for is-active, "active"
 * for a unit the lab has said runs (a file named after it in ${activeDir}: setActiveUnit),
 * else "inactive" and systemctl's exit code 3; any other verb fails loudly, so that nothing
 * relies on behaviour the stand-in does not have.
 */
const stub = `#!/bin/sh
# systemctl stand-in of the tunnelpair lab (lab/day2.ts): logs its arguments, changes nothing
line=
for a in "$@"; do line="\${line:+$line }$a"; done
printf '%s\\n' "$line" >>${systemctlLog}
verb= quiet= units=
for a in "$@"; do
    case $a in
    -q | --quiet) quiet=1 ;;
    -*) ;;
    *) if [ -z "$verb" ]; then verb=$a; else units="$units $a"; fi ;;
    esac
done
case $verb in
daemon-reload | start | stop | restart | try-restart | reload-or-restart | enable | disable | reset-failed) exit 0 ;;
is-enabled) [ -n "$quiet" ] || for u in $units; do echo enabled; done; exit 0 ;;
is-active)
    rc=0
    for u in $units; do
        if [ -e ${activeDir}/"$u" ]; then answer=active; else answer=inactive; rc=3; fi
        [ -n "$quiet" ] || echo $answer
    done
    exit $rc ;;
*) echo "systemctl (tunnelpair lab stand-in): \${verb:-no verb} is not modelled" >&2; exit 1 ;;
esac
`;

/**
 * Makes `host` look like a host that runs systemd: /run/systemd/system (made if missing) and
 * the stub bind-mounted over the real systemctl (`command -v systemctl` there, symlinks
 * resolved) in the host's own mount namespace, so every caller on that host, whatever its
 * PATH, gets the stub, and no other host does. Calls are logged to systemctlLog. Returns the
 * path it covered.
 */
export async function installSystemdStandIn(lab: Lab, host: string): Promise<string> {
    const out = await sh(
        lab,
        host,
        `set -eu
d=${labRun}
bin=$(command -v systemctl) || { echo "no systemctl to stand in for" >&2; exit 1; }
bin=$(readlink -f "$bin")
[ ! -e $d/systemctl.bin ] || { echo "the systemd stand-in is already installed over $(cat $d/systemctl.bin)" >&2; exit 1; }
mkdir -p $d
cat >$d/systemctl <<'TUNNELPAIR_LAB_STUB'
${stub}TUNNELPAIR_LAB_STUB
chmod 755 $d/systemctl
[ -d /run/systemd ] || : >$d/made-run-systemd
[ -d /run/systemd/system ] || : >$d/made-run-systemd-system
mkdir -p /run/systemd/system
mount --bind $d/systemctl "$bin"
printf '%s\\n' "$bin" >$d/systemctl.bin
echo "$bin"`,
        "installing the systemd stand-in",
    );
    return out.trim();
}

/** Tells the stand-in on `host` that `unit` runs (is-active answers active) or not. */
export async function setActiveUnit(lab: Lab, host: string, unit: string, active: boolean): Promise<void> {
    await sh(
        lab,
        host,
        active ? `mkdir -p ${activeDir} && : >${activeDir}/${q(unit)}` : `rm -f ${activeDir}/${q(unit)}`,
        `marking ${unit} ${active ? "active" : "inactive"}`,
    );
}

/** Undoes installSystemdStandIn: unmounts the stub, removes the directories it made; keeps the log. */
export async function removeSystemdStandIn(lab: Lab, host: string): Promise<void> {
    await sh(
        lab,
        host,
        `set -eu
d=${labRun}
[ -e $d/systemctl.bin ] || { echo "the systemd stand-in is not installed" >&2; exit 1; }
read -r bin <$d/systemctl.bin
umount "$bin"
[ ! -e $d/made-run-systemd-system ] || rmdir /run/systemd/system
[ ! -e $d/made-run-systemd ] || rmdir /run/systemd
rm -rf $d/systemctl $d/systemctl.bin $d/made-run-systemd $d/made-run-systemd-system ${activeDir}`,
        "removing the systemd stand-in",
    );
}

/** The stand-in's calls on `host`, oldest first, each its arguments joined by spaces ("start x.timer"); `clear` empties the log after reading. */
export async function systemctlCalls(lab: Lab, host: string, opts: { clear?: boolean } = {}): Promise<string[]> {
    const out = await sh(lab, host, `cat ${systemctlLog} 2>/dev/null || true${opts.clear ? `; rm -f ${systemctlLog}` : ""}`, "reading the systemctl log");
    return out === "" ? [] : out.replace(/\n$/, "").split("\n");
}

// --- a reboot ---------------------------------------------------------------------------

const bootValues = new WeakMap<Lab, Map<string, [string, string][]>>();

/**
 * The boot values of the sysctls the snapshot compares ("net/ipv4/ip_forward" -> "0"; IPv6's
 * too, "net/ipv6/conf/eth0/disable_ipv6" -> "0"), read once per lab and host (later calls
 * return the first reading): call it right after the lab boots, before anything is deployed
 * (a host with /var/lib/tunnelpair is refused). rebootHost puts these back (IPv6's in a world
 * with IPv6).
 */
export async function bootSysctls(lab: Lab, host: string): Promise<Record<string, string>> {
    let perHost = bootValues.get(lab);
    if (!perHost) bootValues.set(lab, (perHost = new Map<string, [string, string][]>()));
    let values = perHost.get(host);
    if (!values) {
        const out = await sh(
            lab,
            host,
            `set -u
if [ -e /var/lib/tunnelpair ]; then echo "/var/lib/tunnelpair exists: something was deployed, these are not boot values" >&2; exit 1; fi
for f in ${snapshotSysctlFiles}; do read -r v <"$f"; echo "\${f#/proc/sys/} $v"; done
for f in ${snapshotSysctl6Files}; do [ -e "$f" ] || continue; read -r v <"$f"; echo "\${f#/proc/sys/} $v"; done`,
            "reading the boot sysctls",
        );
        values = out
            .split("\n")
            .filter(Boolean)
            .map((l) => l.split(" ", 2) as [string, string]);
        perHost.set(host, values);
    }
    return Object.fromEntries(values);
}

/**
 * The firewall part of a boot or a reload, as sh: every loaded table (or, with `named`, those
 * the world's ruleset names) reset to empty built-in chains with ACCEPT policies and no
 * others, then the world's ruleset applied as iptables-restore applies it without --noflush.
 * `family` 6: the same for ip6tables and the world's firewall6.
 */
function firewallScript(world: World, host: string, tables: "all" | "named", family: 4 | 6 = 4): string {
    const fw = family === 4 ? world.hosts[host].firewall : world.hosts[host].firewall6;
    const [x, loaded, file, what] = family === 4 ? ["iptables", "ip_tables_names", "fw", "firewall"] : ["ip6tables", "ip6_tables_names", "fw6", "firewall6"];
    const named = fw ? [...fw.matchAll(/^\s*\*(\w+)\s*$/gm)].map((m) => m[1]) : [];
    const select = tables === "named" ? `case " ${named.join(" ")} " in *" $t "*) ;; *) continue ;; esac\n    ` : "";
    return `for t in $(cat /proc/net/${loaded} 2>/dev/null); do
    ${select}echo "*$t"; ${x}-save -t "$t" | sed -n 's/^:\\([^ ]*\\) [A-Z][A-Z]* .*/:\\1 ACCEPT [0:0]/p'; echo COMMIT
done >${labRun}/${file}.reset
[ ! -s ${labRun}/${file}.reset ] || ${x}-restore <${labRun}/${file}.reset
${
    fw === undefined
        ? `: # the world has no ${what}: empty ACCEPT chains`
        : `cat >${labRun}/${file}.world <<'TUNNELPAIR_LAB_FW'\n${fw.endsWith("\n") ? fw : fw + "\n"}TUNNELPAIR_LAB_FW\n${x}-restore <${labRun}/${file}.world`
}`;
}

/**
 * Empties the host's conntrack table (its network namespace's), as a boot does: what
 * `conntrack -F` sends, one ctnetlink IPCTNL_MSG_CT_DELETE for AF_INET without attributes
 * (the lab has no conntrack tool; python3 is in ./setup's packages). The kernel loads
 * nf_conntrack_netlink on demand.
 */
const conntrackFlush = `python3 -c '
import socket, struct, sys
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)  # NETLINK_NETFILTER
s.bind((0, 0))
s.send(struct.pack("=IHHII", 20, (1 << 8) | 2, 1 | 4, 1, 0) + struct.pack("=BBH", socket.AF_INET, 0, 0))
r = s.recv(4096)
err = struct.unpack("=i", r[16:20])[0] if struct.unpack("=H", r[4:6])[0] == 2 else 0
sys.exit("conntrack flush: error %d (%s)" % (-err, __import__("os").strerror(-err)) if err else 0)
'`;

export async function flushConntrack(lab: Lab, host: string): Promise<void> {
    await sh(lab, host, conntrackFlush, "flushing conntrack");
}

/** Runs `body` on `host` with its output in a file until it ends (the host's own routes come and go meanwhile), then prints it. */
async function detachedOutput(lab: Lab, host: string, name: string, body: string, what: string): Promise<string> {
    return sh(
        lab,
        host,
        `mkdir -p ${labRun}
(
set -eu
${body}
) >${labRun}/${name}.log 2>&1
rc=$?
cat ${labRun}/${name}.log
[ $rc = 0 ] || { cat ${labRun}/${name}.log >&2; exit $rc; }`,
        what,
    );
}

/**
 * A reboot of `host` as far as the kernel's state goes; its files stay (the state directory,
 * units, /run too, which a real boot would empty). Links the world did not make are deleted
 * (never lo, mgmt0 or a tunnel module's fallback device such as tunl0); policy rules other
 * than the kernel's three and routing tables other than local and main are flushed; the main
 * table keeps only its mgmt0 routes; each world interface gets its MTU, up, and exactly the
 * world's addresses (connected routes come back with them); lo keeps only 127.0.0.1/8; the
 * world's routes are added; the sysctls go back to bootSysctls' values; every iptables table
 * goes back to the world's firewall; the conntrack table is emptied. Management (mgmt0, its address and routes) is never
 * touched, so SSH to the host survives; output goes to a file meanwhile, so that a host
 * reached through its own interfaces survives too.
 *
 * In a world with IPv6, IPv6 too: its policy rules but the kernel's two and its tables but
 * local and main flushed, its main table flushed but for mgmt0's routes; IPv6 off on every
 * device (each device's disable_ipv6 written 1, then all's, which rewrites every device's:
 * their addresses and routes go), then IPv6's sysctls back to their boot values, all's, default's, then each
 * device's with its disable_ipv6 last, so that each device the world enabled comes up again
 * with its kernel-made addresses (link-local, lo's ::1) and routes, its forwarding and
 * accept_ra already as at boot; then the world's IPv6 addresses (nodad, as at boot) and
 * routes; every ip6tables table back to the world's firewall6. An IPv4 world's script is
 * what it was before IPv6 was modelled, byte for byte.
 */
export async function rebootHost(lab: Lab, world: World, host: string): Promise<void> {
    const boot = bootValues.get(lab)?.get(host);
    if (!boot) throw new Error(`rebootHost(${host}): no boot values; call bootSysctls(lab, "${host}") right after the lab boots`);
    const h = world.hosts[host];
    if (!h) throw new Error(`rebootHost: the world has no host ${host}`);
    const six = world.ipv6 === true;
    const is6 = (text: string) => text.includes(":");
    const keep = ["lo", ...(h.management ? ["mgmt0"] : []), ...Object.keys(h.interfaces), ...fallbackDevices];
    const batch: string[] = [];
    const batch6: string[] = [];
    for (const [name, i] of Object.entries(h.interfaces)) {
        batch.push(
            `link set dev ${name} mtu ${i.mtu ?? 1500} up`,
            `addr flush dev ${name}`,
            ...i.addresses.filter((a) => !is6(a)).map((a) => `addr add ${a} dev ${name}`),
        );
        batch6.push(...i.addresses.filter(is6).map((a) => `addr add ${a} dev ${name} nodad`));
    }
    batch.push(...h.routes.filter((r) => !is6(r)).map((r) => `route add ${r}`));
    batch6.push(...h.routes.filter(is6).map((r) => `route add ${r}`));
    const write = ([k, v]: [string, string]) => `[ ! -e /proc/sys/${k} ] || printf '%s\\n' ${q(v)} >/proc/sys/${k}`;
    // ip_forward first (it sets every forwarding value), then all and default, then each device
    const rank = (k: string) => (k === "net/ipv4/ip_forward" ? 0 : k.includes("/conf/all/") ? 1 : k.includes("/conf/default/") ? 2 : 3);
    const sysctls = boot
        .filter(([k]) => !k.startsWith("net/ipv6/"))
        .sort((a, b) => rank(a[0]) - rank(b[0]))
        .map(write);
    // IPv6 (after every device's IPv6 is off): all.disable_ipv6 first (it rewrites every
    // device's), all's others (all.forwarding rewrites every device's), default's, each
    // device's, each device's disable_ipv6 last (it comes up with the rest already set)
    const rank6 = (k: string) =>
        k === "net/ipv6/conf/all/disable_ipv6" ? 0 : k.includes("/conf/all/") ? 1 : k.includes("/conf/default/") ? 2 : k.endsWith("/disable_ipv6") ? 4 : 3;
    const sysctls6 = boot
        .filter(([k]) => k.startsWith("net/ipv6/"))
        .sort((a, b) => rank6(a[0]) - rank6(b[0]))
        .map(write);
    const ipv6Part = `
# IPv6 (the world has it): policy rules other than the kernel's own (local, main), tables other than local and main
for p in $(ip -6 rule show | sed -n 's/^\\([0-9]*\\):.*/\\1/p'); do
    case $p in 0 | 32766) ;; *) ip -6 rule del priority "$p" ;; esac
done
for t in $(ip -6 route show table all | sed -n 's/.* table \\([^ ]*\\).*/\\1/p' | sort -u); do
    case $t in local | main) ;; *) ip -6 route flush table "$t" ;; esac
done
# the main table (but management)
{
    echo "route flush table main"
    ${h.management ? `ip -6 route show table main dev mgmt0 | sed 's/ *$//; s/^/route add /; s/$/ dev mgmt0/'` : ":"}
} >${labRun}/boot6.flush
ip -6 -b ${labRun}/boot6.flush
# IPv6 off on every device (its addresses and routes go), then its sysctls at their boot values:
# the devices the world enabled come up again, with their link-local addresses and routes
for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do
    case $f in */conf/all/* | */conf/default/*) ;; *) read -r v <"$f"; [ "$v" = 1 ] || echo 1 >"$f" ;; esac
done
${sysctls6.join("\n")}${
        batch6.length === 0
            ? ""
            : `
# the world's IPv6 addresses and routes
cat >${labRun}/boot6.ip <<'TUNNELPAIR_LAB_IP6'
${batch6.join("\n")}
TUNNELPAIR_LAB_IP6
ip -6 -b ${labRun}/boot6.ip`
    }`;
    await detachedOutput(
        lab,
        host,
        "reboot",
        `# links the world did not make
for n in $(ip -o link show | sed -n 's/^[0-9]*: \\([^:@]*\\)[:@].*/\\1/p'); do
    case " ${keep.join(" ")} " in *" $n "*) ;; *) ip link del dev "$n" ;; esac
done
# policy rules other than the kernel's own (local, main, default)
for p in $(ip rule show | sed -n 's/^\\([0-9]*\\):.*/\\1/p'); do
    case $p in 0 | 32766 | 32767) ;; *) ip rule del priority "$p" ;; esac
done
# routing tables other than local and main
for t in $(ip route show table all | sed -n 's/.* table \\([^ ]*\\).*/\\1/p' | sort -u); do
    case $t in local | main) ;; *) ip route flush table "$t" ;; esac
done
# the main table (but management), the interfaces, their addresses, the world's routes: one ip -batch
{
    echo "route flush table main"
    ${h.management ? `ip route show table main dev mgmt0 | sed 's/ *$//; s/^/route add /; s/$/ dev mgmt0/'` : ":"}
    cat <<'TUNNELPAIR_LAB_IP'
${batch.join("\n")}
TUNNELPAIR_LAB_IP
} >${labRun}/boot.ip
ip -b ${labRun}/boot.ip
for a in $(ip -o -4 addr show dev lo | awk '{ print $4 }'); do [ "$a" = 127.0.0.1/8 ] || ip addr del "$a" dev lo; done
ip -o -4 addr show dev lo | grep -q ' 127\\.0\\.0\\.1/8 ' || ip addr add 127.0.0.1/8 dev lo
# the sysctls at their boot values
${sysctls.join("\n")}${six ? ipv6Part : ""}
# the firewall as the boot loads it, and no connection tracked yet
${firewallScript(world, host, "all")}${six ? `\n${firewallScript(world, host, "all", 6)}` : ""}
${conntrackFlush}`,
        "reboot",
    );
}

/**
 * A firewall reload on `host`: every loaded iptables table back to the world's ruleset (the
 * world's `firewall`, tables it does not name left with empty ACCEPT chains), as firewalld's
 * reload or a loader that replaces every table does; `tables: "named"` replaces only the
 * tables the world's ruleset names (netfilter-persistent reload: iptables-restore of rules.v4
 * without --noflush). In a world with IPv6 ip6tables too, the same way, by the world's
 * firewall6 (firewalld's reload replaces both families; netfilter-persistent's restores
 * rules.v6 beside rules.v4). Nothing else is touched.
 */
export async function reloadFirewall(lab: Lab, world: World, host: string, opts: { tables?: "all" | "named" } = {}): Promise<void> {
    if (!world.hosts[host]) throw new Error(`reloadFirewall: the world has no host ${host}`);
    const tables = opts.tables ?? "all";
    const script = firewallScript(world, host, tables) + (world.ipv6 ? `\n${firewallScript(world, host, tables, 6)}` : "");
    await detachedOutput(lab, host, "reload", script, "firewall reload");
}

// --- running a unit as systemd would ----------------------------------------------------

/** The system manager's environment for services (systemd.exec(5), "Environment variables in spawned processes"; Debian's LANG). */
export const managerEnv: Readonly<Record<string, string>> = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" };

export interface UnitRun extends ExecResult {
    /** The service run, e.g. "tunnelpair-toy-toy.service". */
    readonly unit: string;
    /** Each command run (ExecStartPre, ExecStart, ExecStartPost), as argv; a failure stops the rest. */
    readonly commands: string[][];
}

export interface UnitRunOptions {
    /**
     * Variables set after the unit's own: the lab's, never a unit's (fault injection puts its
     * wrappers first on PATH with it, as lab/faults.ts does for a script run over SSH).
     */
    readonly env?: Readonly<Record<string, string>>;
}

/**
 * Runs /etc/systemd/system/<unitName>.service's ExecStart= on `host` as systemd starts the
 * service: as root, with only systemd's environment (managerEnv, then the unit's
 * Environment=), in / (or WorkingDirectory=), umask 0022 (or UMask=), stdin /dev/null; the
 * command line read as systemd reads it (specifiers, quoting, C escapes, ${VAR} and $VAR).
 * The code is the first failing command's (systemd's 200 when the working directory is
 * missing). The lab's CPU workaround (GLIBC_TUNABLES, OPENSSL_ia32cap; lab/README.md) stays
 * in the environment: the lab's processes need it, as a real host's would need a
 * DefaultEnvironment= line. Errors: the unit missing, no ExecStart=, what lab/unitfile.ts
 * does not model.
 */
export async function runUnit(lab: Lab, host: string, unitName: string, opts: UnitRunOptions = {}): Promise<UnitRun> {
    const { unit, script, commands } = await unitScript(lab, host, unitName, opts);
    const r = await lab.exec(host, script, { timeoutMs: 300_000 });
    return { ...r, unit, commands };
}

/**
 * Starts a long-running service as runUnit runs one (same user, environment, directory), in
 * the background, its output to ${labRun}/<unit>.log: as systemd starts a Type=simple
 * service. Returns the pid of its process group, for stopUnit.
 */
export async function startUnit(lab: Lab, host: string, unitName: string, opts: UnitRunOptions = {}): Promise<number> {
    const { unit, script } = await unitScript(lab, host, unitName, opts);
    const out = await sh(lab, host, `mkdir -p ${labRun}; setsid sh -c ${q(script)} </dev/null >${labRun}/${q(unit)}.log 2>&1 & echo $!`, `starting ${unit}`);
    return Number(out.trim());
}

/** Stops what startUnit started, as systemd's stop does (SIGTERM to the whole group), and returns its output. */
export async function stopUnit(lab: Lab, host: string, unitName: string, pid: number): Promise<string> {
    const unit = unitName.endsWith(".service") ? unitName : `${unitName}.service`;
    return sh(
        lab,
        host,
        `kill -TERM -- -${pid} 2>/dev/null || true; n=0; while kill -0 -- -${pid} 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done; cat ${labRun}/${q(unit)}.log`,
        `stopping ${unit}`,
    );
}

async function unitScript(lab: Lab, host: string, unitName: string, opts: UnitRunOptions): Promise<{ unit: string; script: string; commands: string[][] }> {
    const unit = unitName.endsWith(".service") ? unitName : `${unitName}.service`;
    const file = `${unitDir}/${unit}`;
    const read = await lab.exec(host, `cat ${q(file)}`);
    if (read.code !== 0) throw new Error(`${host}: cannot read ${file}: ${read.stderr.trim()}`);
    const plan = planService(read.stdout, unit, host, managerEnv);
    const env = Object.entries({ ...plan.env, ...opts.env }).map(([k, v]) => q(`${k}=${v}`));
    const script = [
        ': "${GLIBC_TUNABLES?the lab session lacks GLIBC_TUNABLES}" "${OPENSSL_ia32cap?the lab session lacks OPENSSL_ia32cap}"',
        `cd ${q(plan.workingDirectory)} || exit 200`,
        `umask ${plan.umask}`,
        ...plan.commands.map(
            (argv) =>
                `env -i -- "GLIBC_TUNABLES=$GLIBC_TUNABLES" "OPENSSL_ia32cap=$OPENSSL_ia32cap" ${env.join(" ")} ${argv.map(q).join(" ")} </dev/null || exit $?`,
        ),
    ].join("\n");
    return { unit, script, commands: plan.commands };
}

/**
 * A system bus on `host` (its own /run): dbus-daemon with a policy that lets root do anything,
 * at the standard address, so that busctl --system there reaches it. Returns its pid.
 */
export async function startSystemBus(lab: Lab, host: string): Promise<number> {
    const conf = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus"/>
  </policy>
</busconfig>
`;
    const out = await sh(
        lab,
        host,
        `set -eu
mkdir -p ${labRun} /run/dbus
cat >${labRun}/bus.conf <<'TUNNELPAIR_LAB_BUS'
${conf}TUNNELPAIR_LAB_BUS
dbus-daemon --config-file=${labRun}/bus.conf --fork --print-pid
n=0; while [ ! -S /run/dbus/system_bus_socket ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
[ -S /run/dbus/system_bus_socket ]`,
        "starting a system bus",
    );
    return Number(out.trim());
}

/** Stops startSystemBus's daemon and removes what it made. */
export async function stopSystemBus(lab: Lab, host: string, pid: number): Promise<void> {
    await sh(
        lab,
        host,
        `kill ${pid}; n=0; while kill -0 ${pid} 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done; rm -rf /run/dbus ${labRun}/bus.conf`,
        "stopping the system bus",
    );
}

/**
 * Runs what `<unitName>-repair.timer` starts: the service its Unit= names (by default
 * `<unitName>-repair.service`), with runUnit. The timer file must exist.
 */
export async function runTimerService(lab: Lab, host: string, unitName: string, opts: UnitRunOptions = {}): Promise<UnitRun> {
    const timer = `${unitDir}/${unitName}-repair.timer`;
    const read = await lab.exec(host, `cat ${q(timer)}`);
    if (read.code !== 0) throw new Error(`${host}: cannot read ${timer}: ${read.stderr.trim()}`);
    const keys = parseUnitFile(read.stdout).Timer;
    if (!keys) throw new Error(`${host}: ${timer} has no [Timer] section`);
    return runUnit(lab, host, keys.filter((k) => k.key === "Unit").pop()?.value || `${unitName}-repair.service`, opts);
}

// --- the lab's own checks of the above (toy world, today's runtime) ---------------------

const root = path.join(__dirname, "..");

function without(s: Snapshot, ...sections: string[]): Snapshot {
    return Object.fromEntries(Object.entries(s).filter(([k]) => !sections.includes(k)));
}

/**
 * Proves the tools above on the toy world: the stand-in logs and stays on its host;
 * runUnit runs hand-written units as systemd would; a reboot after an up gives back the
 * snapshot from before the up but for the state directory; a firewall reload after an up
 * puts back exactly the world's rules and nothing else. Lines about what today's runtime
 * then does (a rerun after the reboot, destroy after it) are logged as "info", not checked.
 */
export async function runDay2Selftest(log: (line: string) => void = () => undefined): Promise<CheckResult[]> {
    const checks: CheckResult[] = [];
    const check = (name: string, ok: boolean, detail?: string) => {
        checks.push({ name, ok, detail });
        log(`${ok ? "ok  " : "FAIL"} ${name}${detail && !ok ? `\n       ${detail.split("\n").join("\n       ")}` : ""}`);
    };
    const info = (line: string) => log(`info ${line}`);
    const world = loadWorld(path.join(root, "lab/worlds/toy.yaml"));
    const hosts = ["doolittle", "calculon"];
    const t0 = Date.now();
    const lab = await startLab(world);
    log(`lab toy: booted in ${lab.bootMs} ms`);
    try {
        for (const h of hosts) {
            const b = await bootSysctls(lab, h);
            check(
                `${h}: boot sysctls read (${Object.keys(b).length} values, ip_forward = ${b["net/ipv4/ip_forward"]})`,
                b["net/ipv4/ip_forward"] === "0" && Object.keys(b).length > 4,
            );
        }
        await standInChecks(lab, check);
        await unitChecks(lab, check);
        await rebootChecks(lab, world, hosts, check, info);
        await reloadChecks(lab, world, hosts, check, info);
    } finally {
        await lab.stop();
    }
    log(`day2 selftest: ${Date.now() - t0} ms`);
    return checks;
}

type Check = (name: string, ok: boolean, detail?: string) => void;
/** lab.exec gives output as written: without its last newline, for comparing. */
const out = (text: string) => text.replace(/\n$/, "");

async function standInChecks(lab: Lab, check: Check): Promise<void> {
    const mountsOn = async (h: string) => (await sh(lab, h, "grep -c ' /usr/bin/systemctl ' /proc/self/mountinfo || true", "mountinfo")).trim();
    const machineHadRunSystemd = fs.existsSync("/run/systemd/system");
    const unitsBefore = (await snapshotAll(lab, ["doolittle"])).doolittle.units;
    const bin = await installSystemdStandIn(lab, "doolittle");
    check(`stand-in: bind-mounted over ${bin} on doolittle (one mount there)`, bin === "/usr/bin/systemctl" && (await mountsOn("doolittle")) === "1");
    const sd = await lab.exec("doolittle", "[ -d /run/systemd/system ]");
    check("stand-in: doolittle has /run/systemd/system (sd_booted)", sd.code === 0);
    const reload = await lab.exec("doolittle", "systemctl daemon-reload");
    const inactive = await lab.exec("doolittle", "systemctl is-active firewalld.service");
    await setActiveUnit(lab, "doolittle", "tunnelpair-toy-toy.service", true);
    await setActiveUnit(lab, "doolittle", "x", true);
    const other = await lab.exec(
        "doolittle",
        "env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin systemctl start 'tunnelpair-toy-toy-repair.timer' && /bin/systemctl is-active tunnelpair-toy-toy.service && /usr/bin/systemctl --quiet is-active x && systemctl stop a.timer b.service",
    );
    const unknown = await lab.exec("doolittle", "systemctl status x");
    const calls = await systemctlCalls(lab, "doolittle");
    const expected = [
        "daemon-reload",
        "is-active firewalld.service",
        "start tunnelpair-toy-toy-repair.timer",
        "is-active tunnelpair-toy-toy.service",
        "--quiet is-active x",
        "stop a.timer b.service",
        "status x",
    ];
    check("stand-in: systemctl daemon-reload over lab.exec exits 0", reload.code === 0, reload.stderr);
    check(
        "stand-in: any PATH, /bin/systemctl, /usr/bin/systemctl reach the stub; is-active prints active",
        other.code === 0 && out(other.stdout) === "active",
        `${other.code} ${other.stdout} ${other.stderr}`,
    );
    check(
        "stand-in: is-active of a unit the lab has not said runs prints inactive, exit 3",
        inactive.code === 3 && out(inactive.stdout) === "inactive",
        `${inactive.code} ${inactive.stdout} ${inactive.stderr}`,
    );
    check("stand-in: a verb it does not model fails, naming it", unknown.code === 1 && /status is not modelled/.test(unknown.stderr), unknown.stderr);
    check(`stand-in: systemctlCalls lists every call in order (${calls.length})`, JSON.stringify(calls) === JSON.stringify(expected), calls.join("\n"));
    // no leak: the other host, and this machine
    const c = await lab.exec("calculon", "[ ! -e /run/systemd ] && systemctl --version | head -n 1");
    check(
        `stand-in: calculon is untouched (no /run/systemd, the real systemctl: "${out(c.stdout)}", no mount)`,
        c.code === 0 && /^systemd \d+/.test(c.stdout) && (await mountsOn("calculon")) === "0",
        c.stderr,
    );
    check("stand-in: calculon has no systemctl calls", (await systemctlCalls(lab, "calculon")).length === 0);
    const machine = fs.readFileSync("/proc/self/mountinfo", "utf8");
    check(
        "stand-in: this machine has no mount on systemctl and /run/systemd/system as before",
        !machine.includes(" /usr/bin/systemctl ") && fs.existsSync("/run/systemd/system") === machineHadRunSystemd,
    );
    check(
        "stand-in: doolittle's unit directory is unchanged by it",
        JSON.stringify((await snapshotAll(lab, ["doolittle"])).doolittle.units) === JSON.stringify(unitsBefore),
    );
    await removeSystemdStandIn(lab, "doolittle");
    const gone = await lab.exec("doolittle", "[ ! -e /run/systemd ] && systemctl --version | head -n 1");
    check(
        "stand-in removed: no /run/systemd, the real systemctl again, no mount, the log kept",
        gone.code === 0 &&
            /^systemd \d+/.test(gone.stdout) &&
            (await mountsOn("doolittle")) === "0" &&
            (await systemctlCalls(lab, "doolittle")).length === expected.length,
        gone.stdout + gone.stderr,
    );
}

async function unitChecks(lab: Lab, check: Check): Promise<void> {
    const h = "calculon";
    const unitsBefore = (await snapshotAll(lab, [h]))[h].units;
    const write = (name: string, text: string) => sh(lab, h, `cat >${unitDir}/${name} <<'TUNNELPAIR_LAB_UNIT'\n${text}TUNNELPAIR_LAB_UNIT`, `writing ${name}`);
    await write(
        "tunnelpair-lab-env.service",
        `[Unit]
Description=lab: what a service sees

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo $PATH; pwd; echo "lang=$LANG uid=$(id -u) umask=$(umask)"; if read -r x; then echo stdin=data; else echo stdin=eof; fi; env | cut -d= -f1 | sort | paste -sd, -'
`,
    );
    const env = await runUnit(lab, h, "tunnelpair-lab-env");
    const lines = env.stdout.split("\n");
    const vars = (lines[4] ?? "").split(",");
    check(`runUnit: PATH is systemd's (${lines[0]})`, env.code === 0 && lines[0] === managerEnv.PATH, env.stdout + env.stderr);
    check(
        `runUnit: cwd /, LANG C.UTF-8, root, umask 0022, stdin /dev/null ("${lines[1]}", "${lines[2]}", "${lines[3]}")`,
        lines[1] === "/" && lines[2] === "lang=C.UTF-8 uid=0 umask=0022" && lines[3] === "stdin=eof",
    );
    check(
        `runUnit: nothing of the SSH session in the environment (${vars.join(" ")})`,
        vars.every((v) => ["PATH", "LANG", "PWD", "GLIBC_TUNABLES", "OPENSSL_ia32cap"].includes(v)) && vars.includes("PATH") && vars.includes("LANG"),
    );
    await write(
        "tunnelpair-lab-words.service",
        `[Service]
Type=oneshot
Environment=FOO=bar "BAZ=x  y"
ExecStart=/bin/echo %n %N ${"${FOO}"} $BAZ "${"${BAZ}"}" $$HOME "a\\x20b" $UNSET ${"${UNSET}"}end \\
    continued
`,
    );
    const words = await runUnit(lab, h, "tunnelpair-lab-words.service");
    const expect = "tunnelpair-lab-words.service tunnelpair-lab-words bar x y x  y $HOME a b end continued";
    check(
        `runUnit: specifiers, quotes, escapes, \${VAR} and $VAR as systemd reads them ("${out(words.stdout)}")`,
        words.code === 0 && out(words.stdout) === expect,
        JSON.stringify(words.commands),
    );
    await write(
        "tunnelpair-lab-fail.service",
        "[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo out; echo err >&2; exit 3'\nExecStartPost=/bin/echo never\n",
    );
    const fail = await runUnit(lab, h, "tunnelpair-lab-fail");
    check(
        "runUnit: a failing ExecStart gives its code, stdout and stderr, and stops there",
        fail.code === 3 && out(fail.stdout) === "out" && out(fail.stderr) === "err",
        JSON.stringify(fail),
    );
    await write("tunnelpair-lab-none.service", "[Service]\nType=oneshot\n");
    const none = await runUnit(lab, h, "tunnelpair-lab-none").then(
        () => "ran",
        (e: Error) => e.message,
    );
    check(`runUnit: a unit without ExecStart= is an error ("${none}")`, /no ExecStart= line/.test(none));
    const missing = await runUnit(lab, h, "tunnelpair-lab-missing").then(
        () => "ran",
        (e: Error) => e.message,
    );
    check("runUnit: a missing unit is an error naming its file", /cannot read \/etc\/systemd\/system\/tunnelpair-lab-missing\.service/.test(missing), missing);
    await write("tunnelpair-lab-repair.service", "[Service]\nType=oneshot\nExecStart=/bin/echo repaired\n");
    await write("tunnelpair-lab-repair.timer", "[Timer]\nOnActiveSec=60\nOnUnitInactiveSec=60\n\n[Install]\nWantedBy=timers.target\n");
    await sh(
        lab,
        h,
        `mkdir -p ${unitDir}/timers.target.wants && ln -s ${unitDir}/tunnelpair-lab-repair.timer ${unitDir}/timers.target.wants/`,
        "enabling the timer",
    );
    const timer = await runTimerService(lab, h, "tunnelpair-lab");
    check(
        "runTimerService: runs the service the timer starts (<name>-repair.service)",
        timer.code === 0 && out(timer.stdout) === "repaired" && timer.unit === "tunnelpair-lab-repair.service",
        JSON.stringify(timer),
    );
    // the snapshot's units section sees all of it, a changed byte too, and nothing once removed
    const withUnits = (await snapshotAll(lab, [h]))[h];
    const d = diffSnapshots({ units: unitsBefore }, { units: withUnits.units });
    const link = withUnits.units.find((l) => l.includes("timers.target.wants/tunnelpair-lab-repair.timer"));
    check(
        `snapshot: the units section lists the new files with their sha256 and the symlink with its target (${d.length} diff lines)`,
        d.length === 7 &&
            d.every((l) => l.startsWith("units: + ")) &&
            d.filter((l) => / sha256:[0-9a-f]{64}$/.test(l)).length === 6 &&
            link?.endsWith(`-> ${unitDir}/tunnelpair-lab-repair.timer`) === true,
        d.join("\n"),
    );
    await sh(lab, h, `sed -i 's/repaired/repaireD/' ${unitDir}/tunnelpair-lab-repair.service`, "changing a byte");
    const changed = diffSnapshots(withUnits, (await snapshotAll(lab, [h]))[h]);
    check(
        `snapshot: one changed byte in a unit file is a difference (${changed.length} lines)`,
        changed.length === 2 && changed.every((l) => l.includes("tunnelpair-lab-repair.service sha256:")),
        changed.join("\n"),
    );
    await sh(lab, h, `rm -f ${unitDir}/tunnelpair-lab-* ${unitDir}/timers.target.wants/tunnelpair-lab-repair.timer`, "removing the units");
    const after = diffSnapshots({ units: unitsBefore }, { units: (await snapshotAll(lab, [h]))[h].units });
    check("snapshot: the units section is as before once they are removed", after.length === 0, after.join("\n"));
}

async function rebootChecks(lab: Lab, world: World, hosts: string[], check: Check, info: (l: string) => void): Promise<void> {
    const sf = readStackFile(path.join(root, "stacks/Pulumi.toy.yaml"));
    const flow = async () => {
        const r = await lab.exec("doolittle", probeScript("10.0.2.1", 22));
        return r.code === 0 && r.stdout.startsWith("SSH-");
    };
    const before = await snapshotAll(lab, hosts);
    const recording = await recordInLab(sf, lab);
    const state = new StackState();
    const first = await up(recording, state, labExec);
    const afterUp = await snapshotAll(lab, hosts);
    check(`reboot: the toy is up (${first.ms} ms) and doolittle -> 10.0.2.1:22 answers`, first.steps.every((s) => s.ok) && (await flow()));
    for (const h of hosts)
        check(
            `reboot: the up changed ${h} (${diffSnapshots(before[h], afterUp[h]).length} diff lines)`,
            diffSnapshots(without(before[h], "state"), without(afterUp[h], "state")).length > 0,
        );

    for (const h of hosts) {
        const t = Date.now();
        await rebootHost(lab, world, h);
        info(`rebootHost ${h}: ${Date.now() - t} ms`);
    }
    const afterReboot = await snapshotAll(lab, hosts);
    for (const h of hosts) {
        const d = diffSnapshots(without(before[h], "state"), without(afterReboot[h], "state"));
        check(`reboot: ${h}'s snapshot equals the one before up but for the state section (${d.length} diff lines)`, d.length === 0, d.join("\n"));
        check(
            `reboot: ${h}'s state directory is kept as after up (${afterReboot[h].state.length} entries)`,
            afterReboot[h].state.length > 0 && JSON.stringify(afterReboot[h].state) === JSON.stringify(afterUp[h].state),
            afterReboot[h].state.join("\n"),
        );
    }
    const mg = await lab.exec("doolittle", "ip route show dev mgmt0; cat /proc/sys/net/ipv4/ip_forward");
    check(
        `reboot: management route kept, ip_forward back to 0 (${mg.stdout.replace(/\s+/g, " ").trim()})`,
        /^198\.18\.0\.0\/24 proto kernel scope link src 198\.18\.0\.11 *\n0$/.test(out(mg.stdout)),
        mg.stdout,
    );
    check("reboot: doolittle -> 10.0.2.1:22 no longer answers", !(await flow()));

    // what today's runtime does with a rebooted host (not this module's to prove: logged)
    // (a, then b, whose apply ends with the probe)
    for (const r of state.resources.values()) {
        const res = await labExec(r.inputs.connection as never, r.inputs.create as string);
        info(`after the reboot, ${r.name}'s create run again: exit ${res.code}: ${(res.stdout + res.stderr).trim().split("\n").slice(-1)[0]}`);
    }
    const rerun = await snapshotAll(lab, hosts);
    for (const h of hosts)
        info(
            `after the reboot and the reruns, ${h} vs after up: ${diffSnapshots(afterUp[h], rerun[h]).length} diff lines${diffSnapshots(afterUp[h], rerun[h])
                .map((l) => `\n       ${l}`)
                .join("")}`,
        );
    info(`after the reboot and the reruns, doolittle -> 10.0.2.1:22 answers: ${await flow()}`);
    const gone = await destroy(state, labExec).then(
        () => "ok",
        (e: Error) => e.message,
    );
    const afterDestroy = await snapshotAll(lab, hosts);
    for (const h of hosts) info(`destroy after the reboot (${gone}): ${h} vs before up: ${diffSnapshots(before[h], afterDestroy[h]).length} diff lines`);

    // back to the boot state for what follows: a reboot and the state directory removed
    for (const h of hosts) {
        await rebootHost(lab, world, h);
        await sh(lab, h, "rm -rf /var/lib/tunnelpair", "removing the state directory");
    }
    const clean = await snapshotAll(lab, hosts);
    for (const h of hosts) {
        const d = diffSnapshots(before[h], clean[h]);
        check(`reboot + the state directory removed: ${h} is exactly as before up (${d.length} diff lines)`, d.length === 0, d.join("\n"));
    }
}

async function reloadChecks(lab: Lab, world: World, hosts: string[], check: Check, info: (l: string) => void): Promise<void> {
    const sf = readStackFile(path.join(root, "stacks/Pulumi.toy.yaml"));
    const flow = async () => {
        const r = await lab.exec("doolittle", probeScript("10.0.2.1", 22));
        return r.code === 0 && r.stdout.startsWith("SSH-");
    };
    const before = await snapshotAll(lab, hosts);
    const state = new StackState();
    const report = await up(await recordInLab(sf, lab), state, labExec);
    const afterUp = await snapshotAll(lab, hosts);
    const owned = (lines: string[]) => lines.filter((l) => /TP-|tunnelpair:/.test(l));
    check(
        `reload: the toy is up again (${report.ms} ms), owned chains in filter and mangle on doolittle, the flow answers`,
        report.steps.every((s) => s.ok) && owned(afterUp.doolittle.iptables).length > 0 && afterUp.doolittle.iptables.includes("*mangle") && (await flow()),
    );

    // netfilter-persistent's reload: only the tables the ruleset names (toy: filter)
    await reloadFirewall(lab, world, "doolittle", { tables: "named" });
    const named = (await snapshotAll(lab, ["doolittle"])).doolittle;
    const table = (lines: string[], t: string) => {
        const i = lines.indexOf(`*${t}`);
        if (i < 0) return [];
        const j = lines.findIndex((l, k) => k > i && l.startsWith("*"));
        return lines.slice(i, j < 0 ? undefined : j);
    };
    check(
        "reload (named tables): doolittle's filter table is the world's again, its mangle table keeps the owned MSS chain",
        JSON.stringify(table(named.iptables, "filter")) === JSON.stringify(table(before.doolittle.iptables, "filter")) &&
            JSON.stringify(table(named.iptables, "mangle")) === JSON.stringify(table(afterUp.doolittle.iptables, "mangle")) &&
            owned(table(named.iptables, "mangle")).length > 0,
        named.iptables.join("\n"),
    );

    for (const h of hosts) await reloadFirewall(lab, world, h);
    const afterReload = await snapshotAll(lab, hosts);
    for (const h of hosts) {
        const d = diffSnapshots({ iptables: before[h].iptables }, { iptables: afterReload[h].iptables });
        check(
            `reload: ${h}'s iptables are the world's ruleset, owned chains and jumps gone (${d.length} diff lines, ${owned(afterReload[h].iptables).length} owned lines)`,
            d.length === 0 && owned(afterReload[h].iptables).length === 0,
            d.join("\n"),
        );
        const rest = diffSnapshots(without(afterUp[h], "iptables"), without(afterReload[h], "iptables"));
        check(`reload: nothing else on ${h} changed (${rest.length} diff lines)`, rest.length === 0, rest.join("\n"));
    }
    // a reload leaves conntrack alone: IPIP seen both ways is ESTABLISHED, which the world's rules accept
    info(`after the reload, conntrack kept (as a reload keeps it), doolittle -> 10.0.2.1:22 answers: ${await flow()}`);
    for (const h of hosts) await flushConntrack(lab, h);
    check("reload: with conntrack emptied, the world's REJECT stops the tunnel: doolittle -> 10.0.2.1:22 no longer answers", !(await flow()));

    // today's runtime after a reload (logged): a rerun, then destroy
    for (const r of state.resources.values()) {
        const res = await labExec(r.inputs.connection as never, r.inputs.create as string);
        info(`after the reload, ${r.name}'s create run again: exit ${res.code}: ${(res.stdout + res.stderr).trim().split("\n").slice(-1)[0]}`);
    }
    const rerun = await snapshotAll(lab, hosts);
    for (const h of hosts) info(`after the reload and the reruns, ${h} vs after up: ${diffSnapshots(afterUp[h], rerun[h]).length} diff lines`);
    info(`after the reload and the reruns, doolittle -> 10.0.2.1:22 answers: ${await flow()}`);
    const gone = await destroy(state, labExec).then(
        () => "ok",
        (e: Error) => e.message,
    );
    const afterDestroy = await snapshotAll(lab, hosts);
    for (const h of hosts) info(`destroy after the reload (${gone}): ${h} vs before up: ${diffSnapshots(before[h], afterDestroy[h]).length} diff lines`);
}
