// The verification probe's MTU check (components/verify.sh), run by dash against a stand-in
// `ping` that plays a path (and `ip`, never called here): nothing reaches this machine's
// network stack, the device's files are a directory of the test's own. The lab proves the
// same on real kernels (lab/scenario.ts, scenario "mtu").
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { planVerify } from "../components/plan";
import { renderVerify } from "../components/render";
import { validateConfig } from "../components/validate";
import { stackModel, toyConfig } from "./support/toy";

/**
 * A ping that answers every echo without DF (reachability) and, with DF, those of at most
 * STUB_PATH bytes on the wire; larger ones are lost (each waits out its second). With
 * STUB_SAYS=N a router tells the host the path carries N: the first echo larger than N is
 * lost while the host learns it, the next is refused by the host's tunnel ("Frag needed
 * ... (mtu = N)", at once), later ones by its kernel ("message too long, mtu=N", which
 * iputils' ping waits out too), as iputils' ping prints them in the lab. STUB_DF=drop loses
 * every DF echo. STUB_PING=busybox answers -V and -M as busybox's ping does. Every call is
 * logged, and each echo that waits out its second.
 */
const stubPing = `#!/bin/sh
log() { printf '%s\\n' "$*" >>"$STUB_LOG"; }
log "ping $*"
if [ "$STUB_PING" = busybox ]; then
    case " $* " in
        *" -V "*) printf '%s\\n' "ping: invalid option -- 'V'" "BusyBox v1.35.0 multi-call binary." >&2; exit 1 ;;
        *" -M "*) printf '%s\\n' "ping: invalid option -- 'M'" "BusyBox v1.35.0 multi-call binary." >&2; exit 1 ;;
    esac
fi
case " $* " in *" -V "*) echo "ping from iputils 20221126"; exit 0 ;; esac
df= size=56 hdr=28
while [ $# -gt 0 ]; do
    case $1 in -M) df=$2; shift ;; -s) size=$2; shift ;; -6) hdr=48 ;; esac
    shift
done
[ "$df" = do ] || exit 0
wire=$((size + hdr))
if [ "$STUB_DF" != drop ] && [ "$wire" -le "$STUB_PATH" ]; then
    echo "1 packets transmitted, 1 received, 0% packet loss"; exit 0
fi
if [ -n "$STUB_SAYS" ] && [ "$wire" -gt "$STUB_SAYS" ]; then
    if [ -e "$STUB_LOG.refused" ]; then
        echo "ping: local error: message too long, mtu=$STUB_SAYS" >&2; log lost
        echo "1 packets transmitted, 0 received, +1 errors, 100% packet loss"; exit 1
    elif [ -e "$STUB_LOG.learned" ]; then
        : >"$STUB_LOG.refused"
        echo "From 10.0.1.2 icmp_seq=1 Frag needed and DF set (mtu = $STUB_SAYS)"
        echo "1 packets transmitted, 0 received, +1 errors, 100% packet loss"; exit 1
    fi
    : >"$STUB_LOG.learned"
fi
log lost
echo "1 packets transmitted, 0 received, 100% packet loss"; exit 1
`;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-verify-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
fs.mkdirSync(path.join(dir, "bin"));
fs.writeFileSync(path.join(dir, "bin", "ping"), stubPing, { mode: 0o755 });
fs.writeFileSync(path.join(dir, "bin", "ip"), '#!/bin/sh\necho "ip must not run here: $*" >&2\nexit 1\n', { mode: 0o755 });

interface Run {
    code: number;
    stdout: string;
    stderr: string;
    /** Every ping the probe ran, with its arguments. */
    pings: string[];
    /** The echoes that waited out their second. */
    lost: number;
}

let runs = 0;
/** The toy's probe on doolittle (b), its tunl1 of `mtu`, over a path that carries `pathMtu`. */
function probe(mtu: number, pathMtu: number, env: Record<string, string> = {}, stack?: string): Run {
    const run = path.join(dir, `run${++runs}`);
    const net = path.join(run, "net");
    const m = stack === undefined ? validateConfig(toyConfig(), { stack: "toy" }) : stackModel(stack);
    const dev = m.pairs[0].b.interface;
    fs.mkdirSync(path.join(net, dev, "statistics"), { recursive: true });
    for (const [f, v] of [
        ["mtu", mtu],
        ["flags", "0x91"],
        ["statistics/tx_packets", 7],
        ["statistics/rx_packets", 7],
    ])
        fs.writeFileSync(path.join(net, dev, String(f)), `${v}\n`);
    const script = `${renderVerify(planVerify(m, m.pairs[0])!, "a")}\nverify_pair\n`;
    expect(script).toContain("\nNET=/sys/class/net ");
    const file = path.join(run, "verify.sh");
    fs.writeFileSync(file, script.replace("\nNET=/sys/class/net ", `\nNET=${net} `));
    const log = path.join(run, "log");
    fs.writeFileSync(log, "");
    const r = spawnSync("dash", [file], {
        encoding: "utf8",
        env: {
            PATH: `${path.join(dir, "bin")}:/usr/bin:/bin`,
            STUB_LOG: log,
            STUB_PATH: String(pathMtu),
            STUB_PING: "iputils",
            STUB_DF: "",
            ...env,
        },
    });
    const lines = fs.readFileSync(log, "utf8").split("\n").filter(Boolean);
    return {
        code: r.status ?? -1,
        stdout: r.stdout,
        stderr: r.stderr,
        pings: lines.filter((l) => l.startsWith("ping ")),
        lost: lines.filter((l) => l === "lost").length,
    };
}

