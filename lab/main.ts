// `npm run lab -- toy`: boots the stack's lab world, replays up, checks, replays destroy,
// verifies the hosts are restored, and reports `lab toy: N passed, M failed`.
// `npm run lab -- --world FILE --stack-file FILE`: any topology.
// `npm run lab -- --keep toy`: boots the world and keeps it, printing what the real
// `pulumi up` needs to deploy the stack into it.
// `npm run lab -- --doctor`: the doctor on Man2, each item broken on purpose.
// `npm run lab -- --upgrade toy`: hosts deployed by the version before persistence, upgraded and destroyed.
import * as path from "path";
import YAML from "yaml";
import { configKeys } from "../components/config";
import { readStackFile } from "../components/stackFile";
import { Lab } from "./lab";
import { runDoctorLab } from "./doctor";
import { runBootFaults, runFaults } from "./faults";
import { persistencePlans, runPersistence } from "./persistence";
import { runScenario, Scenario, scenarios } from "./scenario";
import { runUpgrade, upgradePlans } from "./upgrade";

function usage(): never {
    console.error(`usage: npm run lab -- [--keep|--faults|--persist|--boot-faults|--upgrade] <${Object.keys(scenarios).join("|")}>
       npm run lab -- [--keep|--faults] --world FILE --stack-file FILE
       npm run lab -- --doctor`);
    process.exit(2);
}

function parse(argv: string[]): { name: string; scenario: Scenario; keep: boolean; faults: boolean; persist: boolean; bootFaults: boolean; upgrade: boolean } {
    let bootFaults = false;
    let keep = false;
    let faults = false;
    let persist = false;
    let upgrade = false;
    let world: string | undefined;
    let stackFile: string | undefined;
    let name: string | undefined;
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--keep") keep = true;
        else if (a === "--faults") faults = true;
        else if (a === "--persist") persist = true;
        else if (a === "--boot-faults") bootFaults = true;
        else if (a === "--upgrade") upgrade = true;
        else if (a === "--world") world = argv[++i];
        else if (a === "--stack-file") stackFile = argv[++i];
        else if (!a.startsWith("-") && !name) name = a;
        else usage();
    }
    if (name && !world && !stackFile) {
        const scenario = scenarios[name];
        if (!scenario) usage();
        return { name, scenario, keep, faults, persist, bootFaults, upgrade };
    }
    if (!world || !stackFile) usage();
    // A topology of the user's own: the generic checks (idempotency, exact restore).
    return {
        name: name ?? readStackFile(stackFile).stack,
        scenario: { world: path.resolve(world), stackFile: path.resolve(stackFile), flows: [] },
        keep,
        faults,
        persist,
        bootFaults,
        upgrade,
    };
}

/** What a user with the Pulumi CLI needs to point the stack at the running lab. */
function printConnections(lab: Lab, stackFile: string): void {
    const sf = readStackFile(stackFile);
    console.log(`\nThe lab is up; Ctrl-C stops it. Each host, as root:`);
    for (const [name, h] of Object.entries(lab.hosts)) {
        if (h.managed || h.jump) console.log(`  ${name}: ssh ${lab.sshArgs(name).join(" ")}`);
    }
    console.log(`\nTo deploy stack ${sf.stack} into it with the Pulumi CLI:`);
    for (const name of Object.keys(sf.config[configKeys.hosts] as object)) {
        const h = lab.hosts[name];
        if (!h) continue;
        const p = `hosts.${name}.connection`;
        console.log(`  pulumi config set --path '${p}.host' ${h.address}`);
        console.log(`  pulumi config set --path '${p}.hostKey' '${lab.hostPublicKey}'`);
        console.log(`  pulumi config set --path '${p}.agent' false`);
        console.log(`  pulumi config set --secret --path '${p}.privateKey' < ${lab.privateKeyFile}`);
        if (h.jump) console.log(`  pulumi config set --path '${p}.proxy' ${h.jump}`);
    }
    const hosts = Object.fromEntries(
        Object.keys(sf.config[configKeys.hosts] as object).map((n) => [
            n,
            { connection: { host: lab.hosts[n]?.address, hostKey: lab.hostPublicKey, ...(lab.hosts[n]?.jump ? { proxy: lab.hosts[n].jump } : {}) } },
        ]),
    );
    console.log(`\nor, as YAML to merge into stacks/Pulumi.${sf.stack}.yaml (then set each privateKey with --secret as above):`);
    console.log(YAML.stringify({ config: { [configKeys.hosts]: hosts } }));
}

