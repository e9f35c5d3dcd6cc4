// Applies recorded Commands to real hosts with the engine's and the command provider's
// semantics (README "Design"; pulumi-command 1.2.1's provider/pkg/provider/remote/): dependency order, independent Commands concurrently;
// create for new resources, update (or create) for changed ones, replacement only on
// `triggers` (delete-before-create with deleteBeforeReplace, else create, then delete the old
// at the end); a failed create is not recorded; deletes run with the stored inputs, in
// reverse dependency order; a failed delete keeps the resource in state.
import { diffCommand } from "./provider";
import { Recording, RecordedResource } from "./record";
import { SshConnection } from "../components/ssh/connection";
import { CommandError, ExecResult, sshExec } from "../components/ssh/exec";

export interface StoredCommand {
    readonly urn: string;
    readonly name: string;
    readonly inputs: Record<string, unknown>;
    readonly dependencies: string[];
    readonly deleteBeforeReplace: boolean;
    readonly stdout: string;
    readonly stderr: string;
}

/** The stack's state: what `pulumi up` stored, in the order it was created. */
export class StackState {
    readonly resources = new Map<string, StoredCommand>();
}

export type Step = { op: "create" | "update" | "delete" | "replace-create" | "replace-delete"; name: string; ms: number; ok: boolean; output?: string };

export interface RunReport {
    readonly steps: Step[];
    readonly ms: number;
}

export type Executor = (conn: SshConnection, command: string, stdin?: string) => Promise<ExecResult>;

/**
 * The Debian default of sshd's AcceptEnv: the provider's Setenv of any other key fails.
 * The product sends none; the replay refuses them as the server would.
 */
const acceptEnv = [/^LANG$/, /^LC_/];

async function runCommand(exec: Executor, inputs: Record<string, unknown>, which: "create" | "update" | "delete"): Promise<ExecResult> {
    const text = (which === "update" ? (inputs.update ?? inputs.create) : inputs[which]) as string | undefined;
    if (text === undefined) return { code: 0, stdout: "", stderr: "", ms: 0 };
    const env = (inputs.environment ?? {}) as Record<string, string>;
    for (const k of Object.keys(env)) {
        if (!acceptEnv.some((re) => re.test(k))) throw new Error(`Setenv ${k} refused by the server (AcceptEnv)`);
    }
    const conn = inputs.connection as SshConnection;
    const stdin = typeof inputs.stdin === "string" && inputs.stdin !== "" ? inputs.stdin : undefined;
    const r = await exec(conn, text, stdin);
    if (r.code !== 0) throw new CommandError(conn.host, r);
    return r;
}

/** Runs tasks as soon as what they wait for is done; the first failure stops new starts. */
async function schedule<T extends { urn: string; waitsFor: string[] }>(items: T[], run: (item: T) => Promise<void>): Promise<void> {
    const done = new Map<string, Promise<void>>();
    let failure: unknown;
    const start = (item: T): Promise<void> => {
        const existing = done.get(item.urn);
        if (existing) return existing;
        const p = (async () => {
            await Promise.all(item.waitsFor.filter((u) => items.some((i) => i.urn === u)).map((u) => start(items.find((i) => i.urn === u)!)));
            if (failure) return;
            try {
                await run(item);
            } catch (e) {
                failure ??= e;
            }
        })();
        done.set(item.urn, p);
        return p;
    };
    await Promise.all(items.map(start));
    // the first task's own error, as its runner threw it
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    if (failure) throw failure;
}

function commandsOf(r: Recording): RecordedResource[] {
    return r.resources.filter((x) => x.type === "command:remote:Command");
}

/** Dependencies of a resource, its ancestors' included (a child waits for its parent's). */
function effectiveDependencies(r: Recording, res: RecordedResource): string[] {
    const byUrn = new Map(r.resources.map((x) => [x.urn, x]));
    const deps = new Set<string>();
    const visit = (x: RecordedResource | undefined) => {
        if (!x) return;
        for (const d of x.dependencies) {
            const dep = byUrn.get(d);
            if (dep && dep.type !== "command:remote:Command") {
                // a component: depending on it means depending on its children
                for (const c of r.resources.filter((y) => y.parent === dep.urn)) deps.add(c.urn);
            } else deps.add(d);
        }
        visit(x.parent ? byUrn.get(x.parent) : undefined);
    };
    visit(res);
    return [...deps];
}

