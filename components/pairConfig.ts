// TunnelPair args <-> the stack config's shape. validateConfig reads the stack file's shape
// (hosts by name, pairs naming them); a program's args hold one pair with its hosts inline.
// Both ways are pure: args, once their Inputs are resolved, become a one-pair stack config
// (and validation's field paths become the args' own: `a.host.connection.port`); a stack
// file's pair becomes args, so the stack-config program is a caller of the component.
import * as pulumi from "@pulumi/pulumi";
import { ClientArgs, ComputeNodeArgs, EndpointArgs, HostArgs, JumpHostArgs, TunnelPairArgs } from "./args";
import { credentialKeys, StackConfig } from "./validate";

type Obj = Record<string, unknown>;

/** Every host the args name, with where it appears first: "a.host", "b.clients[0].host"... */
export function hostsOf(args: { a: EndpointArgs; b: EndpointArgs }): { path: string; host: HostArgs }[] {
    const out: { path: string; host: HostArgs }[] = [];
    for (const side of ["a", "b"] as const) out.push({ path: `${side}.host`, host: args[side].host });
    for (const side of ["a", "b"] as const) {
        (args[side].clients ?? []).forEach((c, i) => out.push({ path: `${side}.clients[${i}].host`, host: c.host }));
        (args[side].computeNodes ?? []).forEach((n, i) => out.push({ path: `${side}.computeNodes[${i}].host`, host: n.host }));
    }
    return out;
}

/**
 * Where the args are not plain where they must be: the values that shape the graph (the
 * hosts' names, the lists of clients and nodes, `verify`, `stack`, a jump host's
 * `jumpSessions`) and the objects that hold them are read when the component is made,
 * before any Output resolves. TypeScript's types already say so; a program in another
 * language reaches the component through the provider, whose wire format could still hand
 * over a whole endpoint as one Output (an SDK that marks a secret inside it by making all of
 * it secret), so this says which field, and why.
 */
export function shapeProblems(args: TunnelPairArgs): { propertyPath: string; reason: string }[] {
    const out: { propertyPath: string; reason: string }[] = [];
    const deferred = (v: unknown) => hasInputs(v) && (pulumi.Output.isInstance(v) || typeof (v as { then?: unknown }).then === "function");
    const need = (path: string, v: unknown, what: "object" | "array" | "string" | "boolean" | "number", optional = false): boolean => {
        if (v === undefined && optional) return false;
        const ok =
            what === "array"
                ? Array.isArray(v)
                : what === "object"
                  ? v !== null && typeof v === "object" && !Array.isArray(v) && !deferred(v)
                  : typeof v === what;
        if (!ok) {
            const found = deferred(v) ? "an Output (a value known only later, or a secret that covers it whole)" : (JSON.stringify(v) ?? "nothing");
            // (the one number, jumpSessions, holds nothing else)
            const why =
                what === "number"
                    ? "it decides in what order the pair's Commands run (their lanes through a jump host)"
                    : "it decides which resources the pair has; pass Outputs (and secrets) at the fields inside it that carry them";
            out.push({ propertyPath: path, reason: `must be a plain ${what} when the component is made, found ${found}: ${why}` });
        }
        return ok;
    };
    // a connection, and its jumpSessions: a jump host's draws the lanes of the hosts behind it (lanes.ts)
    const connection = (path: string, c: unknown): boolean => {
        if (!need(path, c, "object")) return false;
        need(`${path}.jumpSessions`, (c as Obj).jumpSessions, "number", true);
        return true;
    };
    const host = (path: string, h: unknown) => {
        if (!need(path, h, "object")) return;
        const x = h as Obj;
        need(`${path}.name`, x.name, "string");
        if (connection(`${path}.connection`, x.connection) && (x.connection as Obj).proxy !== undefined)
            connection(`${path}.connection.proxy`, (x.connection as Obj).proxy);
        need(`${path}.underlay`, x.underlay, "object");
    };
    for (const side of ["a", "b"] as const) {
        const e = (args as unknown as Obj)[side];
        if (!need(side, e, "object")) continue;
        const x = e as Obj;
        host(`${side}.host`, x.host);
        for (const list of ["clients", "computeNodes"]) {
            if (!need(`${side}.${list}`, x[list], "array", true) || x[list] === undefined) continue;
            (x[list] as unknown[]).forEach((m, i) => need(`${side}.${list}[${i}]`, m, "object") && host(`${side}.${list}[${i}].host`, (m as Obj).host));
        }
    }
    need("verify", args.verify, "boolean", true);
    need("stack", args.stack, "string", true);
    return out;
}

/**
 * The one-pair stack config of resolved args, and a translation of validation's field paths
 * into the args' own. The same host may appear more than once (an endpoint that is also the
 * jump host of its compute nodes is written where each needs it); two different hosts under
 * one name are refused.
 */
