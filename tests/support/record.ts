// Records the program under mocks with a given configuration (see replay/record.ts).
import { configValues } from "../../components/config";
import { deployStack } from "../../components/program";
import { StackFile } from "../../components/stackFile";
import { Recording, recordProgram, RecordedResource } from "../../replay/record";
import { RawConfig } from "./toy";

export function record(cfg: RawConfig, opts: { stack?: string; preview?: boolean; secretKeys?: string[] } = {}): Promise<Recording> {
    return recordProgram({
        stack: opts.stack ?? "toy",
        preview: opts.preview,
        config: configValues(cfg),
        secretKeys: opts.secretKeys,
        program: deployStack,
    });
}

export function commands(r: Recording): RecordedResource[] {
    return r.resources.filter((x) => x.type === "command:remote:Command");
}

/** The Commands that change hosts (one per host a pair touches): they have a delete. */
export function hostCommands(r: Recording): RecordedResource[] {
    return commands(r).filter((x) => x.inputs.delete !== undefined);
}

/** A value shellQuote made ('it'\''s'), as the shell reads it. */
const unquote = (q: string): string => q.slice(1, -1).split("'\\''").join("'");

/**
 * The script a Command runs (`/bin/sh -c '...'`, with `sudo -n` or not): a persisted pair's is
 * the text it holds in TP_SCRIPT (b's probe, between it and its eval, left out).
 */
export function scriptOf(command: string): string {
    const apply = unquote(command.slice(command.indexOf("'")));
    const held = /^TP_SCRIPT=('(?:[^']|'\\'')*')\n(?:# [^\n]*\nverify_pair\(\) \([^]*\n\)\n)?eval "\$TP_SCRIPT"\n$/.exec(apply);
    return held ? unquote(held[1]) : apply;
}

/** The object lines a create script brings about (its DESIRED block). */
export function desiredLines(createCommand: string): string[] {
    const m = /^DESIRED='([^']*)'$/m.exec(scriptOf(createCommand));
    if (!m) throw new Error("no DESIRED block in the command");
    return m[1].split("\n");
}

/** Records the program with a stack file's whole configuration and secret keys, as `pulumi preview` runs it. */
export function recordStackFile(sf: StackFile, opts: { preview?: boolean } = {}): Promise<Recording> {
    return recordProgram({ stack: sf.stack, preview: opts.preview, config: sf.config, secretKeys: sf.secretKeys, program: deployStack });
}
