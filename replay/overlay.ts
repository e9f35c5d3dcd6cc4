// The stack file as written, but for the connection settings: those point at the lab's
// management addresses and lab keys (compute nodes through their jump host).
import { ConfigSource, configKeys, sourceOfStackFile, withValues } from "../components/config";
import { StackFile } from "../components/stackFile";

export interface LabTarget {
    readonly hosts: Record<string, { address: string; port: number; jump?: string }>;
    readonly privateKey: string;
    readonly hostPublicKey: string;
}

export function overlayConnections(sf: StackFile, lab: LabTarget): ConfigSource {
    const hosts = JSON.parse(JSON.stringify(sf.config[configKeys.hosts] ?? {})) as Record<string, { connection?: Record<string, unknown> }>;
    for (const [name, h] of Object.entries(hosts)) {
        const target = lab.hosts[name];
        if (!target) throw new Error(`stack ${sf.stack}: host ${name} is not in the lab world`);
        // what is not about where the host is stays as written: the lanes and the dial loop
        const kept = Object.fromEntries(Object.entries(h.connection ?? {}).filter(([k]) => ["jumpSessions", "dialErrorLimit", "perDialTimeout"].includes(k)));
        h.connection = {
            ...kept,
            host: target.address,
            port: target.port,
            user: "root",
            privateKey: lab.privateKey,
            hostKey: lab.hostPublicKey,
            ...(target.jump ? { proxy: target.jump } : {}),
        };
    }
    return {
        ...withValues(sourceOfStackFile(sf), { [configKeys.hosts]: hosts }),
        // the lab key is a credential like any other: Pulumi would hold it as a secret
        secretKeys: [...new Set([...sf.secretKeys, configKeys.hosts])],
        // and where it is, the stack file's encrypted values are no longer
        securePaths: undefined,
    };
}
