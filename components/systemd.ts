// The systemd units that bring a pair back by itself (issue 11): a oneshot service that
// converges the pair at boot, and a timer with a service of its own that converges it again
// on a period (drift repair). Pure: the unit files as text, checked by `systemd-analyze
// verify` and their ordering lines asserted in tests/systemd.test.ts.

/** systemd-escape(1) of a string: "/" becomes "-", any other byte but [A-Za-z0-9:_.] \xHH. */
export function systemdEscape(s: string): string {
    const keep = (c: string, i: number) => /[A-Za-z0-9:_]/.test(c) || (c === "." && i > 0);
    return [...Buffer.from(s, "utf8")]
        .map((b) => String.fromCharCode(b))
        .map((c, i) => (c === "/" ? "-" : keep(c, i) ? c : `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`))
        .join("");
}

/**
 * The units' common name: `tunnelpair-<stack>-<pair>`, stack and pair escaped as systemd
 * escapes a path, so that no two pairs share it (stack "a-b" pair "c" is
 * `tunnelpair-a\x2db-c`, stack "a" pair "b-c" is `tunnelpair-a-b\x2dc`).
 */
export function unitName(stack: string, pair: string): string {
    return `tunnelpair-${systemdEscape(`${stack}/${pair}`)}`;
}

/** The distributions' firewall loaders: each may replace every rule when it starts. */
export const firewallLoaders = [
    "iptables.service",
    "ip6tables.service",
    "netfilter-persistent.service",
    "firewalld.service",
    "nftables.service",
    "ufw.service",
] as const;

export interface UnitSpec {
    /** unitName(stack, pair) */
    readonly name: string;
    /** The pair's ownership tag, for the descriptions. */
    readonly tag: string;
    /** The stored converge script: what `pulumi up` last ran on the host. */
    readonly converge: string;
    /** Seconds between repair runs, or undefined for none. */
    readonly repairSeconds?: number;
}

export interface UnitFiles {
    /** `<name>.service`: the converge at boot. */
    readonly service: string;
    /** `<name>-repair.service` and `<name>-repair.timer`, with repair on. */
    readonly repairService?: string;
    readonly repairTimer?: string;
    /** `<name>-firewalld.service`, with repair on: the repair started at once when firewalld reloads. */
    readonly firewalldHook?: string;
}

/** The converge's argument that makes it follow firewalld's reloads instead of converging (runtime/units.sh). */
export const followFirewalld = "follow-firewalld";

/** Why each line of the boot service is there, said once in the file itself. */
function ordering(): string[] {
    return [
        "# The underlay must be up: its address is the tunnel's endpoint (Wants= pulls the",
        "# target in, After= waits for it; network-online.target alone does neither).",
        "Wants=network-online.target",
        "After=network-online.target",
        "# A firewall loader starting after us would replace our chains and jumps: start after",
        "# every one the distribution may have (After= on a unit that does not exist is a no-op).",
        `After=${firewallLoaders.join(" ")}`,
    ];
}

export function renderUnits(spec: UnitSpec): UnitFiles {
    const exec = `ExecStart=/bin/sh ${spec.converge}`;
    const service = [
        "[Unit]",
        `Description=tunnelpair ${spec.tag}: converge the tunnel at boot`,
        ...ordering(),
        "",
        "[Service]",
        "# one run, which leaves kernel state behind: the unit stays active after it",
        "Type=oneshot",
        "RemainAfterExit=yes",
        exec,
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ].join("\n");
    if (spec.repairSeconds === undefined) return { service };
    const repairService = [
        "[Unit]",
        `Description=tunnelpair ${spec.tag}: repair what has drifted`,
        "# not before the boot run has brought the pair up",
        `After=${spec.name}.service`,
        "",
        "[Service]",
        "Type=oneshot",
        exec,
        "",
    ].join("\n");
    const repairTimer = [
        "[Unit]",
        `Description=tunnelpair ${spec.tag}: repair every ${spec.repairSeconds} s`,
        "",
        "[Timer]",
        "# monotonic, not Persistent=: no stamp under /var/lib/systemd/timers outlives the pair",
        `OnActiveSec=${spec.repairSeconds}`,
        `OnUnitInactiveSec=${spec.repairSeconds}`,
        `Unit=${spec.name}-repair.service`,
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ].join("\n");
    const firewalldHook = [
        "[Unit]",
        `Description=tunnelpair ${spec.tag}: repair at once when firewalld reloads`,
        "# A firewalld reload (firewall-cmd --reload) or restart deletes every chain of its",
        "# iptables backend, ours too. Started with firewalld (WantedBy= below), stopped and",
        "# restarted with it (PartOf=), after it: its first repair follows the new rules.",
        "PartOf=firewalld.service",
        "After=firewalld.service",
        "",
        "[Service]",
        "# Listens on the system bus for the Reloaded signal of firewalld (as libvirt and the",
        "# netavark of podman do), and starts the repair service for each one, and once at start.",
        `ExecStart=/bin/sh ${spec.converge} ${followFirewalld}`,
        "# the system bus restarted under it: listen again",
        "Restart=on-failure",
        "RestartSec=10",
        "",
        "[Install]",
        "WantedBy=firewalld.service",
        "",
    ].join("\n");
    return { service, repairService, repairTimer, firewalldHook };
}
