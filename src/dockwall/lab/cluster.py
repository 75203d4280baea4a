"""A Swarm cluster lab: N Docker hosts, each in its own namespace with its own dockerd,
behind the one lab internet, joined into one Swarm with an overlay network.

Node 1 is an ordinary lab (host, internet, listeners) named after the cluster; nodes
2..N are hosts only, named `<cluster>n<i>`, whose uplinks end in node 1's internet
namespace, which routes between them (each node has its own /30, all in
198.51.100.0/24): the internet namespace sits in front of every node, as a client of the
routing mesh would. Swarm needs dockerd without --live-restore; a node's dockerd gets a
proxy at a closed lab port, so the image "pull" Swarm tries for every task fails at once
instead of resolving a registry's name outside the lab.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from dockwall.errors import DockwallError
from dockwall.lab import netns
from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.runner import Runner, SubprocessRunner

MAX_NODES = 5
CLUSTER_FILE = "cluster.json"
OVERLAY = "appnet"
OVERLAY_V4 = "10.20.0.0/24"
CLOSED_PROXY = f"http://{t.INET_UPLINK_V4}:9"
NODE_DOCKER_HOST = "tcp://127.0.0.1:2375"
SWARM_TIMEOUT = 60.0


@dataclass(frozen=True)
class NodeAddress:
    """A node's end of its uplink and the internet's end; node 1 keeps the lab's own."""

    host: str
    inet: str
    inet_if: str


def node_address(index: int) -> NodeAddress:
    """Node 1: 198.51.100.0/30 (the plain lab's); node i: 198.51.100.(4i)/30 from i = 2,
    skipping .4/30, whose broadcast address would be the internet host 198.51.100.7."""
    if index == 1:
        return NodeAddress(t.HOST_UPLINK_V4, t.INET_UPLINK_V4, t.UPLINK_IF)
    base = 4 * index
    return NodeAddress(f"198.51.100.{base + 2}", f"198.51.100.{base + 1}", f"node{index}")


class SwarmNode(Lab):
    """A lab host that runs Swarm: no live-restore, registry traffic kept in the lab."""

    def dockerd_argv(self) -> list[str]:
        """Also on the node's own loopback, so one global service reaches each node's
        dockerd at one address (the lab's sockets have a path per node); only the node's
        namespace, and containers sharing it, can connect there."""
        argv = [arg for arg in super().dockerd_argv() if arg != "--live-restore"]
        return [*argv, "--host", NODE_DOCKER_HOST]

    def dockerd_env(self) -> dict[str, str]:
        return {"HTTP_PROXY": CLOSED_PROXY, "HTTPS_PROXY": CLOSED_PROXY, "NO_PROXY": ""}


class WorkerNode(SwarmNode):
    """Nodes 2..N: a host namespace wired into node 1's internet namespace."""

    def __init__(self, name: str, index: int, inet_ns: str, runner: Runner | None = None):
        super().__init__(name, runner)
        self.index = index
        self.inet_ns = inet_ns

    def up(self, *, samples: bool = False) -> None:
        if self.exists():
            raise DockwallError(f"lab {self.names.name!r} is already up")
        try:
            self.names.state_dir.mkdir(parents=True, exist_ok=True)
            self.names.data_dir.mkdir(parents=True, exist_ok=True)
            self.runner.run(["ip", "netns", "add", self.names.host_ns])
            host = netns.in_ns(self.names.host_ns)
            host.run(["sysctl", "-q", "-w", *netns.NO_DAD])
            host.run(["ip", "link", "set", "lo", "up"])
            self.wire()
            self.start_dockerd()
            self.import_image()
        except BaseException:
            self.down()
            raise

    def wire(self) -> None:
        address = node_address(self.index)
        host_ns, r = self.names.host_ns, self.runner
        r.run(["ip", "-n", host_ns, "link", "add", t.UPLINK_IF, "type", "veth", "peer",
               "name", address.inet_if, "netns", self.inet_ns])  # fmt: skip
        r.run(["ip", "-n", host_ns, "addr", "add", f"{address.host}/30", "dev", t.UPLINK_IF])
        r.run(["ip", "-n", self.inet_ns, "addr", "add", f"{address.inet}/30", "dev",
               address.inet_if])  # fmt: skip
        r.run(["ip", "-n", host_ns, "link", "set", t.UPLINK_IF, "up"])
        r.run(["ip", "-n", self.inet_ns, "link", "set", address.inet_if, "up"])
        r.run(["ip", "-n", host_ns, "route", "add", "default", "via", address.inet])


class Cluster:
    """Brings a whole cluster up and down; `down` works on a half-built or crashed one."""

    def __init__(self, name: str, nodes: int = 3, runner: Runner | None = None) -> None:
        if not 2 <= nodes <= MAX_NODES:
            raise DockwallError(f"--nodes {nodes}: a cluster lab has 2 to {MAX_NODES} nodes")
        if len(name) > 8:
            raise DockwallError(f"cluster name {name!r}: at most 8 characters (nodes add 'n2')")
        self.runner = runner or SubprocessRunner()
        self.first = SwarmNode(name, self.runner)
        inet = self.first.names.inet_ns
        self.nodes: list[SwarmNode] = [self.first] + [
            WorkerNode(f"{name}n{i}", i, inet, self.runner) for i in range(2, nodes + 1)
        ]

    def up(self) -> None:
        try:
            self.first.up(samples=False)
            (self.first.names.state_dir / CLUSTER_FILE).write_text(
                json.dumps({"nodes": [n.names.name for n in self.nodes]})
            )
            netns.in_ns(self.first.names.inet_ns).run(
                ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]
            )
            for node in self.nodes[1:]:
                node.up()
            self.form_swarm()
        except BaseException:
            self.down()
            raise

    def docker(self, node: Lab, *args: str) -> str:
        return node.host.run(["docker", *args], timeout=SWARM_TIMEOUT).stdout.strip()

    def form_swarm(self) -> None:
        """`swarm init` on node 1, `join` on the others, then an attachable overlay."""
        manager = node_address(1).host
        self.docker(self.first, "swarm", "init", "--advertise-addr", manager)
        token = self.docker(self.first, "swarm", "join-token", "-q", "worker")
        for node in self.nodes[1:]:
            self.docker(node, "swarm", "join", "--token", token, f"{manager}:2377")
        self.wait_ready()
        self.docker(self.first, "network", "create", "--driver", "overlay", "--attachable",
                    "--subnet", OVERLAY_V4, OVERLAY)  # fmt: skip

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SWARM_TIMEOUT
        while time.monotonic() < deadline:
            states = self.docker(self.first, "node", "ls", "--format", "{{.Status}}").split()
            if states.count("Ready") == len(self.nodes):
                return
            time.sleep(0.5)
        raise DockwallError(f"swarm nodes not ready after {SWARM_TIMEOUT:.0f} s: {states}")

    def down(self) -> None:
        for node in reversed(self.nodes):
            node.down()


def cluster_nodes(name: str) -> list[str]:
    """The node labs a cluster named `name` made (from its record), node 1 last."""
    record = Lab(name).names.state_dir / CLUSTER_FILE
    try:
        nodes = json.loads(record.read_text())["nodes"]
    except (OSError, ValueError, KeyError, TypeError):
        return [name]
    return [str(n) for n in reversed(nodes) if isinstance(n, str)]
