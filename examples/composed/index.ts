// A program that composes TunnelPair with what a real deployment already has: two hosts
// another stack made (their addresses and host keys are its outputs), the admin key they were
// provisioned with, and a deploy key of the pair's own generated here (@pulumi/tls), which is
// authorized on each host before the pair uses it and withdrawn after the pair is destroyed.
// Every value the pair gets is an Output; the deploy key stays a secret throughout.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { HostArgs, TunnelPair } from "tunnelpair";

const config = new pulumi.Config();
// e.g. acme/campus-hosts/prod, exporting doolittleIp, calculonIp, doolittleHostKey, calculonHostKey
const infra = new pulumi.StackReference(config.require("infraStack"));
const adminKey = config.requireSecret("adminKey");
const deployKey = new tls.PrivateKey("deploy", { algorithm: "ED25519" });
const mark = `tunnelpair-deploy:${pulumi.getStack()}`;

interface Machine {
    readonly name: string;
    readonly address: pulumi.Output<string>;
    readonly hostKey: pulumi.Output<string>;
}
const machine = (name: string): Machine => ({
    name,
    address: infra.requireOutput(`${name}Ip`) as pulumi.Output<string>,
    hostKey: infra.requireOutput(`${name}HostKey`) as pulumi.Output<string>,
});
const machines = [machine("doolittle"), machine("calculon")];

// The deploy key's line in root's authorized_keys, marked as ours: added if absent, and on
// destroy exactly that line removed (the key arrives on stdin, which delete gets too).
const line = pulumi.interpolate`${deployKey.publicKeyOpenssh.apply((k) => k.trim())} ${mark}`;
const authorizations = machines.map(
    (m) =>
        new command.remote.Command(`authorize-${m.name}`, {
            connection: { host: m.address, user: "root", privateKey: adminKey, hostKey: m.hostKey },
            stdin: line,
            create: `set -eu; k=$(cat); f=/root/.ssh/authorized_keys; mkdir -p -m 700 /root/.ssh; touch "$f"; grep -qxF "$k" "$f" || printf '%s\\n' "$k" >>"$f"`,
            delete: `set -eu; k=$(cat); f=/root/.ssh/authorized_keys; [ -f "$f" ] || exit 0; t=$(mktemp "$f.XXXXXX"); grep -vxF "$k" "$f" >"$t" || true; chmod --reference="$f" "$t"; mv "$t" "$f"`,
            addPreviousOutputInEnv: false,
        }),
);

const host = (m: Machine): HostArgs => ({
    name: m.name,
    connection: { host: m.address, privateKey: deployKey.privateKeyOpenssh, hostKey: m.hostKey },
    underlay: { interface: "eth0", address: m.address },
});
const [doolittle, calculon] = machines;
const toy = new TunnelPair(
    "toy",
    {
        a: { host: host(doolittle), network: "10.0.0.0/30", tunnelAddress: "10.0.0.1", routes: ["10.0.2.0/24"] },
        b: { host: host(calculon), network: "10.0.0.0/30", tunnelAddress: "10.0.0.2", routes: ["10.0.1.0/24"] },
    },
    // made after the key is authorized; destroyed before it is withdrawn
    { dependsOn: authorizations },
);

export const tag = toy.tag;
export const verified = toy.verified;
export const deployPublicKey = deployKey.publicKeyOpenssh;
