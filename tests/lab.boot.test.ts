// The real-kernel lab itself: boots worlds in user-mode-linux, checks what tests of the
// product will rely on, and that stopping leaves nothing behind. Needs root and the lab's
// Debian packages (lab/README.md); skipped without them unless TUNNELPAIR_LAB_REQUIRED is set.
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { Lab, startLab, tapName } from "../lab/lab";
import { loadWorld, validateWorld, WorldError } from "../lab/world";
import { labDescribe } from "./support/lab";

const world = (name: string) => path.join(__dirname, "..", "lab", "worlds", `${name}.yaml`);

const bootTimeout = 240_000;
const testTimeout = 120_000;

/** Processes of the lab kernel (its helpers share its command line, which names the lab dir). */
function kernelProcesses(dir: string): string[] {
    return fs
        .readdirSync("/proc")
        .filter((p) => /^\d+$/.test(p))
        .map((p) => {
            try {
                return `${p} ${fs.readFileSync(`/proc/${p}/cmdline`, "utf8").replace(/\0/g, " ")}`;
            } catch {
                return "";
            }
        })
        .filter((c) => c.includes("linux.uml") && c.includes(dir));
}

async function expectStopsClean(lab: Lab): Promise<void> {
    const t = Date.now();
    await lab.stop();
    console.log(`lab ${lab.world.name} stopped in ${Date.now() - t} ms`);
    expect(kernelProcesses(lab.dir)).toEqual([]);
    expect(fs.existsSync(`/sys/class/net/${tapName}`)).toBe(false);
    expect(fs.existsSync(lab.dir)).toBe(false);
}

describe("lab world files", () => {
    it.each(["toy", "ps3", "man2"])("loads %s", (name) => {
        expect(Object.keys(loadWorld(world(name)).hosts).length).toBeGreaterThan(1);
    });

    it("rejects a bad world naming each field and value", () => {
        const bad = {
            segments: { lan: {} },
            hosts: {
                a: { interfaces: { eth0: { segment: "wan", adresses: [] } }, routes: ["default via 10.0.0.1; reboot"] },
                b: { management: false, jump: "a", interfaces: { eth0: { segment: "lan", addresses: ["10.0.0.300/24"] } } },
            },
        };
        const problems = (() => {
            try {
                validateWorld(bad, "bad.yaml", "bad");
            } catch (e) {
                return (e as WorldError).problems;
            }
            return [];
        })();
        expect(problems).toEqual([
            "hosts.a.interfaces.eth0.adresses: unknown field (known: segment, addresses, mtu)",
            'hosts.a.interfaces.eth0.segment: "wan" is not one of segments: lan',
            'hosts.a.routes[0]: "default via 10.0.0.1; reboot" is not "ip route add" arguments (letters, digits, space . / : _ -)',
            'hosts.b.interfaces.eth0.addresses[0]: "10.0.0.300/24" is not an IPv4 address with prefix (a.b.c.d/0-32)',
        ]);
    });
});

