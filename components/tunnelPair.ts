// The Pulumi wiring, kept thin: one reconcile Command per host a pair touches.
//
// Why one Command per host and pair (see README, "Design"): every Command is a fresh SSH
// session, and the provider re-runs `create` (or `update`) on any change and `delete` only
// on destroy or replacement. A script that converges the host to the desired state and
// records what it owns in a manifest on the host makes every change an in-place update that
// never tears down a working device and never leaves an orphan; `delete` removes exactly
// what the manifest lists. `triggers` carry only what identifies the pair on its host.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { Host, Model } from "./model";
import { HostPlan, ownerTag, planPair, planVerify } from "./plan";
import { commandString, renderApply, renderRemove, renderVerify } from "./render";

export interface TunnelPairArgs {
    /**
     * The validated stack (`validateConfig`). Plain values, not Inputs: the scripts are
     * rendered, and the configuration refused, at preview, before any host is touched.
     */
    readonly model: Model;
    /** The pair's name in `model.pairs`. */
    readonly pair: string;
}

export interface EndpointOutputs {
    readonly host: string;
    readonly interface: string;
    readonly tunnelAddress: string;
    /** What the last apply changed, as the script reported it. */
    readonly report: pulumi.Output<string>;
}

export class TunnelPair extends pulumi.ComponentResource {
    public readonly a: EndpointOutputs;
    public readonly b: EndpointOutputs;
    /** The ownership mark on the hosts: device ifalias and firewall comments. */
    public readonly tag: string;
    /** The verification probe's report; undefined with `verify: false`. */
    public readonly verified?: pulumi.Output<string>;

    constructor(name: string, args: TunnelPairArgs, opts?: pulumi.ComponentResourceOptions) {
        super("tunnelpair:index:TunnelPair", name, {}, opts);
        const pair = args.model.pairs.find((p) => p.name === args.pair);
        if (!pair) throw new Error(`TunnelPair ${name}: pair ${JSON.stringify(args.pair)} is not in the model`);
        // One Command per host: the two endpoints, then the clients and compute nodes behind them.
        const commands = planPair(args.model, pair).map(({ role, plan }) => ({ role, ...hostCommand(`${name}-${role}-${plan.host}`, args.model, plan, this) }));
        const endpoint = (side: "a" | "b"): EndpointOutputs => {
            const ep = pair[side];
            const cmd = commands.find((c) => c.role === side)!.cmd;
            return { host: ep.host, interface: ep.interface, tunnelAddress: ep.tunnelAddress, report: cmd.stdout };
        };
        this.a = endpoint("a");
        this.b = endpoint("b");
        this.tag = ownerTag(args.model.stack, pair.name);
        const v = planVerify(args.model, pair);
        if (v) {
            // After both endpoints, on a's host; nothing to undo, so no delete.
            const ends = (["a", "b"] as const).map((side) => commands.find((c) => c.role === side)!);
            const host = args.model.hosts[v.host];
            const probe = new command.remote.Command(
                `${name}-verify`,
                {
                    connection: connectionArgs(args.model, host),
                    create: commandString(renderVerify(v, ends.map((e) => e.identity)), host.sudo),
                    addPreviousOutputInEnv: false,
                },
                { parent: this, dependsOn: ends.map((e) => e.cmd) },
            );
            this.verified = probe.stdout;
        }
        this.registerOutputs({ a: this.a, b: this.b, tag: this.tag, verified: this.verified });
    }
}

/** The host's Command, and what identifies its deployment: its script and its SSH address. */
function hostCommand(name: string, model: Model, plan: HostPlan, parent: pulumi.Resource): { cmd: command.remote.Command; identity: string } {
    const host = model.hosts[plan.host];
    const apply = commandString(renderApply(plan), host.sudo);
    const cmd = new command.remote.Command(
        name,
        {
            connection: connectionArgs(model, host),
            create: apply,
            update: apply,
            delete: commandString(renderRemove(plan), host.sudo),
            // What identifies the pair on its host: another machine means a new deployment.
            triggers: [plan.tag, host.connection.host, host.connection.port],
            // The provider would Setenv PULUMI_COMMAND_STDOUT, which most sshd's refuse.
            addPreviousOutputInEnv: false,
        },
        // The old deployment goes before the new one is made: both would live in the same
        // state directory if the "new" host is the old one under another address.
        { parent, deleteBeforeReplace: true },
    );
    return { cmd, identity: `${host.connection.host}:${host.connection.port}\n${apply}` };
}

/** The provider's connection; credentials become Pulumi secrets here and nowhere else. */
export function connectionArgs(model: Model, host: Host): command.types.input.remote.ConnectionArgs {
    const c = host.connection;
    const proxy = c.proxy === undefined ? undefined : model.hosts[c.proxy];
    return {
        ...sshTarget(host),
        proxy: proxy && sshTarget(proxy),
    };
}

function sshTarget(host: Host): command.types.input.remote.ProxyConnectionArgs {
    const c = host.connection;
    const secret = (v: string | undefined) => (v === undefined ? undefined : pulumi.secret(v));
    return {
        host: c.host,
        port: c.port,
        user: c.user,
        privateKey: secret(c.privateKey),
        privateKeyPassword: secret(c.privateKeyPassword),
        password: secret(c.password),
        hostKey: c.hostKey,
        dialErrorLimit: c.dialErrorLimit,
        perDialTimeout: c.perDialTimeout,
    };
}

