// What the version before persistence (commit 2e9dd54: no systemd units, no $STATE/converge)
// recorded for a stack, as a replay engine's recording pointed at a running lab: the upgrade
// proof (lab/upgrade.ts) puts its Commands into the engine's state with a first `up`, exactly
// as that version left them, then replays today's program against that state.
//
// The recording is a fixture (tests/fixtures/upgrade/<stack>-2e9dd54.json), made once from the
// old tree by tests/fixtures/upgrade/regenerate.sh: the tests never read git history. It holds
// the lab world's management addresses as the old lab gave them (they are in the Commands'
// triggers and in the probe's digest) and placeholders for the lab's keys, which every boot
// makes anew; both are checked and filled in here.
import * as fs from "fs";
import * as path from "path";
import { LabTarget } from "../replay/overlay";
import { Recording } from "../replay/record";

/** The commit whose recordings the fixtures hold: the last version deployed before persistence. */
export const oldVersion = "2e9dd54";

/** The fixture's shape, as regenerate.sh's record-old.ts writes it. */
interface OldRecordingFile {
    /** The strings standing for the lab's client key and host key. */
    readonly placeholders: { readonly privateKey: string; readonly hostPublicKey: string };
    /** The SSH targets the old recording was made for: each host's management address and port. */
    readonly hosts: Record<string, { readonly address: string; readonly port: number }>;
    readonly recording: Recording;
}

export const oldRecordingFile = (stack: string) => path.join(__dirname, "..", "tests", "fixtures", "upgrade", `${stack}-${oldVersion}.json`);

/**
 * The old version's recording of `stack`, its connections pointed at `lab` (its keys in place of
 * the placeholders). Refused when the lab's hosts are not where the recording was made for: the
 * triggers would then differ and the engine would replace every Command instead of updating it,
 * which is not the upgrade a user makes (regenerate the fixture after changing the world).
 */
export function loadOldRecording(stack: string, lab: LabTarget): Recording {
    const file = oldRecordingFile(stack);
    const fixture = JSON.parse(fs.readFileSync(file, "utf8")) as OldRecordingFile;
    for (const [host, t] of Object.entries(fixture.hosts)) {
        const now = lab.hosts[host];
        if (!now || now.address !== t.address || now.port !== t.port)
            throw new Error(
                `${file}: recorded for ${host} at ${t.address}:${t.port}, the lab has ${now ? `${now.address}:${now.port}` : "no such host"}; run tests/fixtures/upgrade/regenerate.sh`,
            );
    }
    const { privateKey, hostPublicKey } = fixture.placeholders;
    const fill = (v: unknown): unknown => {
        if (v === privateKey) return lab.privateKey;
        if (v === hostPublicKey) return lab.hostPublicKey;
        if (Array.isArray(v)) return v.map(fill);
        if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fill(x)]));
        return v;
    };
    const recording = fill(fixture.recording) as Recording;
    // a placeholder inside a longer text (a script) would reach a host as it is
    const left = JSON.stringify(recording);
    for (const p of [privateKey, hostPublicKey]) if (left.includes(JSON.stringify(p).slice(1, -1))) throw new Error(`${file}: ${p} is left inside a value`);
    return recording;
}
