// `npm run check-config -- stacks/Pulumi.toy.yaml`: validates a stack file as `pulumi preview`
// would, without Pulumi credentials or hosts; prints every problem; exits non-zero on any.
import { readStackFile } from "../components/stackFile";
import { ConfigError, validateConfig } from "../components/validate";

function check(file: string): string[] {
    let sf;
    try {
        sf = readStackFile(file);
    } catch (e) {
        return [`${file}: ${(e as Error).message.split("\n")[0]}`];
    }
    try {
        validateConfig(
            { hosts: sf.config["tunnelpair:hosts"], pairs: sf.config["tunnelpair:pairs"] },
            { stack: sf.stack, hostsAreSecret: sf.secretKeys.includes("tunnelpair:hosts") },
        );
        return [];
    } catch (e) {
        if (e instanceof ConfigError) return e.problems.map((p) => `${file}: ${p}`);
        throw e;
    }
}

const files = process.argv.slice(2);
if (files.length === 0) {
    console.error("usage: npm run check-config -- stacks/Pulumi.<stack>.yaml ...");
    process.exit(2);
}
let bad = 0;
for (const f of files) {
    const problems = check(f);
    bad += problems.length;
    for (const p of problems) console.log(p);
    if (problems.length === 0) console.log(`${f}: ok`);
}
process.exitCode = bad === 0 ? 0 : 1;
