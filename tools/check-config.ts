// `npm run check-config -- stacks/Pulumi.toy.yaml`: validates a stack file as `pulumi preview`
// would, without Pulumi credentials or hosts; prints every problem; exits non-zero on any.
import { loadConfig, sourceOfStackFile } from "../components/config";
import { readStackFile, StackFileError } from "../components/stackFile";
import { ConfigError } from "../components/validate";

/** Every problem of one stack file, each a line "FILE: path: message"; none when it is valid. */
export function checkStackFile(file: string): string[] {
    let sf;
    try {
        sf = readStackFile(file);
    } catch (e) {
        if (e instanceof StackFileError) return [...e.problems];
        return [`${file}: ${(e as Error).message.split("\n")[0]}`];
    }
    try {
        // the credentials are the stack's own: each must be stored encrypted, as pulumi up reads them
        loadConfig(sourceOfStackFile(sf));
        return [];
    } catch (e) {
        if (e instanceof ConfigError) return e.problems.map((p) => `${file}: ${p}`);
        throw e;
    }
}

if (require.main === module) {
    const files = process.argv.slice(2);
    if (files.length === 0) {
        console.error("usage: npm run check-config -- stacks/Pulumi.<stack>.yaml ...");
        process.exit(2);
    }
    let bad = 0;
    for (const f of files) {
        const problems = checkStackFile(f);
        bad += problems.length;
        for (const p of problems) console.log(p);
        if (problems.length === 0) console.log(`${f}: ok`);
    }
    process.exitCode = bad === 0 ? 0 : 1;
}
