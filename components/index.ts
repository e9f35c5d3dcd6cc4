// The package's public surface, for use from other Pulumi programs.
export { TunnelPair, TunnelPairArgs, EndpointOutputs, connectionArgs } from "./tunnelPair";
// The args' nested types under their TypeScript names, and the enums (the schema calls them
// Endpoint, Host...: see args.ts). Protocol is the model's union too, the same four values.
export type {
    EndpointArgs,
    HostArgs,
    ConnectionArgs,
    JumpHostArgs,
    UnderlayArgs,
    ClientArgs,
    ComputeNodeArgs,
    LocalAddressArgs,
    AdmitRuleArgs,
    ForwardRuleArgs,
    MasqueradeArgs,
} from "./args";
export { Converge, Firewall, Mode, Persist, Protocol, ReversePathFilter } from "./args";
export { validateConfig, ConfigError, StackConfig, ValidateOptions } from "./validate";
export { planEndpoint, planPair, PlannedHost, HostPlan, HostObject, objectLine, ownerTag, stateRoot } from "./plan";
export { renderApply, renderRemove, commandString, shellQuote } from "./render";
export * from "./model";
