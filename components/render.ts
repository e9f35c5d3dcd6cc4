// Per-host plan -> the shell scripts the Commands run. Pure; pinned by snapshot tests and
// checked with `sh -n` and shellcheck. No secret ever reaches a script: plans hold addresses
// and names only.
import * as fs from "fs";
import * as path from "path";
import { createHash } from "crypto";
import { modeInfo } from "./model";
import { HostPlan, objectLine, stateRoot, VerifyPlan } from "./plan";
import { renderUnits, unitName } from "./systemd";

/**
 * The constant runtime, read once from its parts beside this file, in this order (functions
 * may call any part; the top-level lines of a part set only the variables of later parts; each
 * function is defined in one part only): see runtime/base.sh for how apply and remove work.
 */
export const runtimeParts = ["base", "state", "objects", "hostwide", "units", "modes", "main"] as const;
/**
 * The parts only some plans need, and which: `modes` (the tunnel modes beyond ipip) for a pair
 * with a `tunnel` device: an ipip pair's script neither carries nor parses it.
 */
const optionalParts: Partial<Record<(typeof runtimeParts)[number], (plan: HostPlan) => boolean>> = {
    modes: (plan) => plan.objects.some((o) => o.kind === "tunnel" || o.kind === "tunmtu"),
};
const partText = Object.fromEntries(runtimeParts.map((p) => [p, fs.readFileSync(path.join(__dirname, "runtime", `${p}.sh`), "utf8")]));
function runtimeFor(plan: HostPlan): string {
    return runtimeParts
        .filter((p) => optionalParts[p]?.(plan) ?? true)
        .map((p) => partText[p])
        .join("\n");
}
const verifyRuntime = fs.readFileSync(path.join(__dirname, "verify.sh"), "utf8");

/** The replacements that make verify.sh's probe one of IPv6 through the tunnel. */
const ipv6Probe: [string, string][] = [
    ["FLOOR=68    # IPv4's smallest MTU (RFC 791)", "FLOOR=1280  # IPv6's smallest MTU (RFC 8200)"],
    ["(IPv4 20 + ICMP 8 + payload)", "(IPv6 40 + ICMPv6 8 + payload)"],
    ['ping -n -M "do" -c 1 -W 1 -s $(($1 - 28))', 'ping -6 -n -M "do" -c 1 -W 1 -s $(($1 - 48))'],
    ['ping -n -q -c 1 -W 1 -I "$FROM" "$TO"', 'ping -6 -n -q -c 1 -W 1 -I "$FROM" "$TO"'],
    ['_route=$(ip -4 -o route get "$TO"', '_route=$(ip -6 -o route get "$TO"'],
];

/**
 * verify.sh is written for ipip, and an ipip pair's probe stays exactly that text. Another
 * mode's probe is derived from it by these replacements, each of which must match exactly
 * once (an edit of verify.sh that moves one fails the tests, not a host): what the tunnel
 * adds to each packet, and the protocol its packets are.
 */
function verifyText(v: VerifyPlan): string {
    if (v.mode === "ipip") return verifyRuntime;
    const protocol = modeInfo[v.mode].protocol;
    const name = v.mode === "gre" ? "GRE" : v.mode === "sit" ? "SIT" : v.mode;
    const replacements: [string, string][] = [
        ["$((mtu + 20))-byte packets (the MTU and IPIP's 20 bytes)", `$((mtu + ${v.overhead}))-byte packets (the MTU and ${name}'s ${v.overhead} bytes)`],
        ["its firewall admitting protocol 4 from $LOCAL", `its firewall admitting protocol ${protocol} from $LOCAL`],
        ["drops protocol 4 $hint", `drops protocol ${protocol} $hint`],
        // a tunnel that carries IPv6: ping -6, IPv6's 40-byte header, its 1280-byte minimum MTU
        ...(modeInfo[v.mode].overlay === 6 ? ipv6Probe : []),
    ];
    return replacements.reduce((text, [from, to]) => {
        if (text.split(from).length !== 2) throw new Error(`verify.sh: ${JSON.stringify(from)} is not there exactly once`);
        return text.replace(from, () => to);
    }, verifyRuntime);
}

/** Quotes a value for POSIX sh: 'it'\''s'. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The units' texts and settings (runtime/units.sh), each text without its last newline. */
function unitVars(plan: HostPlan): [string, string][] {
    if (!plan.persistence) return [];
    const { repair, explicit } = plan.persistence;
    const u = renderUnits({
        name: unitName(plan.stack, plan.pair),
        tag: plan.tag,
        converge: `${plan.stateDir}/converge`,
        repairSeconds: repair === "off" ? undefined : repair,
    });
    const text = (t: string | undefined) => (t ?? "").replace(/\n$/, "");
    return [
        ["REPAIR", String(repair)],
        ["PERSIST_EXPLICIT", explicit ? "1" : ""],
        ["UNIT_SERVICE", text(u.service)],
        ["UNIT_REPAIR_SERVICE", text(u.repairService)],
        ["UNIT_REPAIR_TIMER", text(u.repairTimer)],
        ["UNIT_FIREWALLD_HOOK", text(u.firewalldHook)],
    ];
}

