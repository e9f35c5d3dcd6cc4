// The program: stack configuration -> validated model -> one TunnelPair per pair.
import * as pulumi from "@pulumi/pulumi";
import { loadModel, warnings } from "./components/stack";
import { TunnelPair } from "./components/tunnelPair";

const config = new pulumi.Config();
const model = loadModel(config, pulumi.getStack());
for (const w of warnings(model)) {
    pulumi.log.warn(w);
}

const pairs = model.pairs.map((p) => new TunnelPair(p.name, { model, pair: p.name }));

/** Per pair: each endpoint's host, device and tunnel address, and the ownership tag. */
export const tunnels = Object.fromEntries(
    pairs.map((t) => [
        t.tag.slice(t.tag.indexOf("/") + 1),
        {
            tag: t.tag,
            a: { host: t.a.host, interface: t.a.interface, tunnelAddress: t.a.tunnelAddress, report: t.a.report },
            b: { host: t.b.host, interface: t.b.interface, tunnelAddress: t.b.tunnelAddress, report: t.b.report },
        },
    ]),
);
