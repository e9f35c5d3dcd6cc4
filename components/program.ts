// The program's body, as a function so that tests and the lab's replay can run it again
// under mocks with other configurations: the stack config, validated as a whole, then one
// TunnelPair a pair, given the pair's entry with its hosts inline, as any program would.
import * as pulumi from "@pulumi/pulumi";
import { pairArgs } from "./pairConfig";
import { loadStack } from "./stack";
import { TunnelPair } from "./tunnelPair";

export function deployStack(stack = pulumi.getStack()) {
    const loaded = loadStack(stack);
    /** Per pair: each endpoint's host, device and tunnel address, the ownership tag, the probe's report. */
    const tunnels = Object.fromEntries(
        loaded.model.pairs.map((p) => {
            const t = new TunnelPair(p.name, pairArgs(loaded.config, p.name, stack));
            return [p.name, { tag: t.tag, a: t.a, b: t.b, verified: t.verified }];
        }),
    );
    return { tunnels };
}
