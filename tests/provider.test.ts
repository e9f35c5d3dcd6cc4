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
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
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
    const host = (name: string, a: string) => ({
        name,
        connection: { host: address(a), user: "root", privateKey: key },
        underlay: { interface: "eth0", address: address(a) },
    });
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

/** `${name}` interpolations of a YAML program's config, with each value as the YAML runtime sends it. */
function interpolate(v: unknown, config: Record<string, unknown>): unknown {
    if (typeof v === "string") {
        const m = /^\$\{(\w+)\}$/.exec(v);
        if (!m) return v;
        if (!(m[1] in config)) throw new Error(`the example interpolates \${${m[1]}}, which it does not declare`);
        return config[m[1]];
    }
    if (Array.isArray(v)) return v.map((x) => interpolate(x, config));
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, interpolate(x, config)]));
    return v;
}

interface SchemaProp {
    type?: string;
    $ref?: string;
    items?: SchemaProp;
}
interface SchemaType {
    properties?: Record<string, SchemaProp>;
    required?: string[];
    enum?: { name?: string; value: string }[];
}
interface ServedSchema {
    resources: Record<string, { inputProperties: Record<string, SchemaProp>; requiredInputs: string[] }>;
    types: Record<string, SchemaType>;
}

/** What a program's value does not fit in the schema: unknown or missing fields, wrong kinds. */
function misfits(schema: ServedSchema, props: Record<string, SchemaProp>, required: string[], value: Record<string, unknown>, at: string): string[] {
    const out: string[] = [];
    for (const r of required) if (!(r in value)) out.push(`${at}${r}: required, missing`);
    for (const [k, v] of Object.entries(value)) {
        const p = props[k];
        if (!p) out.push(`${at}${k}: not in the schema`);
        else out.push(...fits(schema, p, v, `${at}${k}`));
    }
    return out;
}
function fits(schema: ServedSchema, p: SchemaProp, v: unknown, at: string): string[] {
    if (isOutputValue(v)) return [];
    if (p.$ref) {
        const t = schema.types[p.$ref.replace("#/types/", "")];
        if (t.enum) return t.enum.some((e) => e.value === v) ? [] : [`${at}: ${JSON.stringify(v)} is not one of the enum's values`];
        return v !== null && typeof v === "object"
            ? misfits(schema, t.properties ?? {}, t.required ?? [], v as Record<string, unknown>, `${at}.`)
            : [`${at}: not an object`];
    }
    if (p.type === "array") return Array.isArray(v) ? v.flatMap((x, i) => fits(schema, p.items!, x, `${at}[${i}]`)) : [`${at}: not a list`];
    const kind = p.type === "integer" ? "number" : p.type;
    return typeof v === kind ? [] : [`${at}: ${JSON.stringify(v)} is not a ${p.type}`];
}
const isOutputValue = (v: unknown) => typeof v === "object" && v !== null && (v as Record<string, unknown>)[specialSigKey] === specialOutputValueSig;

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

    let schema: ServedSchema;
    it("answers GetSchema with the schema the analyzer infers", async () => {
        const res = await rpc<providerProto.GetSchemaRequest, providerProto.GetSchemaResponse>(
            plugin.client,
            "getSchema",
            new providerProto.GetSchemaRequest().setVersion(0),
        );
        const served = JSON.parse(res.getSchema());
        schema = served;
        const inProcess = JSON.parse(await new ComponentProvider({ components: [TunnelPair], dirname: root, name: "tunnelpair" }).getSchema());
        expect(served.name).toBe("tunnelpair");
        expect(Object.keys(served.resources)).toEqual(["tunnelpair:index:TunnelPair"]);
        expect(served.resources["tunnelpair:index:TunnelPair"].isComponent).toBe(true);
        expect(served).toEqual(inProcess);
    });

    it("constructs the YAML example's pair, its values sent as the YAML runtime sends them", async () => {
        const program = YAML.parse(fs.readFileSync(path.join(root, "examples", "yaml", "Pulumi.yaml"), "utf8"));
        const resource = program.resources.toy;
        // `tunnelpair:TunnelPair` is YAML's short form of the token in the schema
        expect(resource.type.replace(/^(\w+):(\w+)$/, "$1:index:$2")).toBe("tunnelpair:index:TunnelPair");
        expect(program.packages.tunnelpair).toBe("../..");
        // a secret config value is a secret Output to the program
        const inputs = interpolate(resource.properties, { deployKey: outputValue("stand-in key", true) }) as Record<string, unknown>;
        const r = schema.resources["tunnelpair:index:TunnelPair"];
        expect(misfits(schema, r.inputProperties, r.requiredInputs, inputs, "")).toEqual([]);
        const res = await rpc<providerProto.ConstructRequest, providerProto.ConstructResponse>(
            plugin.client,
            "construct",
            constructRequest(engine, "toy-yaml", inputs, false),
        );
        const mine = engine.registrations.filter((x) => x.name.startsWith("toy-yaml"));
        expect(mine.map((x) => x.name).sort()).toEqual(["toy-yaml", "toy-yaml-a-doolittle", "toy-yaml-b-calculon"]);
        expect(isSecret(mine.find((x) => x.name === "toy-yaml-a-doolittle")!.object.connection)).toBe(true);
        expect(Object.keys(res.getState()!.toJavaScript()).sort()).toEqual(expect.arrayContaining(Object.keys(program.outputs)));
    });

    it("has every class, keyword and enum member the Python example uses, as the generated SDK names them", () => {
        // the calls of the example, read by Python's own parser
        const read = `import ast, json, sys
calls, attrs = [], []
for n in ast.walk(ast.parse(open(sys.argv[1]).read())):
    if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name) and n.func.value.id == "tunnelpair":
        calls.append({"name": n.func.attr, "keywords": [k.arg for k in n.keywords]})
    if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute) and isinstance(n.value.value, ast.Name) and n.value.value.id == "tunnelpair":
        attrs.append([n.value.attr, n.attr])
print(json.dumps({"calls": calls, "attrs": attrs}))`;
        const used = JSON.parse(execFileSync("python3", ["-c", read, path.join(root, "examples", "python", "__main__.py")], { encoding: "utf8" })) as {
            calls: { name: string; keywords: string[] }[];
            attrs: string[][];
        };
        // Python names: a schema property in snake case, an input type with "Args" added, an enum member in upper case
        const snake = (n: string) => n.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
        const problems: string[] = [];
        for (const call of used.calls) {
            const t = call.name === "TunnelPair" ? undefined : schema.types[`tunnelpair:index:${call.name.replace(/Args$/, "")}`];
            const props = call.name === "TunnelPair" ? schema.resources["tunnelpair:index:TunnelPair"].inputProperties : t?.properties;
            const required = call.name === "TunnelPair" ? schema.resources["tunnelpair:index:TunnelPair"].requiredInputs : (t?.required ?? []);
            if (!props || (call.name !== "TunnelPair" && !call.name.endsWith("Args"))) {
                problems.push(`tunnelpair.${call.name}: no such class`);
                continue;
            }
            const names = new Map(Object.keys(props).map((k) => [snake(k), k]));
            for (const k of call.keywords) if (!names.has(k)) problems.push(`tunnelpair.${call.name}(${k}=...): no such property`);
            for (const r of required) if (!call.keywords.includes(snake(r))) problems.push(`tunnelpair.${call.name}: ${snake(r)} is required`);
        }
        for (const [type, member] of used.attrs) {
            const t = schema.types[`tunnelpair:index:${type}`];
            if (!t?.enum?.some((e) => (e.name ?? e.value).toUpperCase() === member)) problems.push(`tunnelpair.${type}.${member}: no such enum member`);
        }
        expect(used.calls.map((c) => c.name).sort()).toEqual(["ConnectionArgs", "EndpointArgs", "EndpointArgs", "HostArgs", "TunnelPair", "UnderlayArgs"]);
        expect(problems).toEqual([]);
    });

    it("constructs a pair: the component and one Command per host, the key secret on the wire", async () => {
        const res = await rpc<providerProto.ConstructRequest, providerProto.ConstructResponse>(
            plugin.client,
            "construct",
            constructRequest(engine, "toy", toyInputs(), false),
        );
        expect(res.getUrn()).toBe("urn:pulumi:dev::consumer::tunnelpair:index:TunnelPair::toy");
        const mine = engine.registrations.filter((r) => r.name === "toy" || (r.name.startsWith("toy-") && !r.name.startsWith("toy-yaml")));
        expect(mine.map((r) => `${r.type} ${r.name}`).sort()).toEqual([
            "command:remote:Command toy-a-doolittle",
            "command:remote:Command toy-b-calculon",
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
        await rpc(
            plugin.client,
            "construct",
            constructRequest(
                engine,
                "later",
                toyInputs("10.0.0.1", outputValue("stand-in key", true), () => outputValue()),
                true,
            ),
        );
        const mine = engine.registrations.slice(before).filter((r) => r.type === "command:remote:Command");
        expect(mine.map((r) => r.name).sort()).toEqual(["later-a-doolittle", "later-b-calculon"]);
        expect(mine.map((r) => r.object.create)).toEqual([unknownValue, unknownValue]);
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
        const failed = await rpc(
            plugin.client,
            "construct",
            constructRequest(engine, "whole", toyInputs("10.0.0.1", legacySecret("stand-in key")), false),
        ).then(
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
