"""The toy pair from a Python program.

`pulumi package add <the tunnelpair folder>` (run here) generates the `pulumi_tunnelpair`
SDK from the component's schema and adds it to this project; the key is a secret of this
stack: `pulumi config set --secret deployKey "$(cat ~/.ssh/tunnelpair)"`.
"""
import pulumi
import pulumi_tunnelpair as tunnelpair

key = pulumi.Config().require_secret("deployKey")


def host(name: str, address: str) -> tunnelpair.HostArgs:
    return tunnelpair.HostArgs(
        name=name,
        connection=tunnelpair.ConnectionArgs(host=address, private_key=key),
        underlay=tunnelpair.UnderlayArgs(interface="eth0", address=address),
    )


toy = tunnelpair.TunnelPair(
    "toy",
    a=tunnelpair.EndpointArgs(
        host=host("doolittle", "130.88.198.58"),
        network="10.0.0.0/30",
        tunnel_address="10.0.0.1",
        routes=["10.0.2.0/24"],
    ),
    b=tunnelpair.EndpointArgs(
        host=host("calculon", "130.88.196.129"),
        network="10.0.0.0/30",
        tunnel_address="10.0.0.2",
        routes=["10.0.1.0/24"],
    ),
    firewall=tunnelpair.Firewall.OWNED,
)

pulumi.export("tag", toy.tag)
pulumi.export("verified", toy.verified)
