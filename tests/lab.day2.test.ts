// Issue 11's lab tools (lab/day2.ts): the systemd stand-in, a reboot, running a unit as
// systemd would, a firewall reload, and the snapshot's unit directory, proven on the toy
// world; and the unit-file reading they rely on (lab/unitfile.ts), which needs no lab.
import { runDay2Selftest } from "../lab/day2";
import { planService, splitWords, substituteEnv } from "../lab/unitfile";
import { expectAllPassed, labDescribe } from "./support/lab";

describe("reading a service unit as systemd does (lab/unitfile.ts)", () => {
    const base = { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" };
    it("splits words with quotes and C escapes", () => {
        expect(splitWords(`/bin/sh -c 'echo "a b"; exit 1' x\\x2dy "\\s" \\101`)).toEqual(["/bin/sh", "-c", 'echo "a b"; exit 1', "x-y", " ", "A"]);
        expect(() => splitWords("a 'b")).toThrow(/unterminated/);
    });
    it("substitutes ${VAR} in words, $VAR as a word of its own, $$ as $ (systemd's own test vectors, test-env-util.c)", () => {
        const line = [
            "FOO$FOO",
            "FOO$FOOFOO",
            "FOO${FOO}$FOO",
            "FOO${FOO}",
            "${FOO}",
            "$FOO",
            "$FOO$FOO",
            "${FOO}${BAR}",
            "${FOO",
            "FOO$$${FOO}",
            "$$FOO${FOO}",
        ];
        expect(substituteEnv(line, { FOO: "BAR BAR", BAR: "waldo" })).toEqual([
            "FOO$FOO",
            "FOO$FOOFOO",
            "FOOBAR BAR$FOO",
            "FOOBAR BAR",
            "BAR BAR",
            "BAR",
            "BAR",
            "BAR BARwaldo",
            "${FOO",
            "FOO$BAR BAR",
            "$FOOBAR BAR",
        ]);
        expect(substituteEnv(["$NO", "${NO}x"], {})).toEqual(["x"]);
    });
    it("plans ExecStartPre, ExecStart, ExecStartPost with the unit's environment, specifiers and directory", () => {
        const p = planService(
            "[Unit]\nDescription=x\n[Service]\nType=oneshot\nEnvironment=FOO=bar\nWorkingDirectory=~\nUMask=077\nExecStartPre=/bin/true\nExecStart=/bin/echo %n ${FOO} \\\n  %t\nExecStartPost=/bin/echo done\n",
            "tunnelpair-a\\x2db-c.service",
            "doolittle",
            base,
        );
        expect(p.commands).toEqual([["/bin/true"], ["/bin/echo", "tunnelpair-a\\x2db-c.service", "bar", "/run"], ["/bin/echo", "done"]]);
        expect(p.env).toEqual({ ...base, FOO: "bar" });
        expect(p.workingDirectory).toBe("/root");
        expect(p.umask).toBe("0077");
    });
    it("refuses what it does not model, and a unit without ExecStart", () => {
        const unit = (s: string) => planService(`[Service]\n${s}\n`, "u.service", "h", base);
        expect(() => unit("Type=oneshot")).toThrow(/no ExecStart= line/);
        expect(() => unit("ExecStart=-/bin/false")).toThrow(/prefix -/);
        expect(() => unit("User=nobody\nExecStart=/bin/true")).toThrow(/as root only/);
        expect(() => unit("EnvironmentFile=/etc/x\nExecStart=/bin/true")).toThrow(/EnvironmentFile= is not modelled/);
        expect(() => unit("ExecStart=/bin/echo %q")).toThrow(/specifier %q/);
        expect(unit("ExecStart=/bin/a\nExecStart=\nExecStart=/bin/b").commands).toEqual([["/bin/b"]]);
    });
});

labDescribe("day-2 lab tools (issue 11)", () => {
    it("stand-in, reboot, runUnit, firewall reload, unit snapshot", async () => {
        const lines: string[] = [];
        const checks = await runDay2Selftest((l) => lines.push(l));
        expectAllPassed("lab day2", lines, checks);
        expect(checks.length).toBeGreaterThanOrEqual(30);
    }, 600_000);
});