labDescribe("lab: toy world", () => {
    let lab: Lab | undefined;
    const on = async (host: string, script: string) => {
        const r = await lab!.exec(host, script);
        if (r.code !== 0) throw new Error(`${host}: exit ${r.code}: ${script}\n${r.stdout}${r.stderr}`);
        return r.stdout;
    };

    beforeAll(async () => {
        lab = await startLab(world("toy"));
        console.log(`lab toy ready in ${lab.bootMs} ms`);
    }, bootTimeout);
    afterAll(() => lab?.stop(), 60_000);

    it(
        "answers SSH on both hosts, each as itself",
        async () => {
            expect(await on("doolittle", "hostname")).toBe("doolittle\n");
            expect(await on("calculon", "hostname")).toBe("calculon\n");
        },
        testTimeout,
    );

    it(
        "lets doolittle reach calculon's campus address",
        async () => {
            expect(await on("doolittle", "ping -c1 -W5 130.88.196.129")).toContain("1 received");
        },
        testTimeout,
    );

    it(
        "loads ipip only on demand, and an ipip tunnel between two hosts carries a ping",
        async () => {
            await on("doolittle", "test ! -e /sys/module/ipip"); // not preloaded: the product loads it
            const tunnel = (local: string, remote: string, address: string) =>
                // the world's stock firewall rejects IPIP: let it through for this test only
                `modprobe ipip && ip link add tunl9 type ipip local ${local} remote ${remote} ttl inherit && ip addr add ${address}/30 dev tunl9 && ip link set tunl9 up && iptables -I INPUT 1 -p 4 -s ${remote} -j ACCEPT`;
            try {
                await on("doolittle", tunnel("130.88.198.58", "130.88.196.129", "10.99.0.1"));
                await on("calculon", tunnel("130.88.196.129", "130.88.198.58", "10.99.0.2"));
                expect(await on("doolittle", "ping -c1 -W5 10.99.0.2")).toContain("1 received");
                expect(await on("calculon", "cat /sys/class/net/tunl9/statistics/rx_packets")).not.toBe("0\n");
            } finally {
                for (const [h, peer] of [
                    ["doolittle", "130.88.196.129"],
                    ["calculon", "130.88.198.58"],
                ]) {
                    await lab!.exec(h, `ip link del tunl9; iptables -D INPUT -p 4 -s ${peer} -j ACCEPT`);
                }
                await lab!.exec("doolittle", "modprobe -r ipip"); // back to the booted state (tunl0 goes too)
            }
        },
        testTimeout,
    );

    it(
        "keeps /var private to each host and off the machine",
        async () => {
            const file = `/var/lib/tunnelpair-labtest/${process.pid}-${Date.now()}`;
            await on("doolittle", `mkdir -p ${path.dirname(file)} && echo doolittle > ${file} && test -s ${file}`);
            await on("calculon", `test ! -e ${file} && test ! -e ${path.dirname(file)}`);
            expect(fs.existsSync(path.dirname(file))).toBe(false);
        },
        testTimeout,
    );

    it(
        "stops leaving no kernel process, TAP or directory behind",
        async () => {
            await expectStopsClean(lab!);
        },
        testTimeout,
    );
});

labDescribe("lab: man2 world", () => {
    let lab: Lab | undefined;
    const on = async (host: string, script: string) => {
        const r = await lab!.exec(host, script);
        if (r.code !== 0) throw new Error(`${host}: exit ${r.code}: ${script}\n${r.stdout}${r.stderr}`);
        return r.stdout;
    };

    beforeAll(async () => {
        lab = await startLab(world("man2"));
        console.log(`lab man2 ready in ${lab.bootMs} ms`);
    }, bootTimeout);
    afterAll(() => lab?.stop(), 60_000);

    it(
        "reaches comp000 only through its jump host rfe",
        async () => {
            expect(lab!.hosts.comp000).toMatchObject({ managed: false, jump: "rfe", address: "192.168.104.100" });
            // ssh's own view of the configuration (no connection made)
            const config = execFileSync("ssh", ["-G", ...lab!.sshArgs("comp000")], { encoding: "utf8" });
            expect(config).toMatch(/^proxyjump rfe$/m);
            const out = await on("comp000", "hostname; echo $SSH_CONNECTION; ip -o link show; ip route show 198.18.0.0/24");
            const [name, connection] = out.split("\n");
            expect(name).toBe("comp000");
            expect(connection.split(" ")[0]).toBe("192.168.1.253"); // rfe's cluster address
            expect(out).not.toContain("mgmt0");
            expect(out).not.toContain("198.18.0.0/24");
            // Inside the lab: the management network is not reachable from comp000.
            expect((await lab!.exec("comp000", "ping -c1 -W2 198.18.0.1")).code).not.toBe(0);
        },
        testTimeout,
    );

    it(
        "has rfe filtering reverse paths strictly and forwarding nothing",
        async () => {
            expect(await on("rfe", "cat /proc/sys/net/ipv4/conf/all/rp_filter")).toBe("1\n");
            expect(await on("rfe", "iptables -S FORWARD")).toContain("-P FORWARD DROP");
        },
        testTimeout,
    );

    it(
        "has doolittle's own SSH_SERVICE chain admitting the management network",
        async () => {
            const rules = await on("doolittle", "iptables -S");
            expect(rules).toContain("-A INPUT -p tcp -m tcp --dport 22 -j SSH_SERVICE");
            expect(rules).toContain("-A SSH_SERVICE -s 198.18.0.0/24 -j ACCEPT");
        },
        testTimeout,
    );

    it(
        "lets calculon reach rfe's external address through the campus router (proxy ARP)",
        async () => {
            expect(await on("calculon", "ping -c1 -W5 130.88.200.10")).toContain("1 received");
        },
        testTimeout,
    );

    it(
        "stops leaving no kernel process, TAP or directory behind",
        async () => {
            await expectStopsClean(lab!);
        },
        testTimeout,
    );
});
