// The how-to's troubleshooting list (§3.4), automated: what each host of a stack must look
// like for its pairs to work, compared with what the host reports (facts.ts). Pure: the
// model and the facts in, one finding per item out.
import { representative } from "../components/address";
import { Endpoint, Host, modeInfo, Model, overheadOf, Pair, peerOf } from "../components/model";
import { forwardingKey, ownerTag } from "../components/plan";
import { FactRequest, Facts } from "./facts";
import { Packet, parseFilterTable, Table, verdict } from "./firewall";

export type Status = "ok" | "fail" | "unknown";

export interface Finding {
    /** ipip (module, for the other modes), device, mtu, ownership, forwarding, rp_filter, firewall, routes, probe, gateway */
    readonly item: string;
    readonly pair: string;
    readonly status: Status;
    readonly detail: string;
}

/** What a host does for the stack: an endpoint of a pair, a desktop client, a compute node. */
export type Duty =
    | { readonly kind: "endpoint"; readonly pair: Pair; readonly ep: Endpoint }
    | { readonly kind: "client"; readonly pair: Pair; readonly gateway: string; readonly networks: readonly string[] }
    | { readonly kind: "node"; readonly pair: Pair; readonly gateway: string; readonly dropLinkLocal: boolean };

/** Every host of the stack that some pair touches, with what it does. */
export function dutiesByHost(model: Model): Map<string, Duty[]> {
    const out = new Map<string, Duty[]>();
    const add = (host: string, d: Duty) => out.set(host, [...(out.get(host) ?? []), d]);
    for (const pair of model.pairs) {
        for (const ep of [pair.a, pair.b]) {
            add(ep.host, { kind: "endpoint", pair, ep });
            const gateway = model.hosts[ep.host].underlay.address;
            for (const c of ep.clients) add(c.host, { kind: "client", pair, gateway, networks: c.networks.map((n) => n.cidr) });
            for (const n of ep.computeNodes) add(n.host, { kind: "node", pair, gateway: n.gateway, dropLinkLocal: n.dropLinkLocal });
        }
    }
    return out;
}

/** Inner sources that arrive through the endpoint's tunnel: the peer's tunnel address, the forwarded ones. */
function tunnelSources(pair: Pair, ep: Endpoint): string[] {
    const fromTunnel = ep.forward.filter((f) => f.in === ep.interface).flatMap((f) => f.from.map(representative));
    return [peerOf(pair, ep.side).tunnelAddress, ...fromTunnel];
}

export function factRequest(model: Model, duties: readonly Duty[]): FactRequest {
    const eps = duties.flatMap((d) => (d.kind === "endpoint" ? [d] : []));
    const modules = eps.filter((d) => d.pair.mode !== "ipip").map((d) => modeInfo[d.pair.mode].module);
    return {
        ...(modules.length ? { modules } : {}),
        // (IPv6 on either side of a tunnel: what it carries, or what carries it, ip6tables' rules)
        ...(eps.some((d) => modeInfo[d.pair.mode].overlay === 6 || modeInfo[d.pair.mode].underlay === 6) ? { ipv6: true } : {}),
        devices: eps.map((d) => d.ep.interface),
        lookups: eps.flatMap((d) => [model.hosts[peerOf(d.pair, d.ep.side).host].underlay.address, ...tunnelSources(d.pair, d.ep)]),
        states: [...new Set(duties.map((d) => `${model.stack}/${d.pair.name}`))],
        probes: eps.map((d) => [d.ep.tunnelAddress, peerOf(d.pair, d.ep.side).tunnelAddress] as const),
    };
}

/** "k v" lines as a map. */
function pairsOf(lines: readonly string[] | undefined): Map<string, string> {
    return new Map((lines ?? []).map((l) => [l.split(" ")[0], l.slice(l.indexOf(" ") + 1)]));
}

/** The last value after `word` in a line of words (`ip -d link` prints "local" twice, the ipip part last). */
function after(line: string, word: string): string | undefined {
    const w = line.split(/\s+/);
    const i = w.lastIndexOf(word);
    return i < 0 ? undefined : w[i + 1];
}

