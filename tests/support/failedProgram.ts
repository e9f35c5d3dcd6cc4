// Run by tests/component.test.ts in a process of its own: the toy on VMs with b's tunnel
// address an Output that resolves to a refused value. Prints what failed and what was registered.
import * as pulumi from "@pulumi/pulumi";
import { onVms, record } from "./component";

record(onVms((args) => (args.b.tunnelAddress = pulumi.output("10.0.3.2")))).then(
    () => {
        console.log(JSON.stringify({ message: "the program accepted it", registered: [] }));
    },
    (e: Error & { recorded?: { type: string }[] }) => {
        console.log(JSON.stringify({ message: e.message, registered: (e.recorded ?? []).map((r) => r.type) }));
    },
);
