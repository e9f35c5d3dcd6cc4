// The two ends the Pulumi CLI gives a component provider plugin, played by the tests: an
// engine (logs, the root resource) and a resource monitor that records every registration,
// both gRPC servers on 127.0.0.1; and the plugin itself, started as the CLI's Node.js language
// host starts one: `node <its @pulumi/pulumi>/cmd/run-plugin <plugin folder> <engine address>`,
// which prints the port it serves the ResourceProvider service on.
import * as grpc from "@grpc/grpc-js";
import * as engineRpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as engineProto from "@pulumi/pulumi/proto/engine_pb";
import * as providerRpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as resourceRpc from "@pulumi/pulumi/proto/resource_grpc_pb";
import * as resourceProto from "@pulumi/pulumi/proto/resource_pb";
import { ChildProcess, spawn } from "child_process";
import * as path from "path";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const emptyProto = require("google-protobuf/google/protobuf/empty_pb");
// eslint-disable-next-line @typescript-eslint/no-require-imports
const structProto = require("google-protobuf/google/protobuf/struct_pb");

/** One RegisterResource the plugin sent, its inputs as the wire carried them (secrets marked). */
export interface Registration {
    readonly type: string;
    readonly name: string;
    readonly custom: boolean;
    readonly parent: string;
    readonly object: Record<string, unknown>;
}

export interface TestEngine {
    readonly address: string;
    readonly logs: { severity: number; message: string }[];
    readonly registrations: Registration[];
    readonly outputs: Map<string, Record<string, unknown>>;
    stop(): Promise<void>;
}

type Handler = (call: { request: any }, callback: (e: Error | null, r?: unknown) => void) => void; // eslint-disable-line @typescript-eslint/no-explicit-any

const urnOf = (type: string, name: string) => `urn:pulumi:dev::consumer::${type}::${name}`;

/**
 * An engine and a resource monitor on one server. Custom resources come back with their
 * inputs as their state and an empty stdout, as a Command would report after a run that
 * printed nothing; components with no state.
 */
export async function startTestEngine(): Promise<TestEngine> {
    const logs: TestEngine["logs"] = [];
    const registrations: Registration[] = [];
    const outputs = new Map<string, Record<string, unknown>>();
    let root = "";
    const server = new grpc.Server();
    const engine: Record<string, Handler> = {
        log: (call, cb) => {
            logs.push({ severity: call.request.getSeverity(), message: call.request.getMessage() });
            cb(null, new emptyProto.Empty());
        },
        getRootResource: (_call, cb) => cb(null, new engineProto.GetRootResourceResponse().setUrn(root)),
        setRootResource: (call, cb) => {
            root = call.request.getUrn();
            cb(null, new engineProto.SetRootResourceResponse());
        },
    };
    const monitor: Record<string, Handler> = {
        supportsFeature: (_call, cb) => cb(null, new resourceProto.SupportsFeatureResponse().setHassupport(true)),
        registerResource: (call, cb) => {
            const r = call.request as resourceProto.RegisterResourceRequest;
            const object = (r.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
            registrations.push({ type: r.getType(), name: r.getName(), custom: r.getCustom(), parent: r.getParent(), object });
            const res = new resourceProto.RegisterResourceResponse().setUrn(urnOf(r.getType(), r.getName()));
            if (r.getCustom()) res.setId(`${r.getName()}-id`).setObject(structProto.Struct.fromJavaScript({ ...object, stdout: "", stderr: "" }));
            cb(null, res);
        },
        registerResourceOutputs: (call, cb) => {
            const r = call.request as resourceProto.RegisterResourceOutputsRequest;
            outputs.set(r.getUrn(), r.getOutputs()?.toJavaScript() ?? {});
            cb(null, new emptyProto.Empty());
        },
    };
    server.addService(engineRpc.EngineService, engine);
    server.addService(resourceRpc.ResourceMonitorService, monitor);
    const port = await new Promise<number>((resolve, reject) =>
        server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );
    return {
        address: `127.0.0.1:${port}`,
        logs,
        registrations,
        outputs,
        stop: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
    };
}

export interface Plugin {
    readonly client: providerRpc.ResourceProviderClient;
    readonly stderr: () => string;
    stop(): void;
}

/** The plugin folder started as the CLI starts it, and a client of the provider it serves. */
export async function startPlugin(folder: string, engineAddress: string): Promise<Plugin> {
    const runPlugin = path.join(path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [folder] })), "cmd", "run-plugin");
    const child: ChildProcess = spawn(process.execPath, [runPlugin, folder, engineAddress], { cwd: folder, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stderr!.on("data", (d) => (err += d));
    const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the plugin printed no port in 60 s: ${err}`)), 60_000);
        child.stdout!.on("data", (d) => {
            out += d;
            const m = /^(\d+)\s*$/m.exec(out);
            if (m) {
                clearTimeout(timer);
                resolve(Number(m[1]));
            }
        });
        child.on("exit", (code) => reject(new Error(`the plugin exited with ${code} before serving: ${err}`)));
    });
    const client = new providerRpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    return {
        client,
        stderr: () => err,
        stop: () => {
            client.close();
            child.kill();
        },
    };
}

/** A gRPC call as a promise. */
export function rpc<Req, Res>(client: providerRpc.ResourceProviderClient, method: string, request: Req): Promise<Res> {
    return new Promise((resolve, reject) =>
        (client as unknown as Record<string, (r: Req, cb: (e: grpc.ServiceError | null, res: Res) => void) => void>)[method](request, (e, res) =>
            e ? reject(e) : resolve(res),
        ),
    );
}
