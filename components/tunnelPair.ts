// The Pulumi wiring, kept thin: one reconcile Command per host a pair touches.
//
// Why one Command per host and pair (see README, "Design"): every Command is a fresh SSH
// session, and the provider re-runs `create` (or `update`) on any change and `delete` only
// on destroy or replacement. A script that converges the host to the desired state and
// records what it owns in a manifest on the host makes every change an in-place update that
// never tears down a working device and never leaves an orphan; `delete` removes exactly
// what the manifest lists. `triggers` carry only what identifies the pair on its host.
//
// The args are Inputs: the pair is validated the moment its values are known. Plain args
// are checked in the constructor, before anything is registered (`pulumi preview` refuses
// them); args that hold Outputs are checked when those resolve, and every Command's inputs
// derive from that check, so a refused pair fails the update before any of its Commands is
// registered, let alone run. At preview, values not known yet leave the scripts unknown.
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { HostArgs, JumpHostArgs, TunnelPairArgs } from "./args";
import { hopOf, lanePredecessors } from "./lanes";
import { Host, Model } from "./model";
import { hasInputs, hostsOf, pairConfig, shapeProblems, withoutCredentials } from "./pairConfig";
import { ownerTag, planPair, planVerify } from "./plan";
import { commandString, renderApply, renderRemove, renderVerify } from "./render";
import { sshConnection, SshTarget, sshTargetFields } from "./ssh/connection";
import { ConfigError, credentialKeys, validateConfig } from "./validate";

export { TunnelPairArgs } from "./args";

/** What an endpoint's deployment reports. */
export interface EndpointOutputs {
    /** The host's name. */
    host: string;
    /** The tunnel device. */
    interface: pulumi.Output<string>;
    /** The device's address. */
    tunnelAddress: pulumi.Output<string>;
    /** What the last apply changed, as the script reported it; secret when any of the pair's values is. */
    report: pulumi.Output<string>;
}

/**
 * An IPIP tunnel between two Linux hosts, built over SSH: the tunnel devices, addresses,
 * routes, forwarding and firewall rules on both endpoints, and the routes of the desktop
 * clients and compute nodes behind them. `pulumi destroy` puts every host back as it was.
 */
export class TunnelPair extends pulumi.ComponentResource {
    /** The first endpoint's deployment. */
    public readonly a: EndpointOutputs;
    /** The second endpoint's deployment. */
    public readonly b: EndpointOutputs;
    /** The ownership mark on the hosts (device ifalias, firewall comments): tunnelpair:<stack>/<pair>. */
    public readonly tag: pulumi.Output<string>;
    /** The verification probe's report; undefined with `verify: false`. */
    public readonly verified?: pulumi.Output<string>;

