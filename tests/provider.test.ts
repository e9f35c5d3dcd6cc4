// Issue 12, item 4: the package folder as a component provider plugin, started as the Pulumi
// CLI starts it for a Python, Go, C#, Java or YAML program (`pulumi package add <folder>`),
// spoken to over gRPC as the engine would: GetSchema, and Construct against a resource monitor
// that records what the component registers. What stays for the CLI: generating each
// language's SDK from that schema, and running Commands for real (the lab does that).
import type { ServiceError } from "@grpc/grpc-js";
import * as errorsProto from "@pulumi/pulumi/proto/errors_pb";
import * as providerProto from "@pulumi/pulumi/proto/provider_pb";
import * as statusProto from "@pulumi/pulumi/proto/status_pb";
import { specialOutputValueSig, specialSecretSig, specialSigKey, unknownValue } from "@pulumi/pulumi/runtime/rpc";
import { ComponentProvider } from "@pulumi/pulumi/provider/experimental";
import { execFileSync } from "child_process";
import * as path from "path";
import { TunnelPair } from "../components";
import { Plugin, rpc, startPlugin, startTestEngine, TestEngine } from "./support/pluginHost";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const structProto = require("google-protobuf/google/protobuf/struct_pb");

const root = path.join(__dirname, "..");
jest.setTimeout(180_000);

// An Output on the wire, as every SDK sends a remote component's Outputs (a secret is one)
const outputValue = (value?: unknown, secret = false) => ({ [specialSigKey]: specialOutputValueSig, ...(value === undefined ? {} : { value }), secret });
// A secret as an older SDK would send it: a plain value marked secret
const legacySecret = (value: unknown) => ({ [specialSigKey]: specialSecretSig, value });
const isSecret = (v: unknown): boolean => typeof v === "object" && v !== null && (v as Record<string, unknown>)[specialSigKey] === specialSecretSig;

/** The toy pair as a Python or YAML program sends it: plain values, the key a secret Output. */
function toyInputs(tunnelAddress = "10.0.0.1", key: unknown = outputValue("stand-in key", true), address: (a: string) => unknown = (a) => a) {
    const host = (name: string, a: string) => ({ name, connection: { host: address(a), user: "root", privateKey: key }, underlay: { interface: "eth0", address: address(a) } });
    return {
        a: { host: host("doolittle", "130.88.198.58"), network: "10.0.0.0/30", tunnelAddress, routes: ["10.0.2.0/24"] },
        b: { host: host("calculon", "130.88.196.129"), network: "10.0.0.0/30", tunnelAddress: "10.0.0.2", routes: ["10.0.1.0/24"] },
    };
}

function constructRequest(engine: TestEngine, name: string, inputs: object, dryRun: boolean): providerProto.ConstructRequest {
    return new providerProto.ConstructRequest()
        .setProject("consumer")
        .setStack("dev")
        .setDryrun(dryRun)
        .setParallel(4)
        .setMonitorendpoint(engine.address)
        .setType("tunnelpair:index:TunnelPair")
        .setName(name)
        .setInputs(structProto.Struct.fromJavaScript(inputs))
        .setAcceptsOutputValues(true);
}

/** The fields an InputPropertiesError names, as the engine reads them from the gRPC status. */
function propertyErrors(e: ServiceError): { propertyPath: string; reason: string }[] {
    const [bin] = e.metadata.get("grpc-status-details-bin") as Buffer[];
    const status = statusProto.Status.deserializeBinary(new Uint8Array(bin));
    return status.getDetailsList().flatMap((d: { getValue_asU8(): Uint8Array }) =>
        errorsProto.InputPropertiesError.deserializeBinary(d.getValue_asU8())
            .getErrorsList()
            .map((x: { getPropertyPath(): string; getReason(): string }) => ({ propertyPath: x.getPropertyPath(), reason: x.getReason() })),
    );
}