async function main(): Promise<void> {
    if (process.argv[2] === "--doctor") {
        const r = await runDoctorLab((line) => console.log(line));
        const failed = r.checks.filter((c) => !c.ok).length;
        console.log(
            `doctor in the lab: ${r.breakages} items broken; ${r.checks.length - failed} checks passed, ${failed} failed; doctor runs ${r.doctorMs.join(", ")} ms`,
        );
        process.exitCode = failed === 0 ? 0 : 1;
        return;
    }
    const { name, scenario, keep, faults, persist, bootFaults, upgrade } = parse(process.argv.slice(2));
    const t0 = Date.now();
    if (bootFaults) {
        const plan = persistencePlans[name];
        if (!plan) throw new Error(`--boot-faults: no reboot plan for ${name} (${Object.keys(persistencePlans).join(", ")})`);
        const r = await runBootFaults(name, scenario, plan.reboot, (line) => console.log(line));
        const failed = r.checks.filter((c) => !c.ok).length;
        console.log(`boot faults ${name}: ${r.cases} fault cases; ${r.checks.length - failed} checks passed, ${failed} failed (${Date.now() - t0} ms)`);
        process.exitCode = failed === 0 ? 0 : 1;
        return;
    }
    if (upgrade) {
        const plan = upgradePlans[name];
        if (!plan) throw new Error(`--upgrade: no recording of the old version for ${name} (${Object.keys(upgradePlans).join(", ")})`);
        const r = await runUpgrade(name, scenario, plan.reboot, (line) => console.log(line));
        const failed = r.checks.filter((c) => !c.ok).length;
        console.log(
            `upgrade ${name}: ${r.checks.length - failed} checks passed, ${failed} failed (${r.ms} ms in the lab, after waiting ${r.waitedMs} ms for it)`,
        );
        process.exitCode = failed === 0 ? 0 : 1;
        return;
    }
    if (persist) {
        const plan = persistencePlans[name];
        if (!plan) throw new Error(`--persist: no reboot plan for ${name} (${Object.keys(persistencePlans).join(", ")})`);
        const r = await runPersistence(name, scenario, plan.reboot, plan.reload, (line) => console.log(line), { firewalld: plan.firewalld });
        const failed = r.checks.filter((c) => !c.ok).length;
        console.log(
            `persist ${name}: ${r.checks.length - failed} checks passed, ${failed} failed; idle repair runs ${r.idleRepairMs.join(", ")} ms, the converge alone ${r.idleConvergeMs.join(", ")} ms (${Date.now() - t0} ms)`,
        );
        process.exitCode = failed === 0 ? 0 : 1;
        return;
    }
    if (faults) {
        const r = await runFaults(name, scenario, (line) => console.log(line));
        const failed = r.checks.filter((c) => !c.ok).length;
        console.log(`faults ${name}: ${r.cases} fault cases; ${r.checks.length - failed} checks passed, ${failed} failed (${Date.now() - t0} ms)`);
        process.exitCode = failed === 0 ? 0 : 1;
        return;
    }
    const report = await runScenario(
        name,
        scenario,
        (line) => console.log(line),
        keep
            ? async (lab) => {
                  printConnections(lab, scenario.stackFile);
                  await new Promise<void>((resolve) => {
                      process.once("SIGINT", resolve);
                      process.once("SIGTERM", resolve);
                  });
              }
            : undefined,
    );
    if (keep) return;
    const passed = report.checks.filter((c) => c.ok).length;
    const failed = report.checks.length - passed;
    console.log(`boot ${report.bootMs} ms; up ${report.upMs.join(", ")} ms; destroy ${report.destroyMs.join(", ")} ms; total ${Date.now() - t0} ms`);
    console.log(`lab ${name}: ${passed} passed, ${failed} failed`);
    process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
}

main().catch((e) => {
    console.error(`lab: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
});
