// systemd's reading of a service unit, as far as the lab runs one (lab/day2.ts runUnit): the
// file's syntax (systemd.syntax(7): sections, Key=Value, comments, backslash continuation),
// the command lines of ExecStartPre=/ExecStart=/ExecStartPost= (systemd.service(5), "Command
// lines", as systemd's config_parse_exec reads them: words with quotes and C escapes, then
// each word's specifiers; at exec time ${VAR} inside a word and $VAR as a word of its own),
// and the service's environment and working directory. What changes how a command runs and
// is not modelled here is refused by name, never ignored. Pure: no files, no processes.

/** Keys of [Service] in file order, a key that repeats listed each time. */
export type UnitSections = Record<string, { key: string; value: string }[]>;

export function parseUnitFile(text: string): UnitSections {
    const sections: UnitSections = {};
    let current = "";
    const lines = text.split("\n");
    for (let i = 0; i < lines.length; i++) {
        let line = lines[i].trim();
        if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
        // a trailing backslash continues the line (the backslash becomes a space); comment lines inside are skipped
        while (line.endsWith("\\") && i + 1 < lines.length) {
            line = line.slice(0, -1) + " ";
            const next = lines[++i].trim();
            if (!next.startsWith("#") && !next.startsWith(";")) line += next;
        }
        const section = /^\[([^\]]+)\]$/.exec(line);
        if (section) {
            current = section[1];
            sections[current] ??= [];
            continue;
        }
        const eq = line.indexOf("=");
        if (eq <= 0 || !current) throw new Error(`line ${i + 1}: not "Key=Value" inside a section: ${line}`);
        sections[current].push({ key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
    }
    return sections;
}

/** What `%x` stands for in a unit of this name on this host (systemd.unit(5), "Specifiers"; root's system manager). */
function specifiers(unit: string, hostname: string): Record<string, string> {
    const prefixed = unit.replace(/\.[^.]+$/, "");
    const at = prefixed.indexOf("@");
    return {
        "%": "%",
        n: unit,
        N: prefixed,
        p: at >= 0 ? prefixed.slice(0, at) : prefixed,
        i: at >= 0 ? prefixed.slice(at + 1) : "",
        j: (at >= 0 ? prefixed.slice(0, at) : prefixed).replace(/^.*-/, ""),
        t: "/run",
        S: "/var/lib",
        C: "/var/cache",
        L: "/var/log",
        E: "/etc",
        T: "/tmp",
        V: "/var/tmp",
        h: "/root",
        u: "root",
        U: "0",
        g: "root",
        G: "0",
        s: "/bin/sh",
        H: hostname,
        l: hostname.split(".")[0],
    };
}

export function expandSpecifiers(value: string, unit: string, hostname: string): string {
    const table = specifiers(unit, hostname);
    return value.replace(/%(.)?/g, (m, c: string | undefined) => {
        if (c === undefined || !(c in table)) throw new Error(`specifier ${m} is not modelled by the lab (in ${JSON.stringify(value)})`);
        return table[c];
    });
}

const cEscapes: Record<string, string> = { a: "\x07", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", v: "\v", s: " ", "\\": "\\", '"': '"', "'": "'" };

/**
 * Splits a value into words as systemd's extract_first_word does with UNQUOTE and
 * CUNESCAPE: whitespace separates, '...' and "..." quote (C escapes work inside them too),
 * \a \b \f \n \r \t \v \s \\ \" \' \xHH \NNN are C escapes. `unescape: false` keeps
 * backslashes as they are (how an environment value is split for $VAR).
 */
export function splitWords(value: string, unescape = true): string[] {
    const words: string[] = [];
    let i = 0;
    const ws = (c: string) => c === " " || c === "\t" || c === "\n" || c === "\r";
    while (i < value.length) {
        while (i < value.length && ws(value[i])) i++;
        if (i >= value.length) break;
        let word = "";
        let quote = "";
        for (; i < value.length; i++) {
            const c = value[i];
            if (unescape && c === "\\") {
                const n = value[i + 1];
                if (n === undefined) throw new Error(`a trailing backslash in ${JSON.stringify(value)}`);
                if (n in cEscapes) {
                    word += cEscapes[n];
                    i++;
                } else if (n === "x" && /^[0-9a-fA-F]{2}$/.test(value.slice(i + 2, i + 4))) {
                    word += String.fromCharCode(parseInt(value.slice(i + 2, i + 4), 16));
                    i += 3;
                } else if (/^[0-7]{3}$/.test(value.slice(i + 1, i + 4))) {
                    word += String.fromCharCode(parseInt(value.slice(i + 1, i + 4), 8));
                    i += 3;
                } else throw new Error(`escape \\${n} in ${JSON.stringify(value)} is not one systemd knows`);
            } else if (quote) {
                if (c === quote) quote = "";
                else word += c;
            } else if (c === "'" || c === '"') quote = c;
            else if (ws(c)) break;
            else word += c;
        }
        if (quote) {
            if (unescape) throw new Error(`unterminated ${quote} in ${JSON.stringify(value)}`);
        }
        words.push(word);
    }
    return words;
}

/**
 * systemd's exec-time substitution (replace_env_argv): a word that is `$NAME` becomes the
 * variable's value split at whitespace (no word when unset); elsewhere `${NAME}` becomes the
 * value as it is ("" when unset) and `$$` a single `$`; any other `$` stays.
 */
export function substituteEnv(argv: string[], env: Record<string, string>): string[] {
    const out: string[] = [];
    for (const w of argv) {
        if (w.startsWith("$") && w[1] !== "{" && w[1] !== "$" && w.length > 1) {
            const v = env[w.slice(1)];
            if (v !== undefined) out.push(...splitWords(v, false));
            continue;
        }
        out.push(w.replace(/\$\$|\$\{([^}]*)\}/g, (m, name: string | undefined) => (m === "$$" ? "$" : (env[name!] ?? ""))));
    }
    return out;
}

export interface ServicePlan {
    /** ExecStartPre, ExecStart, ExecStartPost, in order, each an argv after substitution. */
    readonly commands: string[][];
    /** The service's whole environment. */
    readonly env: Record<string, string>;
    readonly workingDirectory: string;
    /** Octal, e.g. "0022". */
    readonly umask: string;
}

/** Keys that would change how the commands run and that the lab does not model. */
const unmodelled = [
    "EnvironmentFile",
    "PassEnvironment",
    "UnsetEnvironment",
    "RootDirectory",
    "RootImage",
    "DynamicUser",
    "StandardInput",
    "StandardInputText",
    "StandardInputData",
    "SupplementaryGroups",
    "LoadCredential",
    "SetCredential",
    "ExecCondition",
    "PAMName",
    "TTYPath",
];

/**
 * How systemd would start `unit` (a service) read from `text`: its commands, environment
 * (the manager's `baseEnv`, then Environment= in order), working directory and umask.
 * Refuses a unit without ExecStart=, a command with a prefix (-, @, :, +, !), another user,
 * and the keys above.
 */
export function planService(text: string, unit: string, hostname: string, baseEnv: Record<string, string>): ServicePlan {
    const service = parseUnitFile(text).Service;
    if (!service) throw new Error(`${unit}: no [Service] section`);
    const env = { ...baseEnv };
    const lists: Record<string, string[][]> = { ExecStartPre: [], ExecStart: [], ExecStartPost: [] };
    let workingDirectory = "/";
    let umask = "0022";
    for (const { key, value } of service) {
        if (unmodelled.includes(key)) throw new Error(`${unit}: ${key}= is not modelled by the lab's runUnit`);
        if (key === "User" || key === "Group") {
            if (!["", "root", "0"].includes(value)) throw new Error(`${unit}: ${key}=${value}: the lab runs units as root only`);
        } else if (key === "Environment") {
            if (value === "") {
                for (const k of Object.keys(env)) if (!(k in baseEnv)) delete env[k];
                Object.assign(env, baseEnv);
                continue;
            }
            for (const a of splitWords(value).map((w) => expandSpecifiers(w, unit, hostname))) {
                const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(a);
                if (!m) throw new Error(`${unit}: Environment=${value}: ${JSON.stringify(a)} is not NAME=VALUE`);
                env[m[1]] = m[2];
            }
        } else if (key === "WorkingDirectory") {
            const d = value.replace(/^-/, "");
            workingDirectory = d === "~" ? "/root" : expandSpecifiers(d, unit, hostname);
        } else if (key === "UMask") {
            if (!/^[0-7]{1,4}$/.test(value)) throw new Error(`${unit}: UMask=${value} is not octal`);
            umask = value.padStart(4, "0");
        } else if (key in lists) {
            if (value === "") {
                lists[key] = []; // an empty assignment resets the list
                continue;
            }
            // config_parse_exec: words first (quotes, C escapes), then each word's specifiers
            const argv = splitWords(value).map((w) => expandSpecifiers(w, unit, hostname));
            if (/^[-@:+!]/.test(argv[0])) throw new Error(`${unit}: ${key}=${value}: the prefix ${argv[0][0]} is not modelled by the lab's runUnit`);
            if (argv.includes(";")) throw new Error(`${unit}: ${key}=${value}: ";" between commands is not modelled`);
            lists[key].push(argv);
        }
    }
    if (lists.ExecStart.length === 0) throw new Error(`${unit}: no ExecStart= line`);
    const commands = [...lists.ExecStartPre, ...lists.ExecStart, ...lists.ExecStartPost].map((a) => substituteEnv(a, env));
    return { commands, env, workingDirectory, umask };
}
