// What an iptables ruleset does with one packet: the doctor's answer to the how-to's "is
// your IPTables config denying, rejecting or failing to forward traffic?". Reads
// `iptables-save` output and walks a built-in chain of the filter table the way the kernel
// would, for the matches a tunnel's rules and a distribution's stock firewall use. A rule with
// a match it does not know, that could apply, makes the verdict "unknown": it never guesses.
import { contains, parseNetwork } from "../components/address";

export interface Packet {
    readonly src: string;
    readonly dst: string;
    /** Protocol number: 4 (IPIP), 6 (TCP), 17 (UDP), 1 (ICMP). */
    readonly proto: number;
    readonly in?: string;
    readonly out?: string;
    readonly dport?: number;
    /** Conntrack state: the first packet of a flow is NEW. */
    readonly state: "NEW" | "ESTABLISHED";
}

export interface Verdict {
    readonly verdict: "ACCEPT" | "DROP" | "REJECT" | "unknown";
    /** The rule that decided it, as iptables-save prints it, or "policy DROP of FORWARD". */
    readonly by: string;
}

interface Rule {
    readonly text: string;
    readonly words: string[];
}

export interface Table {
    readonly policies: Map<string, string>;
    readonly chains: Map<string, Rule[]>;
}

/** The filter table of an `iptables-save` dump; a host without one accepts everything. */
export function parseFilterTable(save: string): Table {
    const policies = new Map<string, string>();
    const chains = new Map<string, Rule[]>();
    let inFilter = false;
    for (const line of save.split("\n")) {
        if (line.startsWith("*")) inFilter = line === "*filter";
        if (!inFilter) continue;
        const declared = /^:(\S+) (\S+)/.exec(line);
        if (declared) {
            chains.set(declared[1], []);
            if (declared[2] !== "-") policies.set(declared[1], declared[2]);
        } else if (line.startsWith("-A ")) {
            const words = line.split(/\s+/);
            chains.get(words[1])?.push({ text: line, words });
        }
    }
    return { policies, chains };
}

// (as /etc/protocols names them: 41 is "ipv6", SIT's; 58 "ipv6-icmp", in ip6tables' rules)
const protoNumbers: Record<string, number> = { icmp: 1, ipencap: 4, tcp: 6, udp: 17, ipv6: 41, gre: 47, esp: 50, ah: 51, "ipv6-icmp": 58, sctp: 132 };
const continuing = new Set(["LOG", "NFLOG", "ULOG", "MARK", "CONNMARK", "AUDIT", "TRACE"]);

type Match = boolean | "unknown";

function ifaceMatches(pattern: string, name: string | undefined): Match {
    if (name === undefined) return "unknown";
    return pattern.endsWith("+") ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

/** Whether a rule's matches apply to the packet; "unknown" when one of them cannot be judged. */
function matches(rule: Rule, p: Packet): Match {
    const w = rule.words;
    let result: Match = true;
    const and = (m: Match) => {
        if (m === false) result = false;
        else if (m === "unknown" && result === true) result = "unknown";
    };
    for (let i = 2; i < w.length; i++) {
        const negate = w[i] === "!";
        if (negate) i++;
        const opt = w[i];
        const arg = w[i + 1];
        const not = (m: Match): Match => (m === "unknown" ? m : negate ? !m : m);
        switch (opt) {
            case "-s":
            case "-d": {
                const net = parseNetwork(arg, arg.includes(":") ? 6 : 4);
                and("error" in net ? "unknown" : not(contains(net, opt === "-s" ? p.src : p.dst)));
                i++;
                break;
            }
            case "-i":
            case "-o":
                and(not(ifaceMatches(arg, opt === "-i" ? p.in : p.out)));
                i++;
                break;
            case "-p": {
                const n = /^\d+$/.test(arg) ? Number(arg) : protoNumbers[arg];
                and(arg === "all" ? not(true) : n === undefined ? "unknown" : not(n === p.proto));
                i++;
                break;
            }
            case "-m":
                i++; // the module's own options follow and are judged one by one
                break;
            case "--state":
            case "--ctstate":
                and(not(arg.split(",").includes(p.state)));
                i++;
                break;
            case "--dport":
                and(p.dport === undefined ? "unknown" : not(portIn(arg, p.dport)));
                i++;
                break;
            case "--dports":
                and(p.dport === undefined ? "unknown" : not(arg.split(",").some((r) => portIn(r, p.dport!))));
                i++;
                break;
            case "--comment":
                i = skipQuoted(w, i + 1);
                break;
            case "-j":
            case "-g":
                return result;
            default:
                // a match option we do not model (--icmp-type, --tcp-flags, -m limit ...)
                and("unknown");
                i++;
        }
    }
    return result;
}

function portIn(range: string, port: number): boolean {
    const [lo, hi] = range.split(":").map(Number);
    return hi === undefined ? port === lo : port >= lo && port <= hi;
}

/** The index of the last word of a value iptables-save may have quoted ("a b"). */
function skipQuoted(w: string[], i: number): number {
    if (!w[i]?.startsWith('"')) return i;
    while (i < w.length - 1 && !(w[i].length > 1 && w[i].endsWith('"'))) i++;
    return i;
}

function target(rule: Rule): string | undefined {
    const j = rule.words.indexOf("-j");
    return j < 0 ? undefined : rule.words[j + 1];
}

/** The verdict of a built-in chain (INPUT, OUTPUT, FORWARD) of the filter table on the packet. */
export function verdict(table: Table, chain: string, p: Packet): Verdict {
    if (!table.chains.has(chain)) return { verdict: "ACCEPT", by: "no filter table" };
    const walk = (name: string, depth: number): Verdict | "return" => {
        if (depth > 16) return { verdict: "unknown", by: `chains nested deeper than 16 at ${name}` };
        for (const rule of table.chains.get(name) ?? []) {
            const m = matches(rule, p);
            if (m === false) continue;
            const t = target(rule);
            if (t === undefined || continuing.has(t)) continue;
            if (m === "unknown") return { verdict: "unknown", by: rule.text };
            if (t === "ACCEPT" || t === "DROP" || t === "REJECT") return { verdict: t, by: rule.text };
            if (t === "RETURN") return "return";
            if (table.chains.has(t)) {
                const inner = walk(t, depth + 1);
                if (inner !== "return") return inner;
                continue;
            }
            return { verdict: "unknown", by: rule.text };
        }
        return "return";
    };
    const v = walk(chain, 0);
    if (v !== "return") return v;
    const policy = table.policies.get(chain) ?? "ACCEPT";
    return { verdict: policy === "DROP" ? "DROP" : "ACCEPT", by: `the policy ${policy} of ${chain}` };
}