    constructor(name: string, args: TunnelPairArgs, opts?: pulumi.ComponentResourceOptions) {
        const shape = shapeProblems(args);
        if (shape.length > 0) throw new pulumi.InputPropertiesError({ message: `TunnelPair ${name}: invalid arguments`, errors: shape });
        const stack = args.stack ?? pulumi.getStack();
        // plain args: refused here, before anything is registered
        const known = hasInputs(args) ? undefined : validatePair(name, stack, args as pulumi.Unwrap<TunnelPairArgs>);
        super("tunnelpair:index:TunnelPair", name, {}, opts);
        const model: pulumi.Output<Model> = known
            ? pulumi.output(known)
            : pulumi.output(withoutCredentials(args)).apply((v) => validatePair(name, stack, v, this));
        // log.warn's promise never rejects and the runtime waits for its log RPCs itself
        model.apply((m) => {
            for (const w of warnings(m)) void pulumi.log.warn(w, this);
        });

        // One Command per host: the two endpoints, then the clients and compute nodes behind
        // them, in planPair's order; the list is plain (host names, the lists of clients and
        // nodes), so it is known at preview whatever else is not, and so are the lanes that
        // the hosts behind one jump host wait in (lanes.ts).
        const plans = model.apply((m) => planPair(m, m.pairs[0]));
        const hosts = hostsOf(args);
        const lanes = lanePredecessors(hosts.map(({ host }) => hopOf(host.connection)));
        // The pair's probe ends b's apply, after a's (verify.sh): b waits for a, and its script
        // names a's deployment, so that any change of a runs b's apply, and the probe, again.
        const verify = args.verify !== false;
        const commands: ReturnType<typeof hostCommand>[] = [];
        hosts.forEach(({ host, path }, i) => {
            const plan = plans.apply((ps) => {
                if (ps[i].plan.host !== host.name) throw new Error(`TunnelPair ${name}: planned ${ps[i].plan.host} where ${host.name} was expected`);
                return ps[i];
            });
            const after = [lanes[i] === undefined ? undefined : commands[lanes[i]].cmd, verify && i === 1 ? commands[0].cmd : undefined];
            const probe =
                verify && i === 1
                    ? pulumi.all([model, commands[0].identity]).apply(([m, a]) => {
                          const v = planVerify(m, m.pairs[0]);
                          return v && renderVerify(v, a);
                      })
                    : undefined;
            commands.push(hostCommand(`${name}-${roleOf(path)}-${host.name}`, model, host, plan, this, opts?.dependsOn, after, probe));
        });
        const endpoint = (side: "a" | "b", i: number): EndpointOutputs => ({
            host: args[side].host.name,
            interface: model.apply((m) => m.pairs[0][side].interface),
            tunnelAddress: model.apply((m) => m.pairs[0][side].tunnelAddress),
            // the provider's stdout is never secret: this one is whenever the pair's values are
            report: pulumi.all([model, commands[i].cmd.stdout]).apply(([, out]) => out),
        });
        this.a = endpoint("a", 0);
        this.b = endpoint("b", 1);
        this.tag = pulumi.output(ownerTag(stack, name));
        // the probe's line of b's report (none under mocks, where a Command prints nothing)
        if (verify)
            this.verified = this.b.report.apply(
                (out?: string) =>
                    out &&
                    out
                        .split("\n")
                        .filter((l) => l.includes("]: verified: "))
                        .join("\n"),
            ) as pulumi.Output<string>;
        this.registerOutputs({ a: this.a, b: this.b, tag: this.tag, verified: this.verified });
    }
}

/** "a", "b", "client", "node": the role of a host, which names its Command, from where hostsOf found it. */
function roleOf(path: string): string {
    if (path === "a.host" || path === "b.host") return path[0];
    return path.includes(".clients[") ? "client" : "node";
}

/**
 * The pair's model, from resolved args; a refusal lists every problem with its field path in
 * the args (`a.tunnelAddress: 10.0.3.2 is not inside 10.0.2.0/24`). Without a resource (plain
 * args, in the constructor) it is a RunError, printed without a stack trace; with one, an
 * error of that resource.
 */
export function validatePair(name: string, stack: string, args: pulumi.Unwrap<TunnelPairArgs>, resource?: pulumi.Resource): Model {
    const { config, translate, conflicts } = pairConfig(name, args);
    let problems = conflicts;
    try {
        if (conflicts.length === 0) return validateConfig(config, { stack });
    } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        problems = e.problems.map(translate);
    }
    const message = `TunnelPair ${name}: invalid configuration:\n  ${problems.join("\n  ")}`;
    throw resource ? new pulumi.ResourceError(message, resource, true) : new pulumi.RunError(message);
}

/** What deserves a word although it is allowed: unpinned host keys, the open firewall mode. */
export function warnings(model: Model): string[] {
    const out: string[] = [];
    for (const h of Object.values(model.hosts)) {
        if (h.connection.hostKey === undefined) out.push(`${h.name}: connection.hostKey is not set: the identity of ${h.connection.host} is not verified`);
    }
    for (const p of model.pairs) {
        if (p.firewall === "open")
            out.push(`pair ${p.name}: firewall is "open": every firewall rule on ${p.a.host} and ${p.b.host} is off until destroy restores them`);
    }
    return out;
}

/** One mark per run of the program: what makes `converge: always` an update at every `pulumi up`. */
const runMark = new Date().toISOString();

