// The doctor proven in the lab: Man2 deployed, the doctor finds nothing; then each item broken
// on purpose on a real host, and the doctor must name that host and item; mended, it finds
// nothing again; destroy restores every host. (A kernel without ipip cannot be made in the
// lab, whose kernel has it: that finding is checked from recorded facts, tests/doctor.test.ts.)
import * as path from "path";
import { readStackFile } from "../components/stackFile";
import { DoctorReport } from "../doctor/doctor";
import { destroy, StackState, up } from "../replay/engine";
import { startLab } from "./lab";
import { CheckResult, labDoctor, labExec, recordInLab, snapshotAll } from "./scenario";
import { diffSnapshots } from "./snapshot";

interface Breakage {
    readonly what: string;
    readonly host: string;
    /** The item the doctor must report failing on `host`, and words its detail must contain. */
    readonly item: string;
    readonly says: string;
    readonly breakIt: string;
    readonly mend: string;
}

const root = path.join(__dirname, "..");
const breakages: Breakage[] = [
    {
        what: "tunl1's remote changed",
        host: "doolittle",
        item: "device",
        says: "remote is 130.88.200.11, the pair needs 130.88.200.10",
        breakIt: "ip link set dev tunl1 type ipip remote 130.88.200.11",
        mend: "ip link set dev tunl1 type ipip remote 130.88.200.10",
    },
    {
        what: "tunl1 down",
        host: "doolittle",
        item: "device",
        says: "tunl1 is down",
        breakIt: "ip link set dev tunl1 down",
        mend: "ip link set dev tunl1 up && ip route replace 10.200.100.0/24 dev tunl1 && ip route replace 192.168.104.0/24 dev tunl1",
    },
    {
        what: "tunl1's MTU changed",
        host: "rfe",
        item: "mtu",
        says: "tunl1 mtu 1300, the pair needs 1480",
        breakIt: "ip link set dev tunl1 mtu 1300",
        mend: "ip link set dev tunl1 mtu 1480",
    },
    {
        what: "tunl1 taken over",
        host: "doolittle",
        item: "ownership",
        says: 'ifalias "someone-else"',
        breakIt: "ip link set dev tunl1 alias someone-else",
        mend: "ip link set dev tunl1 alias tunnelpair:man2/man2",
    },
    {
        what: "forwarding off",
        host: "doolittle",
        item: "forwarding",
        says: "net.ipv4.ip_forward = 0",
        breakIt: "echo 0 >/proc/sys/net/ipv4/ip_forward",
        mend: "echo 1 >/proc/sys/net/ipv4/ip_forward",
    },
    {
        what: "rp_filter strict again",
        host: "rfe",
        item: "rp_filter",
        says: "rp_filter is 1 (strict",
        breakIt: "echo 0 >/proc/sys/net/ipv4/conf/tunl1/rp_filter",
        mend: "echo 2 >/proc/sys/net/ipv4/conf/tunl1/rp_filter",
    },
    {
        what: "IPIP dropped",
        host: "doolittle",
        item: "firewall",
        says: "INPUT drops protocol 4 from the peer 130.88.200.10 (-A INPUT -p ipencap -j DROP)",
        breakIt: "iptables -I INPUT -p 4 -j DROP",
        mend: "iptables -D INPUT -p 4 -j DROP",
    },
    {
        what: "a forwarded flow refused",
        host: "doolittle",
        item: "firewall",
        says: "FORWARD rejects tcp 130.88.196.129 -> 192.168.104.1 in eth0 out tunl1",
        breakIt: "iptables -I FORWARD -s 130.88.196.129/32 -j REJECT",
        mend: "iptables -D FORWARD -s 130.88.196.129/32 -j REJECT",
    },
    {
        what: "a route into the tunnel gone",
        host: "doolittle",
        item: "routes",
        says: "no route 192.168.104.0/24 dev tunl1",
        breakIt: "ip route del 192.168.104.0/24 dev tunl1",
        mend: "ip route add 192.168.104.0/24 dev tunl1",
    },
    {
        what: "the probe's ICMP dropped",
        host: "rfe",
        item: "probe",
        says: "0 received",
        breakIt: "iptables -I INPUT -i tunl1 -p icmp -j DROP",
        mend: "iptables -D INPUT -i tunl1 -p icmp -j DROP",
    },
    {
        what: "the client's route gone",
        host: "calculon",
        item: "routes",
        says: "no route 192.168.104.0/24 via 130.88.198.58",
        breakIt: "ip route del 192.168.104.0/24",
        mend: "ip route add 192.168.104.0/24 via 130.88.198.58",
    },
    {
        what: "the node's old gateway back",
        host: "comp000",
        item: "gateway",
        says: "the pair needs default via 192.168.1.253",
        breakIt: "ip route replace default via 192.168.1.254",
        mend: "ip route replace default via 192.168.1.253",
    },
];