describe("the package as a component provider plugin, over gRPC", () => {
    let engine: TestEngine;
    let plugin: Plugin;
    beforeAll(async () => {
        // the folder `pulumi package add` is given holds the build (`prepare` makes it on install)
        execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "pipe" });
        engine = await startTestEngine();
        plugin = await startPlugin(root, engine.address);
    });
    afterAll(async () => {
        plugin?.stop();
        await engine?.stop();
    });

    it("answers GetSchema with the schema the analyzer infers", async () => {
        const res = await rpc<providerProto.GetSchemaRequest, providerProto.GetSchemaResponse>(plugin.client, "getSchema", new providerProto.GetSchemaRequest().setVersion(0));
        const served = JSON.parse(res.getSchema());
        const inProcess = JSON.parse(await new ComponentProvider({ components: [TunnelPair as never], dirname: root, name: "tunnelpair" }).getSchema());
        expect(served.name).toBe("tunnelpair");
        expect(Object.keys(served.resources)).toEqual(["tunnelpair:index:TunnelPair"]);
        expect(served.resources["tunnelpair:index:TunnelPair"].isComponent).toBe(true);
        expect(served).toEqual(inProcess);
    });

    it("constructs a pair: the component and one Command per host, the key secret on the wire", async () => {
        const res = await rpc<providerProto.ConstructRequest, providerProto.ConstructResponse>(plugin.client, "construct", constructRequest(engine, "toy", toyInputs(), false));
        expect(res.getUrn()).toBe("urn:pulumi:dev::consumer::tunnelpair:index:TunnelPair::toy");
        const mine = engine.registrations.filter((r) => r.name.startsWith("toy"));
        expect(mine.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
            "command:remote:Command toy-a-doolittle",
            "command:remote:Command toy-b-calculon",
            "command:remote:Command toy-verify",
            "tunnelpair:index:TunnelPair toy",
        ]);
        const a = mine.find((r) => r.name === "toy-a-doolittle")!;
        expect(a.parent).toBe(res.getUrn());
        // the connection carries the key: secret as a whole, never in plain text on the wire
        expect(isSecret(a.object.connection)).toBe(true);
        expect(JSON.stringify(mine.filter((r) => !isSecret(r.object.connection)).map((r) => r.object))).not.toContain("stand-in key");
        expect(a.object.create).toEqual(expect.stringContaining("link tunl1 130.88.198.58 130.88.196.129 inherit"));
        expect(a.object.create).toEqual(expect.stringContaining("addr 10.0.0.1/30 tunl1 - prefixroute"));
        const state = res.getState()!.toJavaScript() as Record<string, unknown>;
        expect(Object.keys(state).sort()).toEqual(["a", "b", "tag", "verified"]);
        expect(state.tag).toBe("tunnelpair:dev/toy");
    });

    it("at preview, with the hosts' addresses not known yet: the Commands, their scripts unknown", async () => {
        const before = engine.registrations.length;
        await rpc(plugin.client, "construct", constructRequest(engine, "later", toyInputs("10.0.0.1", outputValue("stand-in key", true), () => outputValue()), true));
        const mine = engine.registrations.slice(before).filter((r) => r.type === "command:remote:Command");
        expect(mine.map((r) => r.name).sort()).toEqual(["later-a-doolittle", "later-b-calculon", "later-verify"]);
        expect(mine.map((r) => r.object.create)).toEqual([unknownValue, unknownValue, unknownValue]);
    });
});

// A refused Construct ends the plugin's program, as a refused component ends `pulumi up`: the
// plugin fails every call still in flight with it. Each refusal gets a plugin of its own.
describe("a refused Construct", () => {
    let engine: TestEngine;
    let plugin: Plugin;
    beforeEach(async () => {
        engine = await startTestEngine();
        plugin = await startPlugin(root, engine.address);
    });
    afterEach(async () => {
        plugin.stop();
        await engine.stop();
    });

    it("refuses a bad value in Construct before registering a Command, naming the field and value", async () => {
        const failed = await rpc(plugin.client, "construct", constructRequest(engine, "bad", toyInputs("10.0.9.1"), true)).then(
            () => undefined,
            (e: Error) => e,
        );
        expect(failed?.message).toMatch(/tunnelAddress.*10\.0\.9\.1/);
        expect(engine.registrations.filter((r) => r.type === "command:remote:Command")).toEqual([]);
    });

    it("refuses an endpoint that arrives as one secret, naming the field", async () => {
        const failed = await rpc(plugin.client, "construct", constructRequest(engine, "whole", toyInputs("10.0.0.1", legacySecret("stand-in key")), false)).then(
            () => undefined,
            (e: Error) => e,
        );
        // the engine prints each field of an InputPropertiesError, carried in the status details
        expect(failed?.message).toMatch(/INVALID_ARGUMENT: TunnelPair whole: invalid arguments/);
        expect(propertyErrors(failed as ServiceError)).toEqual([
            { propertyPath: "a", reason: expect.stringMatching(/^must be a plain object when the component is made, found an Output/) },
            { propertyPath: "b", reason: expect.stringMatching(/^must be a plain object/) },
        ]);
        expect(engine.registrations).toEqual([]);
    });
});
