// Lanes through a jump host. `pulumi up` runs independent resources all at once, so a pair
// with 32 compute nodes behind one jump host would open 32 sessions through it together, and
// sshd's MaxStartups resets some of them (the provider's dial loop then redials). Chaining
// the Commands of the hosts behind one jump host into `jumpSessions` lanes keeps at most that
// many of them running at once, on up and, since destroy deletes in reverse dependency
// order, on destroy too. Pure: the component wires the result into `dependsOn`.
import type { ConnectionArgs } from "./args";
import { jumpSessionsRange } from "./model";

/** The jump host a host's Command goes through, as lanes see it: what groups its hosts, and its bound. */
export interface Hop {
    /** Hosts with the same key go through the same jump host. */
    readonly key: unknown;
    /** Its jumpSessions. */
    readonly width: number;
}

/**
 * The jump host of a host's connection, from the args as the component is made: grouped by
 * host and port where both are plain values, else by the proxy object itself (one written
 * once and used for every host behind it). Undefined: a direct connection.
 */
export function hopOf(connection: ConnectionArgs): Hop | undefined {
    const p = connection.proxy;
    if (p === undefined) return undefined;
    const plain = typeof p.host === "string" && (p.port === undefined || typeof p.port === "number");
    return { key: plain ? JSON.stringify([p.host, p.port ?? 22]) : p, width: p.jumpSessions ?? jumpSessionsRange.default };
}

/**
 * For each host in order, the index of the host whose Command its own waits for: among the
 * hosts behind the same jump host, the k-th waits for the (k - W)-th, W being that jump
 * host's width (the smallest its hosts give). Undefined: it waits for no lane.
 */
export function lanePredecessors(hops: readonly (Hop | undefined)[]): (number | undefined)[] {
    const width = new Map<unknown, number>();
    for (const h of hops) if (h) width.set(h.key, Math.min(width.get(h.key) ?? Infinity, h.width));
    const members = new Map<unknown, number[]>();
    return hops.map((h, i) => {
        if (h === undefined) return undefined;
        const group = members.get(h.key) ?? members.set(h.key, []).get(h.key)!;
        const k = group.push(i) - 1; // its place among the hosts behind its jump host
        const w = width.get(h.key)!;
        return k >= w ? group[k - w] : undefined;
    });
}

/**
 * Runs `task(i)` for each host in the lanes lanePredecessors draws: a host's task starts once
 * the task it waits for has settled (failed or not), so at most a jump host's width of them
 * run through it at once. For code that opens sessions itself (the doctor); the component's
 * Commands get the same order from dependsOn.
 */
export function inLanes<T>(hops: readonly (Hop | undefined)[], task: (i: number) => Promise<T>): Promise<T[]> {
    const before = lanePredecessors(hops);
    const settled = (p: Promise<T>) =>
        p.then(
            () => undefined,
            () => undefined,
        );
    const runs: Promise<T>[] = [];
    hops.forEach((_, i) => {
        const b = before[i];
        runs.push((b === undefined ? Promise.resolve() : settled(runs[b])).then(() => task(i)));
    });
    return Promise.all(runs);
}
