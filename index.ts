// The Pulumi program: see components/program.ts.
import { deployStack } from "./components/program";

export const { tunnels } = deployStack();
