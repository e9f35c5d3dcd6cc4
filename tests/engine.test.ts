// The replay engine's semantics, with a fake host in place of SSH.
import { destroy, Executor, StackState, up } from "../replay/engine";
import { Recording, RecordedResource } from "../replay/record";

function cmd(name: string, create: string, opts: Partial<RecordedResource> & { triggers?: unknown[]; del?: string } = {}): RecordedResource {
    return {
        urn: `urn:${name}`,
        type: "command:remote:Command",
        name,
        parent: "",
        custom: true,
        inputs: { connection: { host: name }, create, update: create, delete: opts.del ?? `del-${name}`, triggers: opts.triggers ?? [name] },
        secretPaths: [],
        dependencies: opts.dependencies ?? [],
        deleteBeforeReplace: opts.deleteBeforeReplace ?? true,
    };
}
const rec = (...resources: RecordedResource[]): Recording => ({ resources, outputs: {}, logs: [] });

function fakeHost(fail: string[] = []) {
    const log: string[] = [];
    const exec: Executor = (conn, command) => {
        log.push(`${conn.host}:${command}`);
        const failed = fail.includes(command);
        return Promise.resolve({ code: failed ? 1 : 0, stdout: command, stderr: failed ? "boom" : "", ms: 0 });
    };
    return { log, exec };
}

describe("replay engine", () => {
    it("creates, then does nothing when nothing changed", async () => {
        const h = fakeHost();
        const s = new StackState();
        await up(rec(cmd("a", "mk-a"), cmd("b", "mk-b")), s, h.exec);
        const second = await up(rec(cmd("a", "mk-a"), cmd("b", "mk-b")), s, h.exec);
        expect(h.log.sort()).toEqual(["a:mk-a", "b:mk-b"]);
        expect(second.steps).toEqual([]);
    });

    it("updates in place with the new create, never the delete, when triggers are unchanged", async () => {
        const h = fakeHost();
        const s = new StackState();
        await up(rec(cmd("a", "v1")), s, h.exec);
        await up(rec(cmd("a", "v2")), s, h.exec);
        expect(h.log).toEqual(["a:v1", "a:v2"]);
        expect(s.resources.get("urn:a")!.inputs.create).toBe("v2");
    });

    it("replaces delete-first on a trigger change with deleteBeforeReplace", async () => {
        const h = fakeHost();
        const s = new StackState();
        await up(rec(cmd("a", "v1", { triggers: [1], del: "rm-v1" })), s, h.exec);
        await up(rec(cmd("a", "v2", { triggers: [2], del: "rm-v2" })), s, h.exec);
        expect(h.log).toEqual(["a:v1", "a:rm-v1", "a:v2"]);
    });

    it("replaces create-first without deleteBeforeReplace", async () => {
        const h = fakeHost();
        const s = new StackState();
        await up(rec(cmd("a", "v1", { triggers: [1], del: "rm-v1", deleteBeforeReplace: false })), s, h.exec);
        await up(rec(cmd("a", "v2", { triggers: [2], del: "rm-v2", deleteBeforeReplace: false })), s, h.exec);
        expect(h.log).toEqual(["a:v1", "a:v2", "a:rm-v1"]);
    });

    it("does not record a failed create: the next up creates again", async () => {
        const h = fakeHost(["bad"]);
        const s = new StackState();
        await expect(up(rec(cmd("a", "bad")), s, h.exec)).rejects.toThrow("a: exit 1: boom");
        expect(s.resources.size).toBe(0);
        await expect(destroy(s, h.exec)).resolves.toMatchObject({ steps: [] });
    });

    it("waits for dependencies and deletes in reverse order", async () => {
        const h = fakeHost();
        const s = new StackState();
        await up(rec(cmd("a", "mk-a"), cmd("b", "mk-b", { dependencies: ["urn:a"] })), s, h.exec);
        await destroy(s, h.exec);
        expect(h.log).toEqual(["a:mk-a", "b:mk-b", "b:del-b", "a:del-a"]);
        expect(s.resources.size).toBe(0);
    });

    it("keeps a resource whose delete failed, and fails the destroy", async () => {
        const h = fakeHost(["del-a"]);
        const s = new StackState();
        await up(rec(cmd("a", "mk-a"), cmd("b", "mk-b")), s, h.exec);
        await expect(destroy(s, h.exec)).rejects.toThrow("a: exit 1");
        expect([...s.resources.keys()]).toEqual(["urn:a"]);
    });

    it("deletes what the program no longer declares", async () => {
        const h = fakeHost();
        const s = new StackState();
        await up(rec(cmd("a", "mk-a"), cmd("b", "mk-b")), s, h.exec);
        await up(rec(cmd("a", "mk-a")), s, h.exec);
        expect(h.log.slice(2)).toEqual(["b:del-b"]);
    });

    it("refuses an environment key that sshd's AcceptEnv would refuse", async () => {
        const h = fakeHost();
        const r = cmd("a", "mk-a");
        r.inputs.environment = { SECRET_THING: "x" };
        await expect(up(rec(r), new StackState(), h.exec)).rejects.toThrow("Setenv SECRET_THING refused");
    });
});