/** The host's Command, and what identifies its deployment: its script and its SSH address. */
function hostCommand(
    name: string,
    model: pulumi.Output<Model>,
    args: HostArgs,
    planned: pulumi.Output<ReturnType<typeof planPair>[number]>,
    parent: pulumi.Resource,
    // the component's own dependsOn (an SSH key authorized by another resource, say), on each
    // Command that runs on a host, so that the state records it, not only the parent's order
    dependsOn: pulumi.ComponentResourceOptions["dependsOn"],
    // the Commands this one runs after: the one before it in its jump host's lane, and
    // endpoint a for b when b's apply ends with the probe
    after: (command.remote.Command | undefined)[],
    // the probe, for b (renderVerify's; undefined with verify: false)
    probe?: pulumi.Output<string | undefined>,
): { cmd: command.remote.Command; identity: pulumi.Output<string> } {
    const host = model.apply((m) => m.hosts[args.name]);
    const commandOf = (script: pulumi.Output<string>) => pulumi.all([script, host]).apply(([s, h]) => commandString(s, h.sudo));
    const apply = commandOf(pulumi.all([planned, probe]).apply(([p, v]) => renderApply(p.plan, v)));
    const waits = after.filter((c): c is command.remote.Command => c !== undefined);
    const cmd = new command.remote.Command(
        name,
        {
            connection: connectionArgs(host, args),
            create: apply,
            // converge: always: a mark of this run after the script, so the update differs at
            // every `pulumi up` and the provider runs it (a comment: the script is the same)
            update: pulumi.all([apply, model]).apply(([a, m]) => (m.pairs[0].converge === "always" ? `${a}\n# converge: always, run ${runMark}` : a)),
            delete: commandOf(planned.apply((p) => renderRemove(p.plan))),
            // What identifies the pair on its host: another machine means a new deployment.
            triggers: [planned.apply((p) => p.plan.tag), host.apply((h) => h.connection.host), host.apply((h) => h.connection.port)],
            // The provider would Setenv PULUMI_COMMAND_STDOUT, which most sshd's refuse.
            addPreviousOutputInEnv: false,
        },
        // The old deployment goes before the new one is made: both would live in the same
        // state directory if the "new" host is the old one under another address.
        // (mergeOptions adds to a dependsOn of any form: one resource, a list, an Output.)
        pulumi.mergeOptions({ parent, deleteBeforeReplace: true, dependsOn }, waits.length > 0 ? { dependsOn: waits } : undefined),
    );
    return { cmd, identity: pulumi.all([host, apply]).apply(([h, a]) => `${h.connection.host}:${h.connection.port}\n${a}`) };
}

/**
 * The provider's connection: the validated values, and the credentials as the caller gave
 * them (the model holds only stand-ins), made Pulumi secrets here and nowhere else.
 */
export function connectionArgs(host: pulumi.Output<Host>, args: HostArgs): command.types.input.remote.ConnectionArgs {
    const ssh = host.apply((h) => sshConnection(h.connection));
    const jump = args.connection.proxy;
    return {
        ...providerHop(ssh, args.connection),
        proxy:
            jump &&
            providerHop(
                ssh.apply((c) => c.proxy!),
                jump,
            ),
    };
}

/** One hop of the SSH mapping (ssh/connection.ts) as the provider's inputs: each field lifted, the credentials the caller's, secret. */
function providerHop(hop: pulumi.Output<SshTarget>, credentials: JumpHostArgs): command.types.input.remote.ProxyConnectionArgs {
    const out: Record<string, pulumi.Input<string | number | undefined>> = {};
    for (const k of sshTargetFields) {
        if (!isCredential(k)) out[k] = hop.apply((t) => t[k]);
        else if (credentials[k] !== undefined) out[k] = pulumi.secret(credentials[k]);
        else out[k] = undefined;
    }
    return out as unknown as command.types.input.remote.ProxyConnectionArgs;
}

const isCredential = (k: string): k is (typeof credentialKeys)[number] => (credentialKeys as readonly string[]).includes(k);
