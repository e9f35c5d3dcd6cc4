// What the doctor reads on a host, in one SSH session: a script that only reads (ip, sysctl
// files, iptables-save, the pair's manifest) and a bounded ping per probe, printing sections
// "@@ name args" that `parseFacts` splits again. Pure but for the host it runs on.
import * as fs from "fs";
import * as path from "path";
import { shellQuote } from "../components/render";

export interface FactRequest {
    /** Tunnel devices on the host. */
    readonly devices: readonly string[];
    /** Addresses whose route the kernel is asked for (`ip route get`). */
    readonly lookups: readonly string[];
    /** "<stack>/<pair>" state directories whose manifest is read. */
    readonly states: readonly string[];
    /** Pings from a local address to another: [from, to]. */
    readonly probes: readonly (readonly [string, string])[];
    /** The kernel modules of the host's tunnels beyond ipip (ip_gre...), whose presence is read. */
    readonly modules?: readonly string[];
    /** Some tunnel of the host carries IPv6 (mode sit): IPv6's routes, addresses, ip6tables and forwarding are read too. */
    readonly ipv6?: boolean;
}

const script = fs.readFileSync(path.join(__dirname, "facts.sh"), "utf8");

/** The read-only script for one host. */
export function factScript(r: FactRequest): string {
    const sysctls = [
        ...r.devices.flatMap((d) => [`net/ipv4/conf/${d}/rp_filter`, `net/ipv4/conf/${d}/forwarding`]),
        ...(r.ipv6 ? ["net/ipv6/conf/all/forwarding"] : []),
    ];
    const vars: [string, string][] = [
        ["DEVS", r.devices.join(" ")],
        ["SYSCTLS", sysctls.join(" ")],
        ["LOOKUPS", [...new Set(r.lookups)].join(" ")],
        ["STATES", r.states.join(" ")],
        ["PROBES", r.probes.map(([f, t]) => `${f}>${t}`).join(" ")],
        ["MODULES", [...new Set(r.modules ?? [])].join(" ")],
        ["IPV6", r.ipv6 ? "1" : "0"],
    ];
    return ["#!/bin/sh", "# tunnelpair doctor: reads the host, changes nothing", "set -u", ...vars.map(([k, v]) => `${k}=${shellQuote(v)}`), script].join("\n");
}

/** Sections by their header ("link tunl1"), each the lines that followed it. */
export type Facts = Map<string, string[]>;

export function parseFacts(output: string): Facts {
    const facts: Facts = new Map();
    let current: string[] | undefined;
    for (const line of output.split("\n")) {
        if (line.startsWith("@@ ")) {
            current = [];
            facts.set(line.slice(3), current);
        } else if (current && line !== "") current.push(line);
    }
    return facts;
}
