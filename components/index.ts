// The package's public surface, for use from other Pulumi programs.
export { TunnelPair, TunnelPairArgs, EndpointOutputs, connectionArgs } from "./tunnelPair";
export { validateConfig, ConfigError, StackConfig, ValidateOptions } from "./validate";
export { planEndpoint, planPair, PlannedHost, HostPlan, HostObject, objectLine, ownerTag, stateRoot } from "./plan";
export { renderApply, renderRemove, commandString, shellQuote } from "./render";
export * from "./model";
