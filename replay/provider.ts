// What the command provider does with a changed Command (pulumi-command 1.2.1's source,
// provider/pkg/provider/remote/; README "Design"): only `triggers` replaces; any other change is an in-place
// update that runs `update` (else `create`) with the new inputs; `delete` runs only on
// destroy or replacement, with the stored inputs.
import { isDeepStrictEqual } from "util";

export type ProviderAction = "same" | "update" | "replace";

export function diffCommand(before: Record<string, unknown>, after: Record<string, unknown>): ProviderAction {
    if (!isDeepStrictEqual(before.triggers ?? [], after.triggers ?? [])) return "replace";
    return isDeepStrictEqual(before, after) ? "same" : "update";
}
