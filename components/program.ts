// The program's body, as a function so that tests and the lab's replay can run it again
// under mocks with other configurations: config -> validated model -> one TunnelPair a pair.
import * as pulumi from "@pulumi/pulumi";
import { loadModel, warnings } from "./stack";
import { TunnelPair } from "./tunnelPair";

export function deployStack(config = new pulumi.Config(), stack = pulumi.getStack()) {
    const model = loadModel(config, stack);
    for (const w of warnings(model)) {
        pulumi.log.warn(w);
    }
    const pairs = model.pairs.map((p) => new TunnelPair(p.name, { model, pair: p.name }));
    /** Per pair: each endpoint's host, device and tunnel address, the ownership tag, the probe's report. */
    const tunnels = Object.fromEntries(
        model.pairs.map((p, i) => {
            const t = pairs[i];
            const side = (e: typeof t.a) => ({ host: e.host, interface: e.interface, tunnelAddress: e.tunnelAddress, report: e.report });
            return [p.name, { tag: t.tag, a: side(t.a), b: side(t.b), verified: t.verified }];
        }),
    );
    return { tunnels };
}