/** `pulumi up`: brings the state (and the hosts) to the recording. */
export async function up(recording: Recording, state: StackState, exec: Executor = sshExec): Promise<RunReport> {
    const t0 = Date.now();
    const steps: Step[] = [];
    const step = async (op: Step["op"], name: string, f: () => Promise<ExecResult | void>) => {
        const t = Date.now();
        try {
            const r = await f();
            steps.push({ op, name, ms: Date.now() - t, ok: true, output: r ? r.stdout : undefined });
            return r;
        } catch (e) {
            steps.push({ op, name, ms: Date.now() - t, ok: false, output: String((e as Error).message) });
            throw e;
        }
    };
    const wanted = commandsOf(recording);
    const deferredDeletes: StoredCommand[] = [];
    const store = (res: RecordedResource, r: ExecResult) =>
        state.resources.set(res.urn, {
            urn: res.urn,
            name: res.name,
            inputs: res.inputs,
            dependencies: effectiveDependencies(recording, res),
            deleteBeforeReplace: res.deleteBeforeReplace,
            stdout: r.stdout,
            stderr: r.stderr,
        });
    const items = wanted.map((res) => ({ res, urn: res.urn, waitsFor: effectiveDependencies(recording, res) }));
    await schedule(items, async ({ res }) => {
        const old = state.resources.get(res.urn);
        if (!old) {
            const r = (await step("create", res.name, () => runCommand(exec, res.inputs, "create"))) as ExecResult;
            store(res, r);
            return;
        }
        const action = diffCommand(old.inputs, res.inputs);
        if (action === "same") return;
        if (action === "update") {
            const r = (await step("update", res.name, () => runCommand(exec, res.inputs, "update"))) as ExecResult;
            store(res, r);
            return;
        }
        if (old.deleteBeforeReplace || res.deleteBeforeReplace) {
            await step("replace-delete", res.name, () => runCommand(exec, old.inputs, "delete"));
            state.resources.delete(res.urn);
            const r = (await step("replace-create", res.name, () => runCommand(exec, res.inputs, "create"))) as ExecResult;
            store(res, r);
        } else {
            const r = (await step("replace-create", res.name, () => runCommand(exec, res.inputs, "create"))) as ExecResult;
            deferredDeletes.push(old);
            store(res, r);
        }
    });
    for (const old of deferredDeletes) await step("replace-delete", old.name, () => runCommand(exec, old.inputs, "delete"));
    // resources no longer in the program are deleted, dependents first
    const gone = [...state.resources.values()].filter((s) => !wanted.some((w) => w.urn === s.urn));
    await deleteAll(gone, state, exec, steps);
    return { steps, ms: Date.now() - t0 };
}

async function deleteAll(targets: StoredCommand[], state: StackState, exec: Executor, steps: Step[]): Promise<void> {
    // a resource is deleted once everything that depends on it is
    const items = targets.map((s) => ({ s, urn: s.urn, waitsFor: targets.filter((o) => o.dependencies.includes(s.urn)).map((o) => o.urn) }));
    await schedule(items, async ({ s }) => {
        const t = Date.now();
        try {
            const r = await runCommand(exec, s.inputs, "delete");
            state.resources.delete(s.urn);
            steps.push({ op: "delete", name: s.name, ms: Date.now() - t, ok: true, output: r.stdout });
        } catch (e) {
            steps.push({ op: "delete", name: s.name, ms: Date.now() - t, ok: false, output: String((e as Error).message) });
            throw e;
        }
    });
}

/** `pulumi destroy`: the stored deletes with the stored inputs; the program does not run. */
export async function destroy(state: StackState, exec: Executor = sshExec): Promise<RunReport> {
    const t0 = Date.now();
    const steps: Step[] = [];
    await deleteAll([...state.resources.values()], state, exec, steps);
    return { steps, ms: Date.now() - t0 };
}