export function diagnose(model: Model, hostName: string, duties: readonly Duty[], facts: Facts): Finding[] {
    const findings: Finding[] = [];
    const host = model.hosts[hostName];
    const sysctl = pairsOf(facts.get("sysctl"));
    const routes = facts.get("routes") ?? [];
    const table = parseFilterTable((facts.get("iptables") ?? []).join("\n"));
    for (const d of duties) {
        const note = (item: string, status: Status, detail: string) => findings.push({ item, pair: d.pair.name, status, detail });
        if (d.kind === "endpoint") endpointFindings(model, host, d.pair, d.ep, facts, sysctl, routes, table, note);
        else if (d.kind === "client") {
            for (const n of d.networks) {
                const ok = routes.some((r) => r.startsWith(`${n} via ${d.gateway} `));
                note(
                    "routes",
                    ok ? "ok" : "fail",
                    ok
                        ? `${n} via ${d.gateway} (its desktop gateway)`
                        : `no route ${n} via ${d.gateway}: traffic for the tunnel's far side does not go to its gateway`,
                );
            }
        } else {
            const dflt = routes.find((r) => r.startsWith("default "));
            const ok = dflt?.startsWith(`default via ${d.gateway} `) ?? false;
            note(
                "gateway",
                ok ? "ok" : "fail",
                ok
                    ? `default via ${d.gateway}`
                    : `the default route is ${dflt ? `"${dflt}"` : "missing"}, the pair needs default via ${d.gateway} (its router)`,
            );
            if (d.dropLinkLocal) {
                const ll = routes.find((r) => r.startsWith("169.254.0.0/16 "));
                note("routes", ll ? "fail" : "ok", ll ? `"${ll}" is back: the pair removes 169.254.0.0/16` : "no 169.254.0.0/16 route");
            }
        }
    }
    return findings;
}