const dfPings = (r: Run) => r.pings.filter((p) => / -M do /.test(p));
const tag = "tunnelpair[tunnelpair:toy/toy@calculon]";

describe("the verification probe's full-MTU check", () => {
    it("a path as wide as the device: one DF echo of the full MTU (1452 bytes of payload for 1480) and verified", () => {
        const r = probe(1480, 1480);
        expect(r.code).toBe(0);
        expect(r.stdout).toBe(`${tag}: verified: doolittle answers at 10.0.1.2 through tunl1 (probe 1 of 5); 1480-byte packets pass (tunl1's MTU, DF)\n`);
        // that one echo is the whole probe: no small ping, no ping -V
        expect(r.pings).toEqual(["ping -n -M do -c 1 -W 1 -s 1452 -I 10.0.2.2 10.0.1.2"]);
        expect(r.lost).toBe(0);
    });

    it("a path narrowing to 1380 that says so (ICMP fragmentation needed): fails naming the device, its MTU, the largest size that passed and what to set", () => {
        const r = probe(1480, 1380, { STUB_SAYS: "1380" });
        expect(r.code).toBe(1);
        expect(r.stdout).toBe("");
        expect(r.stderr).toBe(
            `${tag}: error: verification failed: tunl1 on calculon has MTU 1480, but 1480-byte packets do not reach doolittle's 10.0.1.2 through it: ` +
                "the largest that passed is 1380 bytes on the wire (DF pings from 10.0.2.2); the path between 130.88.196.129 and 130.88.198.58 does not carry 1500-byte packets (the MTU and IPIP's 20 bytes), " +
                'and the path says so (ICMP "fragmentation needed" reaches calculon). Set mtu: 1380 on endpoint b of pair toy (calculon), and on a (doolittle) unless its MTU is already no larger\n',
        );
        // the warm-up lost while the host learnt the path MTU, the probe refused with the
        // path's MTU, which passes: no search
        expect(dfPings(r).map((p) => / -s (\d+) /.exec(p)![1])).toEqual(["1452", "1452", "1352"]);
        expect(r.lost).toBe(1);
    });

    it("a path that says 1400 and loses anything over 1300 further on: searches below what it said, and says so", () => {
        const r = probe(1480, 1300, { STUB_SAYS: "1400" });
        expect(r.code).toBe(1);
        expect(r.stderr).toContain("the largest that passed is 1300 bytes on the wire");
        expect(r.stderr).toContain(
            'and the path says 1400 bytes (ICMP "fragmentation needed" reaches calculon), but those are lost further on: an MTU black hole beyond. Set mtu: 1300 on endpoint b',
        );
        expect(dfPings(r).length).toBeLessThanOrEqual(3 + 11);
    });

    it("the same path with ICMP fragmentation needed filtered (a black hole): the same figures, and says nothing told the host", () => {
        const r = probe(1480, 1380);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(
            "tunl1 on calculon has MTU 1480, but 1480-byte packets do not reach doolittle's 10.0.1.2 through it: the largest that passed is 1380 bytes on the wire",
        );
        expect(r.stderr).toContain('nothing says so: ICMP "fragmentation needed" does not reach calculon (filtered on the path: an MTU black hole');
        expect(r.stderr).toContain("Set mtu: 1380 on endpoint b of pair toy (calculon)");
        // warm-up and probe, then the search's echoes above 1380: each waits out its second
        expect(dfPings(r).length).toBeLessThanOrEqual(2 + 11);
        expect(r.lost).toBe(dfPings(r).filter((p) => Number(/ -s (\d+) /.exec(p)![1]) + 28 > 1380).length);
    });

    it.each([
        [1480, 1400],
        [1480, 1379],
        [1480, 576],
        [1480, 1479],
        [1476, 1280],
        [1480, 69],
    ])("finds the exact limit of a %i-byte device over a %i-byte path within 13 DF echoes", (mtu, pathMtu) => {
        const r = probe(mtu, pathMtu);
        expect(r.stderr).toContain(`the largest that passed is ${pathMtu} bytes on the wire`);
        expect(r.stderr).toContain(`Set mtu: ${pathMtu} on endpoint b`);
        expect(dfPings(r).length).toBeLessThanOrEqual(13);
    });

    it("bounds the whole probe: a jumbo device over a 1500-byte black hole ends within 19 one-second echoes, at a size that passed just below the limit", () => {
        const r = probe(8980, 1500);
        expect(r.pings.filter((p) => p !== "ping -V")).toHaveLength(1 + 2 + 11);
        expect(r.lost).toBeLessThanOrEqual(2 + 11);
        const n = Number(/the largest that passed is (\d+) bytes/.exec(r.stderr)![1]);
        // 11 halvings of 68..8980 leave a gap of at most 5 bytes; what is reported passed
        expect(n).toBeLessThanOrEqual(1500);
        expect(n).toBeGreaterThanOrEqual(1495);
    });

    it("no DF echo passes at all: says so, never an MTU of 68", () => {
        const r = probe(1480, 1480, { STUB_DF: "drop" });
        expect(r.code).toBe(1);
        expect(r.stderr).toContain("tunl1 on calculon has MTU 1480, and no DF ping from 10.0.2.2 to 10.0.1.2 passed, not even 69 bytes");
        expect(r.stderr).not.toContain("Set mtu");
    });

    it("busybox's ping, which cannot set DF: refuses the first echo's -M, then verified as before, says the MTU was not probed", () => {
        const r = probe(1480, 1380, { STUB_PING: "busybox" });
        expect(r.code).toBe(0);
        expect(r.stdout).toBe(
            `${tag}: verified: doolittle answers at 10.0.1.2 through tunl1 (probe 1 of 5); tunl1's MTU 1480 not probed: calculon's ping is not iputils' and cannot set DF (install iputils-ping to probe it)\n`,
        );
        // the one -M it was given, refused before any echo left
        expect(dfPings(r)).toEqual(["ping -n -M do -c 1 -W 1 -s 1452 -I 10.0.2.2 10.0.1.2"]);
        expect(r.pings.filter((p) => !/ -M /.test(p))).toEqual(["ping -n -q -c 1 -W 1 -I 10.0.2.2 10.0.1.2", "ping -V"]);
    });
});

