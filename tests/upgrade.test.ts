// Issue 11 item 4 without a lab: what the engine does with the Commands the version before
// persistence (2e9dd54) left in a toy stack's state (lab/oldRecording.ts) when today's program
// runs. The lab proves the hosts' side (tests/lab.upgrade.test.ts); this pins the decisions
// that make it an upgrade in place, so that a change to the triggers, the Commands' names or
// the object lines the runtime writes is seen here first.
import * as path from "path";
import { deployStack } from "../components/program";
import { readStackFile } from "../components/stackFile";
import { loadOldRecording, oldRecordingFile } from "../lab/oldRecording";
import { loadWorld, mgmtAddress } from "../lab/world";
import { Executor, StackState, up } from "../replay/engine";
import { overlayConnections } from "../replay/overlay";
import { diffCommand } from "../replay/provider";
import { recordProgram } from "../replay/record";
import { commands, desiredLines, hostCommands } from "./support/record";

const root = path.join(__dirname, "..");
const world = loadWorld(path.join(root, "lab/worlds/toy.yaml"));
// the lab's hosts as startLab gives them; its keys are stand-ins here
const lab = {
    hosts: Object.fromEntries(Object.keys(world.hosts).map((h) => [h, { address: mgmtAddress(world, h)!, port: 22 }])),
    privateKey: "stand-in key",
    hostPublicKey: "ssh-ed25519 AAAAstandin",
};
const sf = readStackFile(path.join(root, "stacks/Pulumi.toy.yaml"));
const today = () => {
    const o = overlayConnections(sf, lab);
    return recordProgram({ stack: sf.stack, config: o.values, secretKeys: [...o.secretKeys], program: deployStack });
};

describe("a toy stack deployed by 2e9dd54, then today's program", () => {
    it("the old recording points at the toy world's hosts with the lab's keys filled in", () => {
        const old = loadOldRecording("toy", lab);
        for (const c of commands(old)) {
            const conn = c.inputs.connection as { host: string; privateKey: string; hostKey: string };
            expect(Object.values(lab.hosts).map((h) => h.address)).toContain(conn.host);
            expect([conn.privateKey, conn.hostKey]).toEqual([lab.privateKey, lab.hostPublicKey]);
        }
        const moved = { ...lab, hosts: { ...lab.hosts, doolittle: { address: "198.18.0.99", port: 22 } } };
        expect(() => loadOldRecording("toy", moved)).toThrow(
            `${oldRecordingFile("toy")}: recorded for doolittle at 198.18.0.11:22, the lab has 198.18.0.99:22`,
        );
    });

    it("every Command keeps its name and its triggers: the engine updates each in place, none is replaced", async () => {
        const old = loadOldRecording("toy", lab);
        const now = await today();
        // (less the old probe's own Command: b's apply probes now)
        expect(commands(now).map((c) => c.urn)).toEqual(
            commands(old)
                .map((c) => c.urn)
                .filter((u) => !u.endsWith("::toy-verify")),
        );
        for (const c of commands(now)) {
            const was = commands(old).find((x) => x.urn === c.urn)!;
            expect([c.name, c.inputs.triggers]).toEqual([was.name, was.inputs.triggers]);
            expect([c.name, diffCommand(was.inputs, c.inputs)]).toEqual([c.name, "update"]);
        }
        // replayed: the old up creates, today's up updates both endpoints and deletes the old
        // probe's Command (b's apply probes now; the old one has no delete: nothing runs)
        const ran: string[] = [];
        const exec: Executor = (conn, command) => {
            ran.push(command);
            return Promise.resolve({ code: 0, stdout: "", stderr: "", ms: 0 });
        };
        const state = new StackState();
        await up(old, state, exec);
        const upgrade = await up(now, state, exec);
        expect(upgrade.steps.map((s) => `${s.op} ${s.name}`).sort()).toEqual(["delete toy-verify", "update toy-a-doolittle", "update toy-b-calculon"]);
        for (const c of hostCommands(now)) expect(state.resources.get(c.urn)!.inputs.delete).toBe(c.inputs.delete);
    });

    it("each host's objects are the old ones and the pair's unit: the upgrade's converge adds the unit and keeps the tunnel as it is", async () => {
        const old = loadOldRecording("toy", lab);
        const now = await today();
        for (const c of hostCommands(now)) {
            const was = hostCommands(old).find((x) => x.urn === c.urn)!;
            const before = desiredLines(was.inputs.create as string);
            expect(before.some((l) => l.startsWith("unit "))).toBe(false);
            // an object line written differently today would be removed and made again (the device torn down) by the upgrade
            expect(desiredLines(c.inputs.create as string)).toEqual([...before, "unit tunnelpair-toy-toy"]);
        }
    });
});
