// A TunnelPair program under mocks with VMs whose addresses are known only after the
// update, for tests/component.test.ts and the child process it runs (failedProgram.ts).
import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { TunnelPair, TunnelPairArgs } from "../../components";
import { sourceOfStackFile, stackConfig } from "../../components/config";
import { pairArgs } from "../../components/pairConfig";
import { readStackFile } from "../../components/stackFile";
import { recordProgram, Recording, RecordedResource } from "../../replay/record";

export const toyFile = path.join(__dirname, "..", "..", "stacks", "Pulumi.toy.yaml");
const addresses: Record<string, string> = { doolittle: "130.88.198.58", calculon: "130.88.196.129" };

/** The toy's pair as plain args, as a program would write them. */
export function toyArgs(): TunnelPairArgs {
    return pairArgs(stackConfig(sourceOfStackFile(readStackFile(toyFile))), "toy", "toy");
}

/** A VM made in the same update: its address is known only once it exists. */
export class Vm extends pulumi.CustomResource {
    declare public readonly publicIp: pulumi.Output<string>;
    constructor(name: string) {
        super("test:index:Vm", name, { publicIp: undefined });
    }
}

export function record(program: () => Record<string, unknown>, preview = false): Promise<Recording> {
    return recordProgram({
        stack: "toy",
        preview,
        config: {},
        program,
        // at preview the VMs' addresses are unknown; after it, each VM has its host's address
        mockState: (a) => (a.type === "test:index:Vm" ? (preview ? {} : { publicIp: addresses[a.name] }) : undefined),
    });
}

export const commands = (r: { resources: readonly RecordedResource[] }): RecordedResource[] => r.resources.filter((x) => x.type === "command:remote:Command");

/** The toy's args with each endpoint's SSH and underlay address taken from a VM. */
export function onVms(change: (args: TunnelPairArgs, vms: Record<string, Vm>) => void = () => undefined) {
    return () => {
        const vms = { doolittle: new Vm("doolittle"), calculon: new Vm("calculon") };
        const args = toyArgs();
        for (const side of ["a", "b"] as const) {
            const vm = vms[args[side].host.name as keyof typeof vms];
            args[side].host.connection.host = vm.publicIp;
            args[side].host.underlay.address = vm.publicIp;
        }
        change(args, vms);
        const t = new TunnelPair("toy", args);
        return { tag: t.tag, a: t.a, verified: t.verified };
    };
}