export function pairConfig(
    pair: string,
    args: pulumi.Unwrap<TunnelPairArgs>,
): { config: StackConfig; translate: (message: string) => string; conflicts: string[] } {
    const hosts: Obj = {};
    const paths = new Map<string, string>();
    const conflicts: string[] = [];
    for (const { path, host } of hostsOf(args) as unknown as { path: string; host: pulumi.Unwrap<HostArgs> }[]) {
        const entry = hostEntry(host);
        const seen = paths.get(host.name);
        if (seen === undefined) {
            hosts[host.name] = entry;
            paths.set(host.name, path);
        } else if (JSON.stringify(hosts[host.name]) !== JSON.stringify(entry)) {
            conflicts.push(`${path}.name: ${JSON.stringify(host.name)} is the name of another host at ${seen}`);
        }
    }
    const endpoint = (e: pulumi.Unwrap<EndpointArgs>): Obj =>
        defined({
            ...e,
            host: e.host.name,
            clients: e.clients?.map((c: pulumi.Unwrap<ClientArgs>) => defined({ ...c, host: c.host.name })),
            computeNodes: e.computeNodes?.map((n: pulumi.Unwrap<ComputeNodeArgs>) => defined({ ...n, host: n.host.name })),
        });
    const config: StackConfig = {
        hosts,
        pairs: {
            [pair]: defined({
                a: endpoint(args.a),
                b: endpoint(args.b),
                mode: args.mode,
                key: args.key,
                firewall: args.firewall,
                verify: args.verify,
                persist: args.persist,
                // the args' 0 is the stack file's "off" (the schema has no number-or-string)
                repair: args.repair === 0 ? "off" : args.repair,
                converge: args.converge,
            }),
        },
    };
    const translate = (message: string): string => {
        let m = message.split(`pairs.${pair}.`).join("");
        for (const [name, path] of paths) m = m.split(`hosts.${name}.`).join(`${path}.`);
        return m;
    };
    return { config, translate, conflicts };
}

function hostEntry(h: pulumi.Unwrap<HostArgs>): Obj {
    const { proxy, ...connection } = h.connection;
    return defined({
        connection: defined({ ...connection, proxy: proxy && defined({ ...proxy }) }),
        sudo: h.sudo,
        underlay: defined({ ...h.underlay }),
        interfaces: h.interfaces,
    });
}

/** The object without its undefined fields: an absent field and an undefined one read alike. */
function defined(o: Obj): Obj {
    return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/**
 * The args with each credential replaced by a stand-in of the same kind ("(secret)" for a
 * non-empty string, the empty string, a number...), no longer secret: validation sees whether
 * a credential is there and well-formed, and nothing derived from the rest of the args (the
 * scripts) becomes secret because a key is.
 */
export function withoutCredentials(args: TunnelPairArgs): TunnelPairArgs {
    const redact = (c: JumpHostArgs): JumpHostArgs => {
        const out: Obj = { ...c };
        for (const key of credentialKeys) {
            if (c[key] !== undefined) out[key] = pulumi.unsecret(pulumi.output(c[key]).apply(standIn));
        }
        return out as unknown as JumpHostArgs;
    };
    const host = (h: HostArgs): HostArgs => ({ ...h, connection: { ...redact(h.connection), proxy: h.connection.proxy && redact(h.connection.proxy) } });
    const endpoint = (e: EndpointArgs): EndpointArgs => ({
        ...e,
        host: host(e.host),
        clients: e.clients?.map((c) => ({ ...c, host: host(c.host) })),
        computeNodes: e.computeNodes?.map((n) => ({ ...n, host: host(n.host) })),
    });
    return { ...args, a: endpoint(args.a), b: endpoint(args.b) };
}

function standIn(v: unknown): unknown {
    if (typeof v === "string") return v === "" ? "" : "(secret)";
    if (Array.isArray(v)) return [];
    if (v !== null && typeof v === "object") return {};
    return typeof v === "number" ? 0 : v;
}

/** Whether any value in the args is an Output or a promise (known only when resolved). */
export function hasInputs(v: unknown): boolean {
    if (pulumi.Output.isInstance(v) || (v !== null && typeof v === "object" && typeof (v as { then?: unknown }).then === "function")) return true;
    if (Array.isArray(v)) return v.some(hasInputs);
    if (v !== null && typeof v === "object") return Object.values(v).some(hasInputs);
    return false;
}

/**
 * A pair of a validated stack config as TunnelPair args: its hosts written inline, a jump
 * host named by the stack file replaced by that host's connection, `mtu: auto` and
 * `ttl: inherit` left out (the args' defaults).
 */
export function pairArgs(config: StackConfig, pair: string, stack: string): TunnelPairArgs {
    const hosts = config.hosts as Record<string, Obj>;
    const host = (name: string): HostArgs => {
        const h = hosts[name];
        const { proxy, ...connection } = h.connection as Obj;
        const jump = typeof proxy === "string" ? ({ ...(hosts[proxy].connection as Obj), proxy: undefined } as Obj) : undefined;
        return {
            ...(h as unknown as HostArgs),
            name,
            connection: defined({ ...connection, proxy: jump && defined(jump) }) as unknown as HostArgs["connection"],
        };
    };
    const endpoint = (raw: unknown): EndpointArgs => {
        const e = raw as Obj & { host: string; clients?: Obj[]; computeNodes?: Obj[] };
        return defined({
            ...e,
            host: host(e.host),
            mtu: e.mtu === "auto" ? undefined : e.mtu,
            ttl: e.ttl === "inherit" ? undefined : e.ttl,
            clients: e.clients?.map((c) => ({ ...c, host: host(c.host as string) })),
            computeNodes: e.computeNodes?.map((n) => ({ ...n, host: host(n.host as string) })),
        }) as unknown as EndpointArgs;
    };
    const p = (config.pairs as Record<string, Obj>)[pair];
    const repair = p.repair === "off" ? 0 : p.repair;
    return defined({
        a: endpoint(p.a),
        b: endpoint(p.b),
        mode: p.mode,
        key: p.key,
        firewall: p.firewall,
        verify: p.verify,
        persist: p.persist,
        repair,
        converge: p.converge,
        stack,
    }) as unknown as TunnelPairArgs;
}
