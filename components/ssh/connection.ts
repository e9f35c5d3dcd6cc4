// The one mapping from a host's validated connection (model.ts) to the SSH client's options:
// the command provider's `connection` (its ProxyConnectionArgs, with the jump host as
// `proxy`), which the component hands the provider and the replay, the lab and the doctor
// hand the OpenSSH runner (exec.ts). Pure: no Pulumi, no I/O.
import { Connection } from "../model";

/** One SSH hop as the provider's connection takes it; credentials are secrets wherever they go. */
export interface SshTarget {
    readonly host: string;
    readonly port?: number;
    readonly user?: string;
    readonly privateKey?: string;
    readonly privateKeyPassword?: string;
    readonly password?: string;
    readonly hostKey?: string;
    readonly dialErrorLimit?: number;
    readonly perDialTimeout?: number;
}

/** A host's SSH connection: the target and, for a host behind one, its jump host. */
export interface SshConnection extends SshTarget {
    readonly proxy?: SshTarget;
}

/**
 * The fields of a hop, in the provider's order. `agent` is not one: the provider (and ssh)
 * fall back to the deployer's agent (SSH_AUTH_SOCK) by themselves when no key or password is
 * given; `proxyName` and `jumpSessions` (the bound of the lanes through a jump host,
 * lanes.ts) are the model's, not the client's.
 */
export const sshTargetFields = [
    "host",
    "port",
    "user",
    "privateKey",
    "privateKeyPassword",
    "password",
    "hostKey",
    "dialErrorLimit",
    "perDialTimeout",
] as const satisfies readonly (keyof SshTarget)[];

function target(c: Connection): SshTarget {
    const out: Record<string, unknown> = {};
    for (const k of sshTargetFields) if (c[k] !== undefined) out[k] = c[k];
    return out as unknown as SshTarget;
}

/** The SSH client's options for a connection, its jump host's included. */
export function sshConnection(c: Connection): SshConnection {
    return c.proxy === undefined ? target(c) : { ...target(c), proxy: target(c.proxy) };
}
