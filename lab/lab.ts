// Boots a lab world in one user-mode-linux kernel and stops it without leaving anything
// behind. Each lab host is a network namespace (plus mount and UTS namespaces) inside that
// kernel, with its own sshd; the machine reaches them over a management TAP, 198.18.0.1/24.
//
// One lab at a time per machine: the TAP name and the kernel's umid are fixed. startLab waits
// for another process's lab to end (a lock), then cleans up whatever a dead one left.
//
// What guarantees that nothing is left (processes, TAP, temp dir):
// - the kernel's console input is a FIFO whose only writer is this process: EOF (stop(), or
//   our death) makes the lab's init power off at once;
// - run-kernel.sh supervises the kernel; however the kernel ends, it kills the kernel's
//   process group, removes the TAP if it is still there and, once we are gone, the lab dir;
//   it gets SIGTERM when we die (pdeathsig) and then stops the kernel the hard way;
// - the TAP is created by the kernel itself, non-persistent: it vanishes with the kernel;
// - init powers off after lifetimeSeconds whatever happens (a backstop), unless keep;
// - 'exit', SIGINT and SIGTERM handlers here stop the supervisor too;
// - startLab removes what a lab killed beyond all that (kill -9 of everything) left;
// - every wait is bounded.
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { dialFailed, ExecResult, runSsh } from "../components/ssh/exec";
import { loadWorld, mgmt, mgmtAddress, renderWorld, World } from "./world";

export const tapName = "labtap0";
const umid = "tunnelpair-lab";
const dirPrefix = "tunnelpair-lab-";

export interface LabHost {
    name: string;
    /** Management address, or for management: false hosts the first interface address. */
    address: string;
    port: number;
    /** Whether the host has a management interface (the machine reaches it directly). */
    managed: boolean;
    /** For hosts reached through a jump host: its name. */
    jump?: string;
}

/** What a command on a lab host gave (its output as written, not trimmed). */
export type { ExecResult };

export interface Lab {
    world: World;
    hosts: Record<string, LabHost>;
    /** The client's private key (OpenSSH format), accepted for root by every lab sshd. */
    privateKey: string;
    privateKeyFile: string;
    /** "ssh-ed25519 AAAA...": the host key all lab sshd's share. */
    hostPublicKey: string;
    knownHostsFile: string;
    /** ssh_config with an alias per host (ProxyJump set for jump hosts). */
    sshConfigFile: string;
    /** Milliseconds from starting the kernel to every host ready. */
    bootMs: number;
    dir: string;
    /** argv for ssh (without "ssh" itself) reaching `host`; append a command if wanted. */
    sshArgs(host: string): string[];
    /** Runs `script` on `host` as root over a fresh SSH connection without a PTY (like pulumi-command). */
    exec(host: string, script: string, opts?: { timeoutMs?: number; stdin?: string }): Promise<ExecResult>;
    /** Powers the lab off and waits until nothing of it is left; idempotent. */
    stop(): Promise<void>;
}

export interface StartOptions {
    /** Run until stop() (or until this process ends) with no lifetime backstop; for the CLI. */
    keep?: boolean;
    /** Backstop: init powers the lab off after this long, whatever happens. Default 1800 s; ignored with keep. */
    lifetimeSeconds?: number;
    /** How long to wait for every host to be ready. Default 180 s. */
    readyTimeoutMs?: number;
    /** How long to wait for another process's lab to end (one lab at a time). Default 600 s. */
    waitForOtherLabMs?: number;
    /** The lab kernel's memory. Default 256 MiB; a world of dozens of hosts with a session each needs more. */
    memoryMiB?: number;
}

/** The running kernel as this process holds it. */
interface Kernel {
    supervisor: ChildProcess;
    /** Write end of the kernel's console FIFO; closing it is the "power off" request. */
    consoleFd: number;
    exited: Promise<void>;
    dir: string;
    /** Holds the machine's lab lock (see lockMachine). */
    lock: ChildProcess;
}