const failing = (r: DoctorReport) => r.hosts.flatMap((h) => h.findings.filter((f) => f.status === "fail").map((f) => ({ host: h.host, ...f })));

export interface DoctorLabReport {
    readonly checks: CheckResult[];
    readonly breakages: number;
    readonly doctorMs: number[];
}

export async function runDoctorLab(log: (l: string) => void = () => undefined): Promise<DoctorLabReport> {
    const checks: CheckResult[] = [];
    const check = (name: string, ok: boolean, detail?: string) => {
        checks.push({ name, ok, detail });
        log(`${ok ? "ok  " : "FAIL"} ${name}${detail && !ok ? `\n       ${detail.split("\n").join("\n       ")}` : ""}`);
    };
    const doctorMs: number[] = [];
    const lab = await startLab(path.join(root, "lab/worlds/man2.yaml"));
    try {
        const sf = readStackFile(path.join(root, "stacks/Pulumi.man2.yaml"));
        const { model, run } = labDoctor(lab, sf);
        const doctor = async () => {
            const t0 = Date.now();
            const r = await run();
            doctorMs.push(Date.now() - t0);
            return r;
        };
        const hosts = Object.keys(model.hosts);
        const before = await snapshotAll(lab, hosts);

        const undeployed = await doctor();
        check(
            `before up: the doctor finds the tunnel missing (${failing(undeployed).length} problems)`,
            !undeployed.ok && failing(undeployed).some((f) => f.host === "rfe" && f.item === "device"),
        );
        const state = new StackState();
        await up(await recordInLab(sf, lab), state, labExec);
        const healthy = await doctor();
        const items = healthy.hosts.reduce((n, h) => n + h.findings.length, 0);
        check(`after up: ${items} items on ${healthy.hosts.length} hosts, no problem`, healthy.ok, JSON.stringify(failing(healthy)));
        const afterUp = await snapshotAll(lab, hosts);

        for (const b of breakages) {
            const broke = await lab.exec(b.host, b.breakIt);
            if (broke.code !== 0) throw new Error(`${b.host}: ${b.breakIt}: ${broke.stderr}`);
            const r = await doctor();
            const named = failing(r).filter((f) => f.host === b.host && f.item === b.item);
            check(
                `${b.what} on ${b.host}: the doctor names ${b.item} ("${b.says}")`,
                !r.ok && named.some((f) => f.detail.includes(b.says)),
                JSON.stringify(failing(r), null, 1),
            );
            const mended = await lab.exec(b.host, b.mend);
            if (mended.code !== 0) throw new Error(`${b.host}: ${b.mend}: ${mended.stderr}`);
        }
        const again = await doctor();
        check("everything mended: no problem", again.ok, JSON.stringify(failing(again)));
        const afterMend = await snapshotAll(lab, hosts);
        for (const h of hosts) {
            const d = diffSnapshots(afterUp[h], afterMend[h]);
            check(`mending put ${h} back as up left it (${d.length} diff lines)`, d.length === 0, d.join("\n"));
        }
        await destroy(state, labExec);
        const afterDestroy = await snapshotAll(lab, hosts);
        for (const h of hosts) {
            const d = diffSnapshots(before[h], afterDestroy[h]);
            check(`destroy restored ${h} (${d.length} diff lines)`, d.length === 0, d.join("\n"));
        }
    } finally {
        await lab.stop();
    }
    return { checks, breakages: breakages.length, doctorMs };
}
