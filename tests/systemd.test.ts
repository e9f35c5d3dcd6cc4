// Issue 11's units, as files: names escaped as systemd escapes them, every file accepted by
// `systemd-analyze verify` (which needs systemd installed, not running), the ordering each
// line is there for.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { firewallLoaders, followFirewalld, renderUnits, systemdEscape, unitName } from "../components/systemd";

const spec = { name: unitName("toy", "toy"), tag: "tunnelpair:toy/toy", converge: "/var/lib/tunnelpair/toy/toy/converge", repairSeconds: 60 };

/** systemd-analyze verify on the files, in a scratch directory: its exit code and what it said. */
function verify(files: Record<string, string>): { code: number; said: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunnelpair-units-"));
    try {
        for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
        const r = spawnSync("systemd-analyze", ["verify", "--man=no", ...Object.keys(files).map((f) => path.join(dir, f))], { encoding: "utf8" });
        return { code: r.status ?? -1, said: `${r.stdout}${r.stderr}`.trim() };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

describe("the pair's systemd units", () => {
    it("escape stack and pair as systemd-escape does, so that no two pairs share a name", () => {
        for (const s of ["toy/toy", "a-b/c", "a/b-c", "x.y/z_1", "Stack9/p.q-r"])
            expect(systemdEscape(s)).toBe(execFileSync("systemd-escape", [s], { encoding: "utf8" }).trim());
        expect(unitName("a-b", "c")).not.toBe(unitName("a", "b-c"));
        expect(unitName("toy", "toy")).toBe("tunnelpair-toy-toy");
    });

    it("pass systemd-analyze verify, which refuses a broken unit", () => {
        const u = renderUnits(spec);
        expect(
            verify({
                [`${spec.name}.service`]: u.service,
                [`${spec.name}-repair.service`]: u.repairService!,
                [`${spec.name}-repair.timer`]: u.repairTimer!,
                [`${spec.name}-firewalld.service`]: u.firewalldHook!,
            }),
        ).toEqual({ code: 0, said: "" });
        // the check can fail: a oneshot that restarts is refused
        const broken = verify({ "broken.service": u.service.replace("RemainAfterExit=yes", "Restart=always") });
        expect(broken.code).not.toBe(0);
        expect(broken.said).toMatch(/Restart=always|oneshot/i);
    });

    it("order the boot run after the network and after every firewall loader, and the repair after the boot run", () => {
        const u = renderUnits(spec);
        const lines = (text: string) => text.split("\n").filter((l) => !l.startsWith("#"));
        expect(lines(u.service)).toEqual(
            expect.arrayContaining([
                "Wants=network-online.target",
                "After=network-online.target",
                `After=${firewallLoaders.join(" ")}`,
                "Type=oneshot",
                "RemainAfterExit=yes",
                "WantedBy=multi-user.target",
            ]),
        );
        expect(firewallLoaders).toEqual(
            expect.arrayContaining(["iptables.service", "netfilter-persistent.service", "firewalld.service", "nftables.service", "ufw.service"]),
        );
        expect(lines(u.service)).toContain("ExecStart=/bin/sh /var/lib/tunnelpair/toy/toy/converge");
        expect(lines(u.repairService!)).toEqual(
            expect.arrayContaining(["After=tunnelpair-toy-toy.service", "Type=oneshot", "ExecStart=/bin/sh /var/lib/tunnelpair/toy/toy/converge"]),
        );
        expect(lines(u.repairService!)).not.toContain("RemainAfterExit=yes"); // a timer can start it again
        expect(lines(u.repairTimer!)).toEqual(
            expect.arrayContaining(["OnActiveSec=60", "OnUnitInactiveSec=60", "Unit=tunnelpair-toy-toy-repair.service", "WantedBy=timers.target"]),
        );
        expect(u.repairTimer).not.toMatch(/^Persistent=/m);
        // the firewalld hook: with firewalld, never pulling it in (no Requires=, Wants= or BindsTo=)
        expect(lines(u.firewalldHook!)).toEqual(
            expect.arrayContaining([
                "PartOf=firewalld.service",
                "After=firewalld.service",
                `ExecStart=/bin/sh /var/lib/tunnelpair/toy/toy/converge ${followFirewalld}`,
                "Restart=on-failure",
                "WantedBy=firewalld.service",
            ]),
        );
        expect(u.firewalldHook).not.toMatch(/^(Requires|Wants|BindsTo)=/m);
        expect(renderUnits({ ...spec, repairSeconds: undefined })).toEqual({ service: u.service });
    });
});
