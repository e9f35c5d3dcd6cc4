// Boots a lab world and prints how to reach each host:
//   npx ts-node lab/cli.ts --world lab/worlds/toy.yaml [--keep]
// With --keep the lab runs until Ctrl-C (or SIGTERM); without it, it is stopped at once
// (a boot check).
import { startLab } from "./lab";

function usage(message: string): never {
    console.error(`${message}\nusage: ts-node lab/cli.ts --world <file.yaml> [--keep]`);
    process.exit(2);
}

async function main(): Promise<void> {
    const args = process.argv.slice(2);
    let world: string | undefined;
    let keep = false;
    for (let i = 0; i < args.length; i++) {
        if (args[i] === "--world") world = args[++i];
        else if (args[i] === "--keep") keep = true;
        else usage(`unknown argument ${args[i]}`);
    }
    if (!world) usage("--world is required");

    const lab = await startLab(world, { keep });
    console.log(`lab ${lab.world.name} ready in ${lab.bootMs} ms (${lab.dir})`);
    for (const h of Object.values(lab.hosts)) {
        const how = h.managed
            ? `ssh -i ${lab.privateKeyFile} -o UserKnownHostsFile=${lab.knownHostsFile} root@${h.address}`
            : h.jump
              ? `ssh -F ${lab.sshConfigFile} ${h.name}    # ${h.address} via ${h.jump}`
              : `(no management interface, no jump host: ${h.address} is reachable only inside the lab)`;
        console.log(`  ${h.name.padEnd(10)} ${how}`);
    }
    const stop = async () => {
        const t = Date.now();
        await lab.stop();
        console.log(`lab stopped in ${Date.now() - t} ms`);
        process.exit(0);
    };
    if (!keep) return stop();
    console.log(`  or: ssh -F ${lab.sshConfigFile} <host>\nCtrl-C stops the lab.`);
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
}

main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
});
