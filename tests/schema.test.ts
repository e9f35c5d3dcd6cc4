// Issue 12, item 4, what can be proven without the CLI: the schema Pulumi's own component
// analyzer (@pulumi/pulumi/provider/experimental) infers from TunnelPairArgs, which is what
// `pulumi package add` gives Python, Go, C#, Java and YAML programs. Every field, its type,
// optionality, plainness and doc comment; pinned by a snapshot.
import { ComponentProvider } from "@pulumi/pulumi/provider/experimental";
import * as path from "path";
import { TunnelPair } from "../components";

interface Prop {
    type?: string;
    $ref?: string;
    optional?: boolean;
    plain?: boolean;
    description?: string;
    items?: Prop;
    enum?: { value: string }[];
}
interface Schema {
    name: string;
    resources: Record<string, { inputProperties: Record<string, Prop>; requiredInputs: string[]; properties: Record<string, Prop> }>;
    types: Record<string, { properties?: Record<string, Prop>; required?: string[]; enum?: { value: string }[] }>;
}

let schema: Schema;
beforeAll(async () => {
    const provider = new ComponentProvider({ components: [TunnelPair], dirname: path.join(__dirname, ".."), name: "tunnelpair" });
    schema = JSON.parse(await provider.getSchema()) as Schema;
}, 60_000);

const type = (name: string) => schema.types[`tunnelpair:index:${name}`];

describe("the component schema the SDK's analyzer infers", () => {
    it("has TunnelPair with its args and outputs", () => {
        const r = schema.resources["tunnelpair:index:TunnelPair"];
        expect(Object.keys(r.inputProperties).sort()).toEqual(["a", "b", "converge", "firewall", "key", "mode", "persist", "repair", "stack", "verify"]);
        expect(r.requiredInputs).toEqual(["a", "b"]);
        expect(Object.keys(r.properties).sort()).toEqual(["a", "b", "tag", "verified"]);
        expect(r.inputProperties.firewall).toMatchObject({ $ref: "#/types/tunnelpair:index:Firewall", optional: true });
        expect(r.inputProperties.mode).toMatchObject({ $ref: "#/types/tunnelpair:index:Mode", optional: true });
        expect(r.inputProperties.key).toMatchObject({ type: "number", optional: true }); // (the schema has no integer; validation takes whole numbers only)
    });
    it("keeps graph-shaping fields plain and every other value an input", () => {
        const ep = type("Endpoint").properties!;
        expect([ep.clients.plain, ep.computeNodes.plain, type("Host").properties!.name.plain]).toEqual([true, true, true]);
        expect([ep.tunnelAddress.plain, ep.routes.plain, ep.mtu.plain, type("Connection").properties!.host.plain]).toEqual([
            undefined,
            undefined,
            undefined,
            undefined,
        ]);
        expect(ep.routes).toMatchObject({ type: "array", items: { type: "string" } });
        // a jump host's jumpSessions draws the lanes of the Commands behind it: plain, optional, its default said
        expect(type("JumpHost").properties!.jumpSessions).toMatchObject({ type: "number", plain: true, optional: true });
        expect(type("JumpHost").properties!.jumpSessions.description).toMatch(/Default: 8, below sshd's\s+default MaxStartups/);
        expect(type("JumpHost").required).toEqual(["host"]);
        expect(type("Endpoint").required).toEqual(["host", "tunnelAddress"]);
    });
    it("gives every enum its values", () => {
        expect(type("Firewall").enum!.map((e) => e.value)).toEqual(["owned", "open", "none"]);
        expect(
            type("Persist")
                .enum!.map((e) => e.value)
                .sort(),
        ).toEqual(["boot", "none"]);
        expect(
            type("Converge")
                .enum!.map((e) => e.value)
                .sort(),
        ).toEqual(["always", "onchange"]);
        expect(type("Protocol").enum!.map((e) => e.value)).toEqual(["tcp", "udp", "icmp", "all"]);
        expect(type("ReversePathFilter").enum!.map((e) => e.value)).toEqual(["keep", "loose"]);
        expect(type("Mode").enum!.map((e) => e.value)).toEqual(["ipip", "gre", "sit", "ipip6", "ip6ip6"]);
    });
    it("documents every field, and says of each credential that it is held as a secret (the analyzer cannot mark one)", () => {
        const undocumented = Object.entries(schema.types).flatMap(([t, d]) =>
            Object.entries(d.properties ?? {})
                .filter(([, p]) => !p.description)
                .map(([k]) => `${t}.${k}`),
        );
        expect(undocumented).toEqual([]);
        for (const key of ["privateKey", "privateKeyPassword", "password"])
            expect(type("JumpHost").properties![key].description).toContain("Always held as a Pulumi secret");
    });
    it("names the types without an Args suffix, which each language's SDK adds itself (Python's EndpointArgs)", () => {
        expect(Object.keys(schema.types).filter((t) => t.endsWith("Args"))).toEqual([]);
        expect(Object.keys(schema.types)).toEqual(
            expect.arrayContaining(["tunnelpair:index:Endpoint", "tunnelpair:index:Host", "tunnelpair:index:Connection"]),
        );
    });
    it("matches the snapshot", () => {
        expect(schema).toMatchSnapshot();
    });
});
