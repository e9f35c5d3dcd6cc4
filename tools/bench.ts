// `npm run bench`: figures, nothing asserted. (a) per stack, from the recorded resource graph:
// SSH sessions per host on `up` and the depth of the longest dependency chain.
import * as fs from "fs";
import * as path from "path";
import { deployStack } from "../components/program";
import { readStackFile } from "../components/stackFile";
import { recordProgram, RecordedResource } from "../replay/record";

function depth(commands: RecordedResource[]): number {
    const byUrn = new Map(commands.map((c) => [c.urn, c]));
    const memo = new Map<string, number>();
    const d = (c: RecordedResource): number => {
        if (!memo.has(c.urn)) memo.set(c.urn, 1 + Math.max(0, ...c.dependencies.filter((u) => byUrn.has(u)).map((u) => d(byUrn.get(u)!))));
        return memo.get(c.urn)!;
    };
    return Math.max(0, ...commands.map(d));
}

async function main(): Promise<void> {
    const dir = path.join(__dirname, "..", "stacks");
    for (const file of fs.readdirSync(dir).filter((f) => /^Pulumi\..+\.yaml$/.test(f)).sort()) {
        const sf = readStackFile(path.join(dir, file));
        const r = await recordProgram({ stack: sf.stack, config: sf.config, secretKeys: sf.secretKeys, program: deployStack });
        const commands = r.resources.filter((x) => x.type === "command:remote:Command");
        const perHost = new Map<string, number>();
        for (const c of commands) {
            const host = (c.inputs.connection as { host: string }).host;
            perHost.set(host, (perHost.get(host) ?? 0) + 1);
        }
        const sessions = [...perHost.entries()].map(([h, n]) => `${h}=${n}`).join(" ");
        console.log(`graph ${sf.stack}: ${commands.length} commands, longest dependency chain ${depth(commands)}, SSH sessions per host on up: ${sessions}`);
    }
}

main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
});