describe("the probe of the other modes (issue 15)", () => {
    it("GRE with a key: the same echoes, and the failure counts GRE's 28 bytes and protocol 47", () => {
        const ok = probe(1472, 1472, {}, "toy-gre");
        expect(ok.code).toBe(0);
        expect(ok.stdout).toContain("verified: doolittle answers at 10.0.1.2 through gre1 (probe 1 of 5); 1472-byte packets pass (gre1's MTU, DF)");
        const narrow = probe(1472, 1372, { STUB_SAYS: "1372" }, "toy-gre");
        expect(narrow.code).toBe(1);
        expect(narrow.stderr).toContain("does not carry 1500-byte packets (the MTU and GRE's 28 bytes)");
        expect(narrow.stderr).toContain("Set mtu: 1372 on endpoint b of pair toy");
    });

    it("SIT: ping -6 between the IPv6 tunnel addresses, IPv6's 48 bytes of headers, the search down to IPv6's 1280 at most", () => {
        const ok = probe(1480, 1480, {}, "toy-sit");
        expect(ok.code).toBe(0);
        expect(ok.stdout).toContain("verified: doolittle answers at fd00:0:0:1::2 through sit1 (probe 1 of 5); 1480-byte packets pass (sit1's MTU, DF)");
        expect(ok.pings).toEqual(["ping -6 -n -M do -c 1 -W 1 -s 1432 -I fd00:0:0:2::2 fd00:0:0:1::2"]);
        const narrow = probe(1480, 1400, { STUB_SAYS: "1400" }, "toy-sit");
        expect(narrow.code).toBe(1);
        expect(narrow.stderr).toContain("the largest that passed is 1400 bytes on the wire (DF pings from fd00:0:0:2::2)");
        expect(narrow.stderr).toContain("does not carry 1500-byte packets (the MTU and SIT's 20 bytes)");
        expect(narrow.stderr).toContain("Set mtu: 1400 on endpoint b of pair toy");
        // a black hole: the search stays at or above 1280, and finds the limit
        const hole = probe(1480, 1300, {}, "toy-sit");
        expect(hole.stderr).toContain("the largest that passed is 1300 bytes on the wire");
        expect(dfPings(hole).every((p) => Number(/ -s (\d+) /.exec(p)![1]) + 48 >= 1280)).toBe(true);
        expect(dfPings(hole).length).toBeLessThanOrEqual(2 + 11);
    });
});
