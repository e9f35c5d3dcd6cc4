// `npm run bench`: figures, nothing asserted. (a) per stack, from the recorded resource graph:
// SSH sessions per host on `up` and the depth of the longest dependency chain; (b)-(e) in the
// lab (lab/bench.ts). `npm run bench -- graph|scale|throughput|apply|repair` runs one part.
import * as fs from "fs";
import * as path from "path";
import { deployStack } from "../components/program";
import { readStackFile } from "../components/stackFile";
import { recordProgram, RecordedResource } from "../replay/record";
import { benchApply, benchRepair, benchScale, benchThroughput } from "../lab/bench";
import { missingPrerequisites } from "../lab/lab";

function depth(commands: RecordedResource[]): number {
    const byUrn = new Map(commands.map((c) => [c.urn, c]));
    const memo = new Map<string, number>();
    const d = (c: RecordedResource): number => {
        if (!memo.has(c.urn)) memo.set(c.urn, 1 + Math.max(0, ...c.dependencies.filter((u) => byUrn.has(u)).map((u) => d(byUrn.get(u)!))));
        return memo.get(c.urn)!;
    };
    return Math.max(0, ...commands.map(d));
}

async function graph(): Promise<void> {
    const dir = path.join(__dirname, "..", "stacks");
    for (const file of fs
        .readdirSync(dir)
        .filter((f) => /^Pulumi\..+\.yaml$/.test(f))
        .sort()) {
        const sf = readStackFile(path.join(dir, file));
        const r = await recordProgram({ stack: sf.stack, config: sf.config, secretKeys: sf.secretKeys, program: deployStack });
        const commands = r.resources.filter((x) => x.type === "command:remote:Command");
        // a session through a jump host is also a session on the jump host
        const perHost = new Map<string, number>();
        const count = (h: string) => perHost.set(h, (perHost.get(h) ?? 0) + 1);
        for (const c of commands) {
            const conn = c.inputs.connection as { host: string; proxy?: { host: string } };
            count(conn.host);
            if (conn.proxy) count(conn.proxy.host);
        }
        const sessions = [...perHost.entries()].map(([h, n]) => `${h}=${n}`).join(" ");
        console.log(
            `graph ${sf.stack}: ${commands.length} commands, longest dependency chain ${depth(commands)}, SSH sessions per host on up (jump hops included): ${sessions}`,
        );
    }
}

async function main(): Promise<void> {
    const parts = process.argv.slice(2);
    const want = (p: string) => parts.length === 0 || parts.includes(p);
    if (want("graph")) await graph();
    const lab = ["scale", "throughput", "apply", "repair"].filter(want);
    if (lab.length === 0) return;
    const missing = missingPrerequisites();
    if (missing.length) {
        console.log(`lab benchmarks skipped: ${missing.join("; ")} (sudo ./setup --bench)`);
        return;
    }
    const log = (l: string) => console.log(l);
    if (want("scale")) await benchScale(log);
    if (want("throughput")) await benchThroughput(log);
    if (want("apply")) await benchApply(log);
    if (want("repair")) await benchRepair(log);
}

main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
});
