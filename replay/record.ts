// Runs the program (index.ts) under Pulumi mocks and records every resource it registers:
// type, name, parent, inputs (secrets unwrapped, their paths noted) and the options the
// engine acts on (dependencies, deleteBeforeReplace). Registrations arrive in dependency
// order: a resource is registered only once what it depends on is.
import * as pulumi from "@pulumi/pulumi";
import * as path from "path";

export interface RecordedResource {
    readonly urn: string;
    readonly type: string;
    readonly name: string;
    readonly parent: string;
    readonly custom: boolean;
    /** Inputs as the provider receives them, secrets unwrapped. */
    readonly inputs: Record<string, unknown>;
    /** Dotted paths of the inputs that were secret ("connection.privateKey"). */
    readonly secretPaths: string[];
    readonly dependencies: string[];
    readonly deleteBeforeReplace: boolean;
}

export interface Recording {
    readonly resources: RecordedResource[];
    /** The stack's outputs, resolved. */
    readonly outputs: Record<string, unknown>;
    /** Messages the program logged (warnings at preview). */
    readonly logs: { severity: string; message: string }[];
}

export interface RecordOptions {
    readonly project?: string;
    readonly stack: string;
    /** "tunnelpair:hosts" -> value (objects are JSON-encoded as the CLI does). */
    readonly config: Record<string, unknown>;
    readonly secretKeys?: string[];
    /** Record a `pulumi preview` (dry run) instead of an update. */
    readonly preview?: boolean;
    /**
     * The program: by default the project's index.ts, imported (once per process: Node
     * caches modules); a function to run it again, e.g. deployStack from program.ts.
     */
    readonly program?: () => Record<string, unknown>;
    /**
     * The state the mocked engine returns for a resource the program registers; its inputs
     * by default. An output left out of the state is unknown, as at a real preview.
     */
    readonly mockState?: (args: pulumi.runtime.MockResourceArgs) => Record<string, unknown> | undefined;
}

const secretSig = "1b47061264138c4ac30d75fd1eb44270";
const specialSig = "4dabf18193072939515e22adb298388d";

function unwrapSecrets(value: unknown, at: string, paths: string[]): unknown {
    if (Array.isArray(value)) return value.map((v, i) => unwrapSecrets(v, `${at}[${i}]`, paths));
    if (value !== null && typeof value === "object") {
        const o = value as Record<string, unknown>;
        if (o[specialSig] === secretSig) {
            paths.push(at);
            return unwrapSecrets(o.value, at, []);
        }
        return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, unwrapSecrets(v, at ? `${at}.${k}` : k, paths)]));
    }
    return value;
}

/**
 * Records one run of the program under fresh mocks.
 */
export async function recordProgram(opts: RecordOptions): Promise<Recording> {
    const project = opts.project ?? "tunnelpair";
    const resources: RecordedResource[] = [];
    const options = new Map<string, { dependencies: string[]; deleteBeforeReplace: boolean; parent: string; custom: boolean }>();
    const logs: { severity: string; message: string }[] = [];

    await pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs) {
                return { id: args.custom ? `${args.name}-id` : undefined, state: opts.mockState?.(args) ?? (args.inputs as Record<string, unknown>) };
            },
            call(args: pulumi.runtime.MockCallArgs) {
                throw new Error(`unexpected call ${args.token}`);
            },
        },
        project,
        opts.stack,
        opts.preview ?? false,
    );
    const config = Object.fromEntries(Object.entries(opts.config).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]));
    pulumi.runtime.setAllConfig(config, opts.secretKeys ?? []);

    // The mock monitor sees inputs but not options; wrap it to read both off each request.
    const monitor = pulumi.runtime.getMonitor() as unknown as {
        registerResource(req: RegisterRequest, cb: (err: unknown, res: RegisterResponse | undefined) => void): void;
    };
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req, cb) =>
        register(req, (err, res) => {
            if (!err && res) {
                const urn = res.getUrn();
                options.set(urn, {
                    dependencies: req.getDependenciesList(),
                    deleteBeforeReplace: req.getDeletebeforereplace(),
                    parent: req.getParent(),
                    custom: req.getCustom(),
                });
                const secretPaths: string[] = [];
                const inputs = unwrapSecrets(
                    pulumi.runtime.deserializeProperties(req.getObject() as Parameters<typeof pulumi.runtime.deserializeProperties>[0]),
                    "",
                    secretPaths,
                ) as Record<string, unknown>;
                const o = options.get(urn)!;
                resources.push({ urn, type: req.getType(), name: req.getName(), inputs, secretPaths, ...o });
            }
            cb(err, res);
        });
    const warn = pulumi.log.warn;
    const captured = (severity: string) => (message: string) => {
        logs.push({ severity, message });
        return Promise.resolve();
    };
    (pulumi.log as { warn: unknown }).warn = captured("warning");

    // A resource whose inputs fail to resolve rejects promises that nobody awaits; the
    // language host fails the program with the first of them, and so does the recording.
    const rejected: unknown[] = [];
    const onRejection = (e: unknown) => rejected.push(e);
    process.on("unhandledRejection", onRejection);
    try {
        const exported = opts.program ? opts.program() : ((await import(path.join(__dirname, "..", "index.ts"))) as Record<string, unknown>);
        await settings()
            .waitForRPCs()
            .catch((e: unknown) => rejected.push(e));
        await settle();
        if (rejected.length) throw rejected[0];
        const outputs: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(exported)) {
            outputs[k] = await resolve(v);
        }
        return { resources, outputs, logs };
    } catch (e) {
        // how far the program got: a refused configuration must have registered nothing
        if (e !== null && typeof e === "object") Object.assign(e, { registered: resources.length, recorded: resources });
        throw e;
    } finally {
        // the rest of a failed program's rejections arrive a little later
        if (rejected.length) await settle(100);
        process.off("unhandledRejection", onRejection);
        (pulumi.log as { warn: unknown }).warn = warn;
    }
}

const settle = (ms = 0) => new Promise((r) => setTimeout(r, ms));

interface RegisterRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getCustom(): boolean;
    getObject(): unknown;
    getDependenciesList(): string[];
    getDeletebeforereplace(): boolean;
}
interface RegisterResponse {
    getUrn(): string;
}

function settings(): { waitForRPCs(): Promise<void> } {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require("@pulumi/pulumi/runtime/settings") as { waitForRPCs(): Promise<void> };
}

async function resolve(v: unknown): Promise<unknown> {
    if (pulumi.Output.isInstance(v)) {
        // values the engine would only know after the update (stdout under mocks) stay unknown
        const x = await (v as unknown as { promise(withUnknowns: boolean): Promise<unknown> }).promise(true);
        return pulumi.isUnknown(x) ? "<unknown>" : resolve(x);
    }
    if (Array.isArray(v)) return Promise.all(v.map(resolve));
    if (v !== null && typeof v === "object") {
        const entries = await Promise.all(Object.entries(v).map(async ([k, x]) => [k, await resolve(x)] as const));
        return Object.fromEntries(entries);
    }
    return v;
}
