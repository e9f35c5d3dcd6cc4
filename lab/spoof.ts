// Anti-spoofing, proven with a forger: mallory, on the toy's campus segment, sends IPIP to
// doolittle after the toy stack is up. What the pair must drop:
//  A. IPIP from any address but the peer's;
//  B. IPIP to any address of doolittle's but the tunnel's local one;
//  C. IPIP from the peer's address whose inner source does not lie behind the peer;
//  D. the same, addressed to be forwarded.
// And what it cannot stop (README, "Security notes"): E. a forger using the peer's address
// and an inner source that does lie behind the peer is accepted.
import * as path from "path";
import { chainPrefix } from "../components/plan";
import { readStackFile } from "../components/stackFile";
import { destroy, StackState, up } from "../replay/engine";
import { Lab, startLab } from "./lab";
import { CheckResult, labExec, recordInLab, scenarios } from "./scenario";

const root = path.join(__dirname, "..");
const prefix = chainPrefix("toy", "toy");

interface Forgery {
    readonly name: string;
    /** Outer source (mallory's own, or calculon's forged) and destination. */
    readonly outer: { src: string; dst: string };
    /** Inner source, and the destination mallory tries to reach through the forged tunnel. */
    readonly inner: { src: string; dst: string };
    /** Whether doolittle must accept it (only E: the residual risk). */
    readonly accepted: boolean;
}

const forgeries: Forgery[] = [
    {
        name: "A: IPIP from an address that is not the peer's",
        outer: { src: "130.88.1.66", dst: "130.88.198.58" },
        inner: { src: "10.0.2.1", dst: "10.0.1.2" },
        accepted: false,
    },
    {
        name: "B: IPIP to an address of doolittle's that is not the tunnel's",
        outer: { src: "130.88.196.129", dst: "10.0.1.1" },
        inner: { src: "10.0.2.1", dst: "10.0.1.2" },
        accepted: false,
    },
    {
        name: "C: IPIP from the peer's address, inner source not behind the peer",
        outer: { src: "130.88.196.129", dst: "130.88.198.58" },
        inner: { src: "192.0.2.66", dst: "10.0.1.2" },
        accepted: false,
    },
    {
        name: "D: the same, to be forwarded",
        outer: { src: "130.88.196.129", dst: "130.88.198.58" },
        inner: { src: "192.0.2.66", dst: "130.88.196.200" },
        accepted: false,
    },
    {
        name: "E (residual risk): the peer's address and an inner source behind the peer",
        outer: { src: "130.88.196.129", dst: "130.88.198.58" },
        inner: { src: "10.0.2.66", dst: "10.0.1.2" },
        accepted: true,
    },
];

/** mallory's forged tunnel: the outer source on its lo (never announced), the inner source on the device. */
function forge(f: Forgery): string {
    const own = f.outer.src === "130.88.1.66";
    return [
        "modprobe ipip 2>/dev/null || true",
        own ? "" : `ip addr add ${f.outer.src}/32 dev lo`,
        `ip route add ${f.outer.dst}/32 dev eth0 src ${f.outer.src} 2>/dev/null || ip route replace ${f.outer.dst}/32 dev eth0 src ${f.outer.src}`,
        `ip link add evil type ipip local ${f.outer.src} remote ${f.outer.dst}`,
        `ip addr add ${f.inner.src}/32 dev evil`,
        "ip link set evil up",
        `ip route add ${f.inner.dst}/32 dev evil src ${f.inner.src}`,
        // a TCP SYN (retried) through the forged tunnel; no answer is expected back to mallory
        `timeout 3 bash -c 'exec 3<>/dev/tcp/${f.inner.dst}/22' 2>/dev/null || true`,
        "ip link del evil",
        `ip route del ${f.outer.dst}/32 dev eth0 2>/dev/null || true`,
        own ? "" : `ip addr del ${f.outer.src}/32 dev lo`,
    ]
        .filter(Boolean)
        .join("\n");
}

/** doolittle's view: tunl1's received packets, our IPIP accept rule, and the inner-source drop rule. */
async function counters(lab: Lab): Promise<{ rx: number; accept: number; drop: number }> {
    const r = await lab.exec(
        "doolittle",
        `cat /sys/class/net/tunl1/statistics/rx_packets; iptables -w 10 -vnxL ${prefix}-IN | awk '$3 == "ACCEPT" && $4 == "4" {print $1}'; iptables -w 10 -vnxL ${prefix}-SRC | awk '$3 == "DROP" {print $1}'`,
    );
    const [rx, accept, drop] = r.stdout.trim().split("\n").map(Number);
    return { rx, accept, drop };
}

export async function runSpoof(log: (l: string) => void = () => undefined): Promise<CheckResult[]> {
    const checks: CheckResult[] = [];
    const check = (name: string, ok: boolean, detail?: string) => {
        checks.push({ name, ok, detail });
        log(`${ok ? "ok  " : "FAIL"} ${name}${detail && !ok ? `\n       ${detail}` : ""}`);
    };
    const lab = await startLab(path.join(root, "lab/worlds/spoof.yaml"));
    const state = new StackState();
    try {
        const sf = readStackFile(scenarios.toy.stackFile);
        await up(await recordInLab(sf, lab), state, labExec);
        const flow = scenarios.toy.flows[0];
        const real = await lab.exec(flow.from, `timeout 4 bash -c 'exec 3<>/dev/tcp/${flow.to}/${flow.port} && read -r b <&3 && echo "$b"'`);
        check("the real tunnel works with mallory on the segment", real.stdout.startsWith("SSH-"), real.stderr);
        for (const f of forgeries) {
            const c0 = await counters(lab);
            const sent = await lab.exec("mallory", forge(f));
            if (sent.code !== 0) {
                check(`${f.name}: mallory could forge it`, false, sent.stderr);
                continue;
            }
            const c1 = await counters(lab);
            const detail = `tunl1 rx ${c0.rx}->${c1.rx}, IPIP accepted ${c0.accept}->${c1.accept}, inner-source drops ${c0.drop}->${c1.drop}`;
            if (f.accepted) {
                check(`${f.name}: accepted, as documented (${detail})`, c1.accept > c0.accept && c1.drop === c0.drop);
            } else if (f.outer.src === "130.88.196.129" && f.outer.dst === "130.88.198.58") {
                // through our IPIP accept (it does look like the peer), then dropped by the inner-source check
                check(`${f.name}: dropped by the inner-source check (${detail})`, c1.drop > c0.drop);
            } else {
                check(`${f.name}: never accepted, never reaches tunl1 (${detail})`, c1.accept === c0.accept && c1.rx === c0.rx);
            }
        }
    } finally {
        await destroy(state, labExec).catch((e: Error) => check("destroy", false, e.message));
        await lab.stop();
    }
    return checks;
}
