// Runs one command the way the command provider does: a fresh SSH connection, an exec
// request with no PTY, the command string handed to the login shell, stdin only when
// non-empty, stdout and stderr kept apart with one trailing newline trimmed. Uses the
// OpenSSH client with the Command's own connection inputs (key, pinned host key, jump host).
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface Connection {
    host: string;
    port?: number;
    user?: string;
    privateKey?: string;
    password?: string;
    hostKey?: string;
    proxy?: Connection;
    perDialTimeout?: number;
    dialErrorLimit?: number;
}

export interface ExecResult {
    code: number;
    stdout: string;
    stderr: string;
    ms: number;
}

export class CommandError extends Error {
    constructor(readonly host: string, readonly result: ExecResult) {
        super(`${host}: exit ${result.code}: ${result.stderr.trim().split("\n").slice(-3).join(" | ")}`);
    }
}

/** Files for one connection: the key and a known_hosts pinning the host key. */
function materialize(dir: string, name: string, c: Connection): string[] {
    if (c.password !== undefined && c.privateKey === undefined) {
        throw new Error(`${c.host}: the replay authenticates with keys only`);
    }
    const args = ["-p", String(c.port ?? 22), "-o", "BatchMode=yes", "-o", `ConnectTimeout=${c.perDialTimeout ?? 15}`, "-o", "LogLevel=ERROR"];
    if (c.privateKey !== undefined) {
        const key = path.join(dir, `${name}.key`);
        fs.writeFileSync(key, c.privateKey.endsWith("\n") ? c.privateKey : `${c.privateKey}\n`, { mode: 0o600 });
        args.push("-i", key, "-o", "IdentitiesOnly=yes");
    }
    if (c.hostKey !== undefined) {
        const known = path.join(dir, `${name}.known`);
        fs.writeFileSync(known, `${c.port && c.port !== 22 ? `[${c.host}]:${c.port}` : c.host} ${c.hostKey}\n`);
        args.push("-o", `UserKnownHostsFile=${known}`, "-o", "StrictHostKeyChecking=yes");
    } else {
        // the provider ignores the host key when none is pinned
        args.push("-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no");
    }
    return args;
}

export interface ExecOptions {
    timeoutMs?: number;
    /**
     * Send only through this interface (ssh's BindInterface). The lab passes its TAP: should
     * the TAP be gone, a packet to the lab's addresses must fail, not leave by the default route.
     */
    bindInterface?: string;
}

/** ssh's own words when it could not set up the session: the provider's dial failed, it dials again. */
const dialFailure = /^(ssh: connect to host|kex_exchange_identification|Connection (closed|reset|refused|timed out)|ssh_exchange_identification|banner exchange)/m;

/**
 * The provider's dial loop: up to dialErrorLimit more dials when connecting fails (an sshd at
 * its MaxStartups limit resets new connections), waiting 100 ms, then 1.5 times longer each
 * time, at most 5 s. A command that ran is never run again.
 */
export async function sshExec(conn: Connection, command: string, stdin?: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const limit = conn.dialErrorLimit ?? 10;
    let wait = 100;
    for (let dial = 0; ; dial++) {
        const r = await sshExecOnce(conn, command, stdin, opts);
        if (r.code !== 255 || r.stdout !== "" || !dialFailure.test(r.stderr) || dial >= limit) return r;
        await new Promise((res) => setTimeout(res, wait));
        wait = Math.min(wait * 1.5, 5000);
    }
}

function sshExecOnce(conn: Connection, command: string, stdin?: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? 300000;
    if (opts.bindInterface && !fs.existsSync(`/sys/class/net/${opts.bindInterface}`)) {
        return Promise.reject(new Error(`${conn.host}: interface ${opts.bindInterface} is gone; not connecting`));
    }
    const bind = opts.bindInterface ? ["-o", `BindInterface=${opts.bindInterface}`] : [];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-ssh-"));
    const args = ["-T", ...bind, ...materialize(dir, "target", conn)];
    if (conn.proxy) {
        const p = conn.proxy;
        const proxyArgs = [...bind, ...materialize(dir, "proxy", p)];
        // ProxyCommand is run by /bin/sh: every element is a plain path or option
        args.push("-o", `ProxyCommand=ssh -T ${proxyArgs.join(" ")} -W %h:%p ${p.user ?? "root"}@${p.host}`);
    }
    args.push(`${conn.user ?? "root"}@${conn.host}`, command);
    const started = Date.now();
    return new Promise((resolve, reject) => {
        const child = spawn("ssh", args, { stdio: ["pipe", "pipe", "pipe"] });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        child.on("error", reject);
        child.on("close", (code, signal) => {
            clearTimeout(timer);
            fs.rmSync(dir, { recursive: true, force: true });
            const trim = (s: string) => (s.endsWith("\n") ? s.slice(0, -1) : s);
            resolve({ code: code ?? (signal ? 128 : 1), stdout: trim(stdout), stderr: trim(stderr), ms: Date.now() - started });
        });
        if (stdin) child.stdin.end(stdin);
        else child.stdin.end();
    });
}