function endpointFindings(
    model: Model,
    host: Host,
    pair: Pair,
    ep: Endpoint,
    facts: Facts,
    sysctl: Map<string, string>,
    routes: readonly string[],
    table: Table,
    note: (item: string, status: Status, detail: string) => void,
): void {
    const dev = ep.interface;
    const peer = peerOf(pair, ep.side);
    const peerHost = model.hosts[peer.host];
    const local = host.underlay.address;
    const remote = peerHost.underlay.address;
    // a tunnel that carries IPv6 (sit, ip6ip6): its addresses, routes and inner rules are IPv6's
    // (ip -6, ip6tables); one that runs over IPv6 (ipip6, ip6ip6): its underlay's rules
    const v6 = modeInfo[pair.mode].overlay === 6;
    const table6 =
        modeInfo[pair.mode].overlay === 6 || modeInfo[pair.mode].underlay === 6 ? parseFilterTable((facts.get("ip6tables") ?? []).join("\n")) : table;
    const innerRoutes = v6 ? (facts.get("routes6") ?? []) : routes;
    const innerTable = v6 ? table6 : table;
    const underlayTable = modeInfo[pair.mode].underlay === 6 ? table6 : table;

    const { mode } = pair;
    const info = modeInfo[mode];
    if (mode === "ipip") {
        const ipip = facts.get("ipip")?.[0];
        note("ipip", ipip === "missing" ? "fail" : "ok", ipip === "missing" ? "this kernel has no ipip (no ipip device, no module to load)" : `ipip ${ipip}`);
    } else {
        const m = facts.get(`module ${info.module}`)?.[0];
        note(
            "module",
            m === "missing" ? "fail" : "ok",
            m === "missing" ? `this kernel has no ${info.module} (no module to load) for mode ${mode}` : `${info.module} ${m ?? "not read"}`,
        );
    }

    const link = (facts.get(`link ${dev}`) ?? []).join(" ");
    if (link === "" || link === "missing") {
        note("device", "fail", `${dev} does not exist (not deployed, or removed by hand)`);
        return;
    }
    // the device's type as `ip -d link` prints it: link/ipip, link/gre, link/sit, link/tunnel6
    const linkType = { ipip: "ipip", gre: "gre", sit: "sit", ip6tnl: "tunnel6" }[info.linkType];
    if (!link.includes(` link/${linkType} `)) {
        note("device", "fail", `${dev} is not ${/^[aeiou]/.test(info.linkType) ? "an" : "a"} ${info.linkType} device: ${link}`);
        return;
    }
    // (GRE's key as ip prints it, a.b.c.d; none: no ikey word)
    const key = pair.key === undefined ? undefined : [24, 16, 8, 0].map((s) => (pair.key! >>> s) & 255).join(".");
    const seen = {
        local: after(link, "local"),
        remote: after(link, "remote"),
        ttl: after(link, info.underlay === 6 ? "hoplimit" : "ttl"),
        key: mode === "gre" ? after(link, "ikey") : undefined,
        // the device's own mode, the word after its kind: a sit device of mode ip6ip (protocol
        // 41 only), an ip6tnl device of the pair's mode; and ip6tnl's encapsulation limit
        // option, off (each packet would carry 8 bytes more than the MTU allows for)
        mode: info.linkType === "sit" || info.linkType === "ip6tnl" ? after(link, info.linkType) : undefined,
        encaplimit: info.linkType === "ip6tnl" ? after(link, "encaplimit") : undefined,
    };
    const want = {
        local,
        remote,
        ttl: String(ep.ttl),
        key,
        mode: info.linkType === "sit" ? "ip6ip" : info.linkType === "ip6tnl" ? mode : undefined,
        encaplimit: info.linkType === "ip6tnl" ? "none" : undefined,
    };
    const wrong = (["local", "remote", "ttl", "key", "mode", "encaplimit"] as const)
        .filter((k) => seen[k] !== want[k])
        .map((k) => `${k} is ${seen[k] ?? "unset"}, the pair needs ${want[k]}`);
    const flags = /<([^>]*)>/.exec(link)?.[1].split(",") ?? [];
    if (!flags.includes("UP")) wrong.push(`${dev} is down`);
    const stats = pairsOf(facts.get(`stats ${dev}`));
    const errors = Number(stats.get("tx_errors") ?? 0) + Number(stats.get("collisions") ?? 0);
    note(
        "device",
        wrong.length ? "fail" : "ok",
        wrong.length
            ? `${dev}: ${wrong.join("; ")}`
            : `${dev}: ${mode} local ${local} remote ${remote} ttl ${ep.ttl}${key === undefined ? "" : ` key ${pair.key}`}, up${errors ? `; ${errors} transmit errors/collisions (packets with no way out: a wrong remote or route)` : ""}`,
    );

    const mtu = Number(after(link, "mtu"));
    const lookup = facts.get(`route-get ${remote}`) ?? [];
    const routeMtu = after(lookup[0] ?? "", "mtu") ?? pairsOf(lookup.slice(1)).get("devmtu");
    const overhead = overheadOf(pair);
    const wantMtu = ep.mtu === "auto" ? (routeMtu === undefined ? undefined : Number(routeMtu) - overhead) : ep.mtu;
    note(
        "mtu",
        wantMtu === undefined ? "unknown" : mtu === wantMtu ? "ok" : "fail",
        wantMtu === undefined
            ? `${dev} mtu ${mtu}; no route to ${remote} to compare with (${lookup.join(" ")})`
            : `${dev} mtu ${mtu}${mtu === wantMtu ? "" : `, the pair needs ${wantMtu}`} (${ep.mtu === "auto" ? `auto: the route to ${remote} has ${routeMtu}, less ${overhead}` : "configured"})`,
    );

    const alias = (facts.get(`alias ${dev}`) ?? [])[0] ?? "";
    const tag = ownerTag(model.stack, pair.name);
    const manifest = facts.get(`manifest ${model.stack}/${pair.name}`) ?? [];
    const owned = manifest.some((l) => l.startsWith(`own ${mode === "ipip" ? "link" : "tunnel"} ${dev} `));
    note(
        "ownership",
        alias === tag && owned ? "ok" : "fail",
        alias !== tag
            ? `${dev} is not this pair's: ifalias "${alias}", expected "${tag}"`
            : owned
              ? `${dev} is ${tag}'s (ifalias and manifest)`
              : `${dev} carries the tag but /var/lib/tunnelpair/${model.stack}/${pair.name}/manifest does not list it`,
    );

    // the address as `ip -o addr` prints it, and the kernel's route that comes with it, when the pair keeps it
    const address = ep.peerAddress ? `${ep.tunnelAddress} peer ${ep.peerAddress}/32` : `${ep.tunnelAddress}/${ep.network.prefix}`;
    const hasAddr = (facts.get(`${v6 ? "addrs6" : "addrs"} ${dev}`) ?? []).some((l) => l.includes(` ${v6 ? "inet6" : "inet"} ${address} `));
    const connected = !ep.keepConnectedRoute
        ? []
        : [ep.peerAddress ? `${ep.peerAddress} dev ${dev} proto kernel` : `${ep.network.cidr} dev ${dev} proto kernel`];
    const missingConnected = connected.filter((c) => !innerRoutes.some((l) => l.startsWith(`${c} `)));
    const missingRoutes = ep.routes.filter((r) => !innerRoutes.some((l) => l.startsWith(`${r.cidr} dev ${dev} `) || l === `${r.cidr} dev ${dev}`));
    const routeIssues = [
        ...(hasAddr ? [] : [`${address} is not on ${dev}`]),
        ...missingConnected.map((c) => `no route ${c} (the connected route of the address)`),
        ...missingRoutes.map((r) => `no route ${r.cidr} dev ${dev}`),
    ];
    const present = [...connected, ...(ep.routes.length ? [`${ep.routes.map((r) => r.cidr).join(", ")} dev ${dev}`] : [])];
    note(
        "routes",
        routeIssues.length ? "fail" : "ok",
        routeIssues.length ? routeIssues.join("; ") : `${address} on ${dev}${present.length ? `; ${present.join("; ")}` : ""}`,
    );

    if (ep.forwarding) {
        const key = forwardingKey[v6 ? 6 : 4];
        const f = sysctl.get(key);
        const name = key.replace(/\//g, ".");
        note("forwarding", f === "1" ? "ok" : "fail", f === "1" ? `${name} = 1` : `${name} = ${f}, the pair forwards and needs 1`);
    }

    // rp_filter: the larger of "all" and the device's applies; strict (1) drops a source whose route back is not the tunnel
    const rpAll = Number(sysctl.get("net/ipv4/conf/all/rp_filter") ?? 0);
    const rpDev = Number(sysctl.get(`net/ipv4/conf/${dev}/rp_filter`) ?? 0);
    const rp = Math.max(rpAll, rpDev);
    const rpName = (v: number) => ["off", "strict", "loose"][v] ?? String(v);
    if (v6) {
        // (IPv6 has no rp_filter: the owned firewall's inner-source check is its only one)
    } else if (ep.reversePathFilter === "loose" && rp !== 2) {
        note("rp_filter", "fail", `${dev}'s rp_filter is ${rp} (${rpName(rp)}: all ${rpAll}, ${dev} ${rpDev}); the pair sets it loose (2)`);
    } else {
        const strays = rp === 1 ? tunnelSources(pair, ep).filter((s) => after((facts.get(`route-get ${s}`) ?? [])[0] ?? "", "dev") !== dev) : [];
        note(
            "rp_filter",
            strays.length ? "fail" : "ok",
            strays.length
                ? `rp_filter is strict on ${dev} (all ${rpAll}, ${dev} ${rpDev}) and the route back to ${strays.join(", ")} does not go by ${dev}: their packets through the tunnel are dropped (reversePathFilter: loose)`
                : `${rpName(rp)} (all ${rpAll}, ${dev} ${rpDev})`,
        );
    }

    const judge = (chain: string, p: Packet, what: string, t: Table = table) => {
        const v = verdict(t, chain, p);
        note(
            "firewall",
            v.verdict === "ACCEPT" ? "ok" : v.verdict === "unknown" ? "unknown" : "fail",
            `${chain} ${v.verdict === "unknown" ? "cannot be judged for" : v.verdict === "ACCEPT" ? "accepts" : v.verdict === "DROP" ? "drops" : "rejects"} ${what} (${v.by})`,
        );
    };
    const uif = host.underlay.interface;
    const proto = info.protocol;
    judge("INPUT", { src: remote, dst: local, proto, in: uif, state: "NEW" }, `protocol ${proto} from the peer ${remote}`, underlayTable);
    judge("OUTPUT", { src: local, dst: remote, proto, out: uif, state: "NEW" }, `protocol ${proto} to the peer ${remote}`, underlayTable);
    if (pair.verify)
        judge(
            "INPUT",
            { src: peer.tunnelAddress, dst: ep.tunnelAddress, proto: v6 ? 58 : 1, in: dev, state: "NEW" },
            `the probe's ${v6 ? "ICMPv6" : "ICMP"} from ${peer.tunnelAddress} on ${dev}`,
            innerTable,
        );
    const protoNumber = { tcp: 6, udp: 17, icmp: v6 ? 58 : 1 } as const;
    // every flow a rule admits: each source to each destination, by each protocol; `all` by
    // each of tcp, udp and icmp (a firewall that admits only tcp would fail the rest)
    for (const r of ep.forward) {
        for (const proto of [...new Set(r.protocols.flatMap((p) => (p === "all" ? (["tcp", "udp", "icmp"] as const) : [p])))]) {
            for (const src of r.from.map(representative)) {
                for (const dst of r.to.map(representative)) {
                    judge(
                        "FORWARD",
                        { src, dst, proto: protoNumber[proto], in: r.in, out: r.out, dport: proto === "tcp" ? 22 : undefined, state: "NEW" },
                        `${proto} ${src} -> ${dst}${r.in ? ` in ${r.in}` : ""}${r.out ? ` out ${r.out}` : ""}`,
                        innerTable,
                    );
                }
            }
        }
    }

    const probe = (facts.get(`probe ${ep.tunnelAddress}>${peer.tunnelAddress}`) ?? []).join(" ");
    const received = / (\d+) received/.exec(probe);
    const answered = received !== null && Number(received[1]) > 0;
    note("probe", answered ? "ok" : "fail", `ping ${peer.tunnelAddress} (${peer.host}) from ${ep.tunnelAddress}: ${probe || "no output"}`);
}
