// Runs one command the way the command provider does: a fresh SSH connection, an exec
// request with no PTY, the command string handed to the login shell, stdin only when
// non-empty, stdout and stderr kept apart with one trailing newline trimmed. Uses the
// OpenSSH client with the connection as the provider takes it (connection.ts): the key and
// its passphrase, a pinned host key, the jump host, the dial loop's limits.
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { SshConnection, SshTarget } from "./connection";

export interface ExecResult {
    code: number;
    stdout: string;
    stderr: string;
    ms: number;
}

export class CommandError extends Error {
    constructor(
        readonly host: string,
        readonly result: ExecResult,
    ) {
        super(`${host}: exit ${result.code}: ${result.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    }
}

/**
 * One hop's files and options: the key, a known_hosts pinning the host key, and the key's
 * passphrase for the askpass helper. Every file is in the run's own directory (0700), the
 * secrets 0600; none is on a command line or in the environment.
 */
function materialize(dir: string, name: string, c: SshTarget): { args: string[]; passphrase?: { key: string; file: string } } {
    if (c.password !== undefined && c.privateKey === undefined) {
        throw new Error(`${c.host}: the replay authenticates with keys only`);
    }
    // the provider's default perDialTimeout is 15 s; the model always gives one
    const args = ["-p", String(c.port ?? 22), "-o", `ConnectTimeout=${c.perDialTimeout ?? 15}`, "-o", "LogLevel=ERROR"];
    let passphrase: { key: string; file: string } | undefined;
    if (c.privateKey !== undefined) {
        const key = path.join(dir, `${name}.key`);
        fs.writeFileSync(key, c.privateKey.endsWith("\n") ? c.privateKey : `${c.privateKey}\n`, { mode: 0o600 });
        args.push("-i", key, "-o", "IdentitiesOnly=yes");
        if (c.privateKeyPassword !== undefined) {
            passphrase = { key, file: path.join(dir, `${name}.pass`) };
            fs.writeFileSync(passphrase.file, c.privateKeyPassword, { mode: 0o600 });
        }
    }
    // BatchMode asks nothing; a passphrase is asked once, of the askpass helper, never of a terminal
    args.push(
        "-o",
        passphrase ? "BatchMode=no" : "BatchMode=yes",
        ...(passphrase ? ["-o", "NumberOfPasswordPrompts=1", "-o", "PreferredAuthentications=publickey"] : []),
    );
    if (c.hostKey !== undefined) {
        const known = path.join(dir, `${name}.known`);
        fs.writeFileSync(known, `${c.port && c.port !== 22 ? `[${c.host}]:${c.port}` : c.host} ${c.hostKey}\n`);
        args.push("-o", `UserKnownHostsFile=${known}`, "-o", "StrictHostKeyChecking=yes");
    } else {
        // the provider ignores the host key when none is pinned
        args.push("-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no");
    }
    return { args, passphrase };
}

/**
 * The askpass helper ssh runs for a key's passphrase (SSH_ASKPASS_REQUIRE=force, no terminal):
 * it prints the passphrase of the key the prompt names, and refuses any other question.
 */
function askpass(dir: string, keys: { key: string; file: string }[]): NodeJS.ProcessEnv {
    const script = path.join(dir, "askpass");
    const cases = keys.map((k) => `    *"${k.key}"*) exec cat '${k.file}' ;;`).join("\n");
    fs.writeFileSync(script, `#!/bin/sh\ncase "$1" in\n${cases}\nesac\nexit 1\n`, { mode: 0o700 });
    return { ...process.env, SSH_ASKPASS: script, SSH_ASKPASS_REQUIRE: "force" };
}

export interface ExecOptions {
    timeoutMs?: number;
    /**
     * Send only through this interface (ssh's BindInterface). The lab passes its TAP: should
     * the TAP be gone, a packet to the lab's addresses must fail, not leave by the default route.
     */
    bindInterface?: string;
    /** Kills the ssh client when it fires: the session goes away as it does when the deployer's process dies. */
    signal?: AbortSignal;
    /** Told of each dial that failed before the command ran (the bench counts the redials). */
    onDialFailed?: (r: ExecResult) => void;
}

/** ssh's own words when it could not set up the session: the provider's dial failed, it dials again. */
const dialFailure =
    /^(ssh: connect to host|kex_exchange_identification|Connection (closed|reset|refused|timed out)|ssh_exchange_identification|banner exchange)/m;

/** Whether ssh exited without running anything because the session could not be set up (so a new dial is safe). */
export const dialFailed = (r: ExecResult): boolean => r.code === 255 && r.stdout === "" && dialFailure.test(r.stderr);

/**
 * The provider's dial loop: up to dialErrorLimit more dials when connecting fails (an sshd at
 * its MaxStartups limit resets new connections), waiting 100 ms, then 1.5 times longer each
 * time, at most 5 s. A command that ran is never run again.
 */
export async function sshExec(conn: SshConnection, command: string, stdin?: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const limit = conn.dialErrorLimit ?? 10;
    let wait = 100;
    for (let dial = 0; ; dial++) {
        const r = await sshExecOnce(conn, command, stdin, opts);
        if (!dialFailed(r)) return r;
        opts.onDialFailed?.(r);
        if (dial >= limit || opts.signal?.aborted) return r;
        await new Promise((res) => setTimeout(res, wait));
        wait = Math.min(wait * 1.5, 5000);
    }
}

async function sshExecOnce(conn: SshConnection, command: string, stdin?: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (opts.bindInterface && !fs.existsSync(`/sys/class/net/${opts.bindInterface}`)) {
        throw new Error(`${conn.host}: interface ${opts.bindInterface} is gone; not connecting`);
    }
    const bind = opts.bindInterface ? ["-o", `BindInterface=${opts.bindInterface}`] : [];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-ssh-"));
    try {
        const target = materialize(dir, "target", conn);
        const args = ["-T", ...bind, ...target.args];
        const passphrases = target.passphrase ? [target.passphrase] : [];
        if (conn.proxy) {
            const p = conn.proxy;
            const hop = materialize(dir, "proxy", p);
            if (hop.passphrase) passphrases.push(hop.passphrase);
            // ProxyCommand is run by /bin/sh: every element is a plain path or option
            args.push("-o", `ProxyCommand=ssh -T ${[...bind, ...hop.args].join(" ")} -W %h:%p ${p.user ?? "root"}@${p.host}`);
        }
        args.push(`${conn.user ?? "root"}@${conn.host}`, command);
        const env = passphrases.length ? askpass(dir, passphrases) : undefined;
        const r = await runSsh(args, { stdin, timeoutMs: opts.timeoutMs ?? 300000, env, signal: opts.signal });
        const trim = (s: string) => (s.endsWith("\n") ? s.slice(0, -1) : s);
        return { code: r.code, stdout: trim(r.stdout), stderr: trim(r.stderr), ms: r.ms };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/**
 * One ssh process: argv, stdin (closed at once when there is none), killed after timeoutMs or
 * when `signal` fires. Its exit code (128 when killed by a signal), its output as written,
 * whether it timed out.
 */
export function runSsh(
    args: string[],
    opts: { stdin?: string; timeoutMs: number; env?: NodeJS.ProcessEnv; signal?: AbortSignal },
): Promise<ExecResult & { timedOut: boolean }> {
    const started = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env });
        let stdout = "";
        let stderr = "";
        let timedOut = false;
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const timer = setTimeout(() => {
            timedOut = true;
            child.kill("SIGKILL");
        }, opts.timeoutMs);
        const abort = () => child.kill("SIGKILL");
        if (opts.signal?.aborted) abort();
        opts.signal?.addEventListener("abort", abort, { once: true });
        const settled = () => (clearTimeout(timer), opts.signal?.removeEventListener("abort", abort));
        child.on("error", (e) => (settled(), reject(e)));
        child.on("close", (code, signal) => {
            settled();
            resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, ms: Date.now() - started, timedOut });
        });
        child.stdin.end(opts.stdin || undefined);
    });
}