const here = __dirname;
/**
 * Environment of every process in the lab (kernel command line -> init -> all; sshd's
 * SetEnv -> sessions): glibc and OpenSSL must not use AVX/AVX2/AVX-512, whose register state
 * the lab kernel cannot keep on CPUs that need no-xstate.pl (see there). Without this, insmod
 * fails and `sort` silently returns wrong output inside the lab.
 */
const guestEnv = {
    GLIBC_TUNABLES: "glibc.cpu.hwcaps=-AVX,-AVX2,-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD,-AVX_Fast_Unaligned_Load",
    OPENSSL_ia32cap: "~0x1000000000000000:0", // clear AVX (CPUID.1:ECX bit 28) and every CPUID.7 feature
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Whether `p` settles within `ms` (the timer does not keep the process alive). */
const within = (p: Promise<unknown>, ms: number) =>
    new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), ms);
        void p.then(() => (clearTimeout(t), resolve(true)));
    });
const cmdline = (pid: number | string) => {
    try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    } catch {
        return [];
    }
};
const read = (file: string) => {
    try {
        return fs.readFileSync(file, "utf8");
    } catch {
        return "";
    }
};
/** The last lines of a log, without kernel stack dumps. */
const tail = (file: string, lines = 30) =>
    read(file)
        .trimEnd()
        .split("\n")
        .filter((l) => !/^\s*(\[<|Stack:|Call Trace:|[0-9a-f]{8}( [0-9a-f]{8})+\s*$)/.test(l))
        .slice(-lines)
        .join("\n") || "(none)";
const tapExists = () => fs.existsSync(`/sys/class/net/${tapName}`);
const hasExited = (k: Kernel) => k.supervisor.exitCode !== null || k.supervisor.signalCode !== null;
const killGroup = (pgid: number) => {
    try {
        if (pgid > 0) process.kill(-pgid, "SIGKILL");
    } catch {
        /* gone */
    }
};
/** Where the machine's ssh connects: the management address, else the first interface address. */
const addressOf = (world: World, host: string) =>
    mgmtAddress(world, host) ??
    Object.values(world.hosts[host].interfaces)
        .find((i) => i.addresses.length)
        ?.addresses[0].split("/")[0] ??
    "";

/** What this machine lacks to run a lab (empty: nothing). */
export function missingPrerequisites(): string[] {
    const missing: string[] = [];
    if (process.getuid?.() !== 0) missing.push("root (the lab creates a TAP device and network namespaces)");
    const needs: [string, string][] = [
        ["/usr/bin/linux.uml", "user-mode-linux"],
        ["/usr/lib/uml/modules", "user-mode-linux (kernel modules)"],
        ["/dev/net/tun", "the tun device"],
        ["/usr/sbin/sshd", "openssh-server"],
        ["/usr/bin/ssh", "openssh-client"],
        ["/usr/bin/ssh-keygen", "openssh-client"],
        ["/usr/sbin/iptables-legacy", "iptables"],
        ["/usr/sbin/ip", "iproute2"],
        ["/usr/sbin/modprobe", "kmod"],
        ["/usr/bin/setpriv", "util-linux"],
        ["/usr/bin/unshare", "util-linux"],
        ["/usr/bin/flock", "util-linux"],
        ["/usr/bin/perl", "perl-base"],
    ];
    for (const [file, what] of needs) if (!fs.existsSync(file)) missing.push(`${what} (${file})`);
    return missing;
}

function checkMachine(): void {
    const missing = missingPrerequisites();
    if (missing.length) throw new Error(`the lab needs:\n  ${missing.join("\n  ")}`);
    // Our management /24 must be ours alone on this machine.
    const addrs = execFileSync("ip", ["-o", "-4", "addr", "show"], { encoding: "utf8" });
    const clash = addrs.split("\n").find((l) => l.includes(` ${mgmt.prefix}.`) && !l.includes(` ${tapName} `));
    if (clash) throw new Error(`${mgmt.cidr} is already in use on this machine: ${clash.trim()}`);
}

/**
 * One lab at a time on this machine (fixed TAP name and umid): waits for the lab of any other
 * process to end. The lock is flock(1) on the temp directory itself (so no lock file is left
 * behind), held by a child that lives until we close its stdin or die.
 */
async function lockMachine(waitMs: number): Promise<ChildProcess> {
    if (running.size) throw new Error("this process already runs a lab: one lab at a time");
    const args = ["--pdeathsig", "KILL", "flock", "-w", String(Math.ceil(waitMs / 1000)), os.tmpdir(), "sh", "-c", "echo locked; exec cat >/dev/null"];
    const holder = spawn("setpriv", args, { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    holder.stderr.on("data", (d) => (stderr += d));
    const exitCode = await new Promise<number | null>((resolve) => {
        holder.stdout.once("data", () => resolve(null));
        holder.once("exit", (code) => resolve(code ?? -1));
    });
    if (exitCode === 1) throw new Error(`another lab kept running for ${waitMs} ms (flock ${os.tmpdir()}); one lab at a time`);
    if (exitCode !== null) throw new Error(`flock ${os.tmpdir()} failed (exit ${exitCode}): ${stderr}`);
    return holder;
}

/** Kills and removes what earlier labs left (we hold the lock: every lab dir is stale). */
function cleanStale(): void {
    const tmp = os.tmpdir();
    for (const name of fs.readdirSync(tmp).filter((n) => n.startsWith(dirPrefix))) {
        const dir = path.join(tmp, name);
        try {
            const owner = JSON.parse(fs.readFileSync(path.join(dir, "owner"), "utf8")) as { supervisor: number };
            if (cmdline(owner.supervisor).some((a) => a.endsWith("run-kernel.sh"))) killGroup(owner.supervisor);
        } catch {
            /* no owner file: nothing was started */
        }
        fs.rmSync(dir, { recursive: true, force: true });
    }
    // Any kernel with our umid (whose supervisor is gone) and its helpers.
    for (const pid of fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
        const argv = cmdline(pid);
        if (argv.some((a) => a.endsWith("linux.uml")) && argv.includes(`umid=${umid}`)) {
            killGroup(Number(read(`/proc/${pid}/stat`).split(") ")[1]?.split(" ")[2])); // field 5: pgrp
        }
    }
    if (tapExists()) spawnSync("ip", ["link", "del", tapName]); // e.g. a persistent one left by hand-made labs
}

// Labs of this process, for the exit and signal handlers.
const running = new Set<Kernel>();
let handlersInstalled = false;
function installHandlers(): void {
    if (handlersInstalled) return;
    handlersInstalled = true;
    // Synchronous, as 'exit' requires: a live supervisor is told to stop (it removes the lab
    // dir itself once we are gone); the dir of a kernel that already ended is removed here.
    const terminate = () =>
        running.forEach((k) => {
            if (!hasExited(k)) k.supervisor.kill("SIGTERM");
            else fs.rmSync(k.dir, { recursive: true, force: true });
        });
    process.on("exit", terminate);
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
        const handler = () => {
            terminate();
            // Only ours: behave as if there were none (die by the signal). Else the others decide.
            if (process.listenerCount(sig) === 1) {
                process.removeListener(sig, handler);
                process.kill(process.pid, sig);
            }
        };
        process.on(sig, handler);
    }
}

function writeFiles(dir: string, world: World): { hostPublicKey: string; privateKey: string } {
    for (const d of ["keys", "log", "run", "world", "uml"]) fs.mkdirSync(path.join(dir, d));
    const keys = path.join(dir, "keys");
    for (const k of ["host", "client"]) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `tunnelpair-lab-${k}`, "-f", path.join(keys, k)]);
    const hostPublicKey = fs.readFileSync(path.join(keys, "host.pub"), "utf8").split(" ").slice(0, 2).join(" ");
    fs.copyFileSync(path.join(keys, "client.pub"), path.join(keys, "authorized_keys"));

    const hosts = Object.keys(world.hosts);
    fs.writeFileSync(path.join(keys, "known_hosts"), `${hosts.map((h) => addressOf(world, h)).join(",")} ${hostPublicKey}\n`);
    // Like a Debian host where it matters to the product: key-only root login, AcceptEnv
    // LANG LC_*, sftp. StrictModes no: the keys live in the lab dir, not in ~/.ssh.
    fs.writeFileSync(
        path.join(dir, "sshd_config"),
        [
            "HostKey /lab/keys/host",
            "AuthorizedKeysFile /lab/keys/authorized_keys",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            // not the post-quantum hybrid: a tenth of a session's time in the lab, and the provider's Go client offers curve25519 too
            "KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org",
            "AddressFamily inet",
            "PrintMotd no",
            "PrintLastLog no",
            "AcceptEnv LANG LC_*",
            `SetEnv ${Object.entries(guestEnv)
                .map(([k, v]) => `${k}=${v}`)
                .join(" ")}`,
            "Subsystem sftp /usr/lib/openssh/sftp-server",
            "",
        ].join("\n"),
    );
    const sshConfig = [
        "Host *",
        "  User root",
        `  IdentityFile ${path.join(keys, "client")}`,
        "  IdentitiesOnly yes",
        `  UserKnownHostsFile ${path.join(keys, "known_hosts")}`,
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  BatchMode yes",
        "  ConnectTimeout 20",
        "  ServerAliveInterval 10",
        "  ControlMaster no",
        // Without the TAP, 198.18.0.x would be routed off the machine: fail instead.
        `  BindInterface ${tapName}`,
        "  LogLevel ERROR",
    ];
    for (const h of hosts) {
        const jump = world.hosts[h].jump;
        sshConfig.push(`Host ${h}`, `  HostName ${addressOf(world, h)}`, ...(jump ? [`  ProxyJump ${jump}`] : []));
    }
    fs.writeFileSync(path.join(dir, "ssh_config"), sshConfig.join("\n") + "\n");
    for (const [file, text] of Object.entries(renderWorld(world))) fs.writeFileSync(path.join(dir, "world", file), text);
    // init and host scripts are copied: the kernel's init= path must not contain spaces, and the
    // lab must not depend on the checkout's file modes.
    for (const f of ["init.sh", "host.sh"]) fs.copyFileSync(path.join(here, f), path.join(dir, f));
    fs.chmodSync(path.join(dir, "init.sh"), 0o755);
    // The kernel's own module loading (`ip link add type ipip`, iptables -j REJECT) runs
    // modprobe with a fixed environment; init points kernel.modprobe at this wrapper.
    const env = Object.entries(guestEnv)
        .map(([k, v]) => `${k}='${v}'`)
        .join(" ");
    fs.writeFileSync(path.join(dir, "modprobe"), `#!/bin/sh\nexport ${env}\nexec /usr/sbin/modprobe "$@"\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "failed"), "");
    fs.writeFileSync(path.join(dir, "owner"), JSON.stringify({ node: process.pid, supervisor: 0 })); // run-kernel.sh checks it
    return { hostPublicKey, privateKey: fs.readFileSync(path.join(keys, "client"), "utf8") };
}

/**
 * Starts run-kernel.sh with the kernel's console input on a FIFO whose write end we keep.
 * (Not a 'pipe' stdio: Node makes that a socketpair, and UML never notices its EOF.)
 */
function spawnKernel(dir: string, kernelArgs: string[], lock: ChildProcess): Kernel {
    const fifo = path.join(dir, "console.fifo");
    execFileSync("mkfifo", ["-m", "600", fifo]);
    const readFd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK); // does not wait for a writer
    const consoleFd = fs.openSync(fifo, fs.constants.O_WRONLY);
    const logFd = fs.openSync(path.join(dir, "log", "supervisor.log"), "w");
    const supervisor = spawn("setpriv", ["--pdeathsig", "TERM", "sh", path.join(here, "run-kernel.sh"), dir, tapName, "linux.uml", ...kernelArgs], {
        detached: true, // a session of its own: a Ctrl-C meant for us does not hit the kernel first
        stdio: [readFd, "ignore", logFd],
    });
    fs.closeSync(readFd);
    fs.closeSync(logFd);
    const exited = new Promise<void>((resolve) => supervisor.once("exit", () => resolve()));
    fs.writeFileSync(path.join(dir, "owner"), JSON.stringify({ node: process.pid, supervisor: supervisor.pid }));
    const kernel = { supervisor, consoleFd, exited, dir, lock };
    running.add(kernel);
    installHandlers();
    return kernel;
}

/** Boots a world: a world file, or a world already loaded (e.g. one with an interface changed). */
export async function startLab(worldOrFile: string | World, opts: StartOptions = {}): Promise<Lab> {
    const world = typeof worldOrFile === "string" ? loadWorld(worldOrFile) : worldOrFile;
    checkMachine();
    const lock = await lockMachine(opts.waitForOtherLabMs ?? 600_000);
    let dir = "";
    let kernel: Kernel | undefined;
    try {
        cleanStale();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), dirPrefix));
        if (/\s/.test(dir)) throw new Error(`lab dir ${dir} contains whitespace; set TMPDIR to a plain path`);
        const { hostPublicKey, privateKey } = writeFiles(dir, world);
        const lifetime = opts.keep ? 0 : Math.ceil(opts.lifetimeSeconds ?? 1800);
        // Fast boot: quiet console, no legacy ptys, no raid6 benchmark (2.8 s -> 0.5 s).
        // ipv6.disable_ipv6: keep IPv6 chatter (DAD, router solicitations) off the lab and the TAP.
        const kernelArgs = [
            `mem=${opts.memoryMiB ?? 256}M`,
            "root=/dev/root",
            "rootfstype=hostfs",
            "rootflags=/",
            "ro",
            `init=${dir}/init.sh`,
            `lab=${dir}`,
            `lab.lifetime=${lifetime}`,
            "con=null",
            "con0=fd:0,fd:1",
            `umid=${umid}`,
            `uml_dir=${dir}/uml`,
            "quiet",
            "pty.legacy_count=0",
            "initcall_blacklist=raid6_select_algo",
            "ipv6.disable_ipv6=1",
            // UML's tuntap driver creates the TAP, non-persistent, when init brings the lab
            // kernel's eth0 up. (The vector driver's vec0:transport=tap works only with a TAP
            // made and brought up beforehand: on one it creates itself, nothing reaches the lab.)
            `eth0=tuntap,${tapName}`,
            ...Object.entries(guestEnv).map(([k, v]) => `${k}=${v}`), // no dot in the name: init's environment
        ];
        const t0 = Date.now();
        const k = (kernel = spawnKernel(dir, kernelArgs, lock));

        const timeout = opts.readyTimeoutMs ?? 180_000;
        // `ip -b` names the failing line by number only: add the command itself.
        const failed = () =>
            tail(path.join(dir, "failed")).replace(/Command failed \/lab\/world\/([\w.-]+):(\d+)/g, (m, file: string, n: string) => {
                return `${m} ("${read(path.join(dir, "world", file)).split("\n")[Number(n) - 1]}")`;
            });
        const failBoot = (why: string) =>
            new Error(
                `lab ${world.name} did not boot: ${why}\n--- failed:\n${failed()}\n` +
                    `--- log/init.log:\n${tail(path.join(dir, "log", "init.log"))}\n--- log/console.log:\n${tail(path.join(dir, "log", "console.log"), 15)}`,
            );
        let tapReady = !Object.values(world.hosts).some((h) => h.management);
        const ready = () => read(path.join(dir, "ready")).trim(); // "" until init has written it
        while (!ready()) {
            if (hasExited(k)) throw failBoot("the kernel exited");
            if (Date.now() - t0 > timeout) throw failBoot(`not ready after ${timeout} ms`);
            // The kernel creates the TAP when init brings its eth0 up; we give it our address.
            if (!tapReady && tapExists()) {
                execFileSync("ip", ["-b", "-"], { input: `addr add ${mgmt.hostAddress}/24 dev ${tapName}\nlink set ${tapName} up\n` });
                tapReady = true;
            }
            await sleep(25);
        }
        const bootMs = Date.now() - t0;
        if (ready() !== "ok") throw failBoot("setup failed");
        if (!tapReady) throw failBoot(`the kernel did not create ${tapName}`);

        const hosts: Record<string, LabHost> = {};
        for (const [name, h] of Object.entries(world.hosts)) {
            hosts[name] = { name, address: addressOf(world, name), port: 22, managed: h.management, jump: h.jump };
        }
        const sshConfigFile = path.join(dir, "ssh_config");
        const sshArgs = (host: string): string[] => {
            const h = world.hosts[host];
            if (!h) throw new Error(`lab ${world.name} has no host ${host}`);
            if (!h.management && !h.jump) throw new Error(`lab host ${host} has no management interface and no jump host: the machine cannot reach it`);
            if (!tapExists()) throw new Error(`lab ${world.name} is not running (no ${tapName})`);
            return ["-F", sshConfigFile, "-T", host];
        };
        let stopping: Promise<void> | undefined;
        return {
            world,
            hosts,
            privateKey,
            hostPublicKey,
            bootMs,
            dir,
            sshConfigFile,
            privateKeyFile: path.join(dir, "keys", "client"),
            knownHostsFile: path.join(dir, "keys", "known_hosts"),
            sshArgs,
            exec: (host, script, o = {}) => labSsh(sshArgs(host), script, o.timeoutMs ?? 60_000, o.stdin, host),
            stop: () => (stopping ??= stopKernel(k)),
        };
    } catch (e) {
        if (kernel) await stopKernel(kernel);
        else {
            if (dir) fs.rmSync(dir, { recursive: true, force: true });
            lock.stdin!.end();
        }
        throw e;
    }
}

/**
 * The lab's own access to a host (its ssh_config, its key), not a stack's connection; a timeout
 * is an error. A dial that failed before anything ran is tried twice more: on a loaded machine
 * the lab's one CPU has been slow enough for "Connection timed out during banner exchange".
 */
async function labSsh(args: string[], script: string, timeoutMs: number, stdin: string | undefined, host: string): Promise<ExecResult> {
    for (let dial = 0; ; dial++) {
        const r = await runSsh([...args, script], { stdin, timeoutMs });
        if (r.timedOut) throw new Error(`ssh ${host} timed out after ${timeoutMs} ms: ${script}\n${r.stderr}`);
        if (!dialFailed(r) || dial === 2) return r;
        await sleep(500);
    }
}

/**
 * Close the console (init powers off, the supervisor cleans up, ~0.5 s); if that takes too
 * long, SIGTERM the supervisor, then SIGKILL both process groups. Then make sure.
 */
async function stopKernel(k: Kernel): Promise<void> {
    fs.closeSync(k.consoleFd);
    const pid = k.supervisor.pid ?? 0;
    if (!(await within(k.exited, 15_000))) {
        k.supervisor.kill("SIGTERM"); // it TERMs the kernel, then KILLs its group
        if (!(await within(k.exited, 10_000))) {
            killGroup(Number(read(path.join(k.dir, "uml", umid, "pid"))));
            killGroup(pid);
            await within(k.exited, 5_000);
        }
    }
    running.delete(k);
    if (tapExists()) spawnSync("ip", ["link", "del", tapName]);
    if (process.env.TUNNELPAIR_LAB_KEEP_DIR) console.error(`lab: kept ${k.dir} (TUNNELPAIR_LAB_KEEP_DIR is set)`);
    else fs.rmSync(k.dir, { recursive: true, force: true });
    k.lock.stdin!.end(); // the next lab may start
}