function header(plan: HostPlan): string {
    const vars: [string, string][] = [
        ["HOST", plan.host],
        ["STACK", plan.stack],
        ["PAIR", plan.pair],
        ["TAG", plan.tag],
        ["ROOT", stateRoot],
        ["STATE", plan.stateDir],
        ["DESIRED", plan.objects.map(objectLine).join("\n")],
        ...unitVars(plan),
    ];
    const chains = plan.objects.flatMap((o) => (o.kind === "chain" ? [o] : []));
    const cases = chains.map((c) => `    ${c.name}) _rules=${shellQuote(c.rules.map((r) => `${r}\n`).join(""))} ;;`);
    return [
        "#!/bin/sh",
        `# tunnelpair ${plan.tag} on ${plan.host}`,
        "# shellcheck disable=SC3043 # local: dash, bash and busybox ash have it",
        "set -eu",
        // (the units' texts are read through eval, by name: unit_files in runtime/units.sh)
        ...vars.map(([k, v]) => `${k.startsWith("UNIT_") ? "# shellcheck disable=SC2034\n" : ""}${k}=${shellQuote(v)}`),
        "# the rules of each chain the pair owns, in iptables-restore form, one per line",
        "chain_rules() {   # chain -> $_rules",
        '    case "$1" in',
        ...cases,
        "    *) _rules= ;;",
        "    esac",
        "}",
    ].join("\n");
}

/**
 * The script that converges the host to the plan (create and update). Endpoint b's ends with
 * the pair's probe, `probe` (renderVerify's): the units never run it, the stored script lacks it.
 */
export function renderApply(plan: HostPlan, probe?: string): string {
    if (!plan.persistence) return renderConverge(plan, probe);
    // The units run this same script from $STATE/converge: the script holds its own text
    // (TP_SCRIPT, less its last newline, which the unit kind writes back), stores it there, and runs it.
    const converge = renderConverge(plan);
    return `TP_SCRIPT=${shellQuote(converge.slice(0, -1))}\n${lastLine('eval "$TP_SCRIPT"', probe)}`;
}

/** The script as the units run it from $STATE/converge (and, without persistence, the apply itself, with its probe). */
export function renderConverge(plan: HostPlan, probe?: string): string {
    return `${header(plan)}\n${runtimeFor(plan)}\n${lastLine('main "$@"', probe)}`;
}

/** The line that runs a script, after the probe's function (verify_pair) when it has one. */
function lastLine(run: string, probe?: string): string {
    return `${probe ? `${probe}\n` : ""}${run}\n`;
}

/**
 * The script that removes what the pair owns (delete). It reads the manifest on the host,
 * not the plan, so it stays right whatever the configuration has become since.
 */
export function renderRemove(plan: HostPlan): string {
    // (the parts of the plan's own mode: the manifest it reads holds that mode's objects)
    return `${header({ ...plan, objects: [], persistence: undefined })}\n${runtimeFor(plan)}\nremove\n`;
}

/**
 * The verification, as the function `verify_pair` that b's apply runs before its commit: a
 * subshell, so that verify.sh's names, its `set +e` and its exit stay its own. It names a
 * digest of a's deployment (script and SSH address): the provider re-runs a Command whose
 * inputs change, so b's apply, and the probe with it, runs again whenever a is updated or
 * replaced, and never on its own (a second preview shows no change).
 */
export function renderVerify(v: VerifyPlan, peerDeployment: string): string {
    const digest = createHash("sha256").update(peerDeployment).digest("hex").slice(0, 16);
    const vars: [string, string][] = [
        ["HOST", v.host],
        ["TAG", v.tag],
        ["STACK", v.stack],
        ["PAIR", v.pair],
        ["DEV", v.dev],
        ["FROM", v.from],
        ["TO", v.to],
        ["PEER", v.peer],
        ["LOCAL", v.local],
        ["REMOTE", v.remote],
    ];
    return [
        `# tunnelpair ${v.tag}: the verification on ${v.host}, after ${v.peer}'s deployment ${digest}`,
        "verify_pair() (",
        "set +e -u",
        ...vars.map(([k, val]) => `${k}=${shellQuote(val)}`),
        verifyText(v),
        ")",
    ].join("\n");
}

/**
 * The command string sent over SSH: the login shell starts /bin/sh with the script, through
 * `sudo -n` (never prompting: a prompt would hang the run) when the user is not root.
 */
export function commandString(script: string, sudo: boolean): string {
    return `${sudo ? "sudo -n " : ""}/bin/sh -c ${shellQuote(script)}`;
}
