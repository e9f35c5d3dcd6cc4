// The doctor: per host of a stack, one SSH session running the read-only fact script, then the
// diagnosis. Hosts are read concurrently, those behind a jump host in its lanes (at most its
// jumpSessions at once, as up and destroy open them); an unreachable host is a finding, not a
// crash.
import { hopOf, inLanes } from "../components/lanes";
import { Model } from "../components/model";
import { commandString } from "../components/render";
import { sshConnection, SshConnection } from "../components/ssh/connection";
import { ExecResult } from "../components/ssh/exec";
import { diagnose, dutiesByHost, factRequest, Finding } from "./diagnose";
import { factScript, parseFacts } from "./facts";

export interface HostReport {
    readonly host: string;
    /** What the host is for the stack: "toy a", "man2 client", ... */
    readonly roles: string[];
    readonly findings: Finding[];
}

export interface DoctorReport {
    readonly stack: string;
    readonly ok: boolean;
    readonly hosts: HostReport[];
}

export type Exec = (conn: SshConnection, command: string) => Promise<ExecResult>;

export async function runDoctor(model: Model, exec: Exec): Promise<DoctorReport> {
    const byHost = [...dutiesByHost(model)];
    const hops = byHost.map(([name]) => hopOf(model.hosts[name].connection));
    const hosts = await inLanes(hops, async (i): Promise<HostReport> => {
        const [name, duties] = byHost[i];
        const roles = duties.map((d) => `${d.pair.name} ${d.kind === "endpoint" ? d.ep.side : d.kind}`);
        const host = model.hosts[name];
        const script = factScript(factRequest(model, duties));
        const r = await exec(sshConnection(host.connection), commandString(script, host.sudo)).catch((e: Error) => ({
            code: -1,
            stdout: "",
            stderr: e.message,
            ms: 0,
        }));
        if (r.code !== 0) {
            const why = r.stderr.trim().split("\n").slice(-2).join(" | ") || `exit ${r.code}`;
            return {
                host: name,
                roles,
                findings: [{ item: "ssh", pair: duties[0].pair.name, status: "fail", detail: `cannot read ${name} (${host.connection.host}): ${why}` }],
            };
        }
        return { host: name, roles, findings: diagnose(model, name, duties, parseFacts(r.stdout)) };
    });
    return { stack: model.stack, ok: hosts.every((h) => h.findings.every((f) => f.status !== "fail")), hosts };
}

/** The report for people: per host, one line per item. */
export function formatReport(r: DoctorReport): string {
    const mark = { ok: "ok  ", fail: "FAIL", unknown: "??  " } as const;
    const lines = [`tunnelpair doctor: stack ${r.stack}`];
    for (const h of r.hosts) {
        lines.push("", `${h.host} (${h.roles.join(", ")})`);
        for (const f of h.findings) lines.push(`  ${mark[f.status]} ${f.item.padEnd(10)} ${f.pair}: ${f.detail}`);
    }
    const fails = r.hosts.flatMap((h) => h.findings.filter((f) => f.status === "fail").map((f) => `${h.host} ${f.item}`));
    lines.push("", fails.length ? `${fails.length} problems: ${fails.join(", ")}` : "no problems found");
    return lines.join("\n");
}
