"""The nftables backend against real packets in a lab of its own.

Rulesets are built by hand from the lab's real containers (the compiler is not needed),
loaded through NftablesBackend inside the lab's Docker host, and checked with probes.
"""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace

import pytest

from dockwall.backends.nftables import NftablesBackend, docker_uses_nftables
from dockwall.compile.ir import Allow, Endpoint, Filter, Guard, PeerAllow, PortMatch, Ruleset
from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober
from dockwall.model.state import Bridge, Network
from dockwall.runner import SubprocessRunner, netns_path
from tests.conftest import lab_name, own_lab

pytestmark = pytest.mark.lab

ECHO_PORT = 7007
ECHO_SERVER = """
import socket, sys, time
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
server.settimeout(60)
conn, _ = server.accept()
conn.settimeout(60)
while data := conn.recv(64):
    conn.sendall(data)
"""
ECHO_CLIENT = """
import socket, sys
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
for line in sys.stdin:
    conn.sendall(line.strip().encode())
    print(conn.recv(64).decode(), flush=True)
"""


@pytest.fixture(scope="module")
def nft_lab() -> Iterator[Lab]:
    with own_lab(lab_name("p")) as lab:
        yield lab


@pytest.fixture
def backend(nft_lab: Lab) -> Iterator[NftablesBackend]:
    """Every test starts and ends without the table, so none leans on another's rules."""
    backend = NftablesBackend(nft_lab.host)
    backend.apply(backend.plan_reset())
    try:
        yield backend
    finally:
        backend.apply(backend.plan_reset())


@pytest.fixture
def prober(nft_lab: Lab) -> Prober:
    return Prober(nft_lab)


def nets(*texts: str) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(text) for text in texts)


def interface_of(network: dict[str, object]) -> str:
    """Docker's own name for the bridge, else the br-<12 hex of the id> it derives."""
    options = network.get("Options")
    named = options.get("com.docker.network.bridge.name") if isinstance(options, dict) else None
    return str(named or f"br-{str(network['Id'])[:12]}")


def bridges(lab: Lab) -> tuple[Bridge, ...]:
    with lab.client() as client:
        found = []
        for network in client.api.networks():
            if network["Driver"] == "bridge":
                configs = (network.get("IPAM") or {}).get("Config") or []
                subnets = nets(*(c["Subnet"] for c in configs if c.get("Subnet")))
                found.append(Bridge(network["Name"], interface_of(network), subnets))
        return tuple(found)


def endpoints(lab: Lab, container: str) -> tuple[Endpoint, ...]:
    with lab.client() as client:
        found = []
        networks = client.api.inspect_container(container)["NetworkSettings"]["Networks"]
        for settings in networks.values():
            interface = interface_of(client.api.inspect_network(settings["NetworkID"]))
            for key in ("IPAddress", "GlobalIPv6Address"):
                if settings.get(key):
                    found.append(Endpoint(interface, ipaddress.ip_address(settings[key])))
        return tuple(found)


def guard(lab: Lab, name: str, ingress: Filter | None, egress: Filter | None) -> Guard:
    return Guard(name, name, "test", endpoints(lab, name), ingress, egress)


def ruleset(
    lab: Lab,
    *guards: Guard,
    default_ingress: Filter | None = None,
    default_egress: Filter | None = None,
) -> Ruleset:
    return Ruleset(bridges(lab), guards, default_ingress, default_egress)


DB_INGRESS = Filter(
    (
        Allow(
            peers=nets("192.0.2.100/32", "2001:db8:100::/64"),
            ports=(PortMatch("tcp", 5432, 5432),),
            original=True,
        ),
    )
)
WORKER_EGRESS = Filter(
    (
        Allow(
            peers=nets("203.0.113.0/24", "2001:db8:203::/48"), ports=(PortMatch("tcp", 443, 443),)
        ),
        Allow(peers=nets("203.0.113.20/32"), ports=(PortMatch("udp", 53, 53),)),
    )
)


def load(backend: NftablesBackend, rules: Ruleset) -> None:
    backend.apply(backend.plan(rules))


BRIDGE_NF = "/proc/sys/net/bridge/bridge-nf-call-iptables"
BRIDGE_NF6 = "/proc/sys/net/bridge/bridge-nf-call-ip6tables"


def bridge_netfilter(lab: Lab) -> tuple[str, str]:
    """Both switches as the lab's Docker host sees them (they are per namespace)."""
    return tuple(lab.host.run(["cat", path]).stdout.strip() for path in (BRIDGE_NF, BRIDGE_NF6))  # type: ignore[return-value]


def isolated(lab: Lab, allow_worker_to_db: bool) -> Ruleset:
    """No guards, peers isolated; optionally worker may reach db on 5432/tcp (both families)."""
    peers = tuple(
        PeerAllow(w.address, d.address, (PortMatch("tcp", 5432, 5432),))
        for w in endpoints(lab, "worker")
        for d in endpoints(lab, "db")
        if w.address.version == d.address.version
    )
    return replace(ruleset(lab), isolate_peers=True, peers=peers if allow_worker_to_db else ())


def peers_reachable(prober: Prober) -> tuple[bool, bool]:
    """worker -> db:5432 over IPv4, and over IPv6, on their shared network `shop`."""
    target = "container:db:5432/tcp"
    return prober.probe("container:worker", target), prober.probe("container:worker", target, 6)


def test_lab_docker_runs_the_iptables_firewall(nft_lab: Lab) -> None:
    assert not docker_uses_nftables(nft_lab.host)


def test_ingress_allowlist_by_source_on_a_published_port(
    nft_lab: Lab, backend: NftablesBackend, prober: Prober
) -> None:
    load(backend, ruleset(nft_lab, guard(nft_lab, "db", DB_INGRESS, None)))
    assert prober.probe("192.0.2.100", "host:5432/tcp")
    assert prober.probe("2001:db8:100::100", "host:5432/tcp")
    assert not prober.probe("192.0.2.7", "host:5432/tcp")
    assert not prober.probe("2001:db8:200::7", "host:5432/tcp")


def test_default_deny_ingress_holds_containers_without_a_guard(
    nft_lab: Lab, backend: NftablesBackend, prober: Prober
) -> None:
    rules = ruleset(nft_lab, guard(nft_lab, "db", DB_INGRESS, None), default_ingress=Filter())
    load(backend, rules)
    assert not prober.probe("192.0.2.100", "host:8080/tcp")
    assert not prober.probe("2001:db8:100::100", "host:8080/tcp")
    assert not prober.probe("192.0.2.100", "host:8053/udp")
    assert prober.probe("192.0.2.100", "host:5432/tcp")
    drops = [c for c in backend.counters() if c.where == "chain default-in"]
    assert drops and drops[0].packets > 0


def test_guards_without_a_filter_are_not_caught_by_the_defaults(
    nft_lab: Lab, backend: NftablesBackend, prober: Prober
) -> None:
    web = guard(nft_lab, "web", None, None)
    load(backend, ruleset(nft_lab, web, default_ingress=Filter(), default_egress=Filter()))
    assert prober.probe("192.0.2.7", "host:8080/tcp")
    assert prober.probe("container:web", "203.0.113.10:443/tcp")
    assert not prober.probe("container:worker", "203.0.113.10:443/tcp")
    assert not prober.probe("192.0.2.100", "host:5432/tcp")


def test_egress_allowlist_by_cidr_and_port(
    nft_lab: Lab, backend: NftablesBackend, prober: Prober
) -> None:
    load(backend, ruleset(nft_lab, guard(nft_lab, "worker", None, WORKER_EGRESS)))
    assert prober.probe("container:worker", "203.0.113.10:443/tcp")
    assert prober.probe("container:worker", "[2001:db8:203::10]:443/tcp")
    assert prober.probe("container:worker", "203.0.113.20:53/udp")
    assert not prober.probe("container:worker", "203.0.113.10:80/tcp")
    assert not prober.probe("container:worker", "[2001:db8:203::10]:80/tcp")
    assert not prober.probe("container:worker", "198.51.100.7:443/tcp")
    assert not prober.probe("container:worker", "203.0.113.10:53/udp")
    assert prober.probe("container:web", "203.0.113.10:80/tcp")


def test_container_to_host_egress_is_blocked(
    nft_lab: Lab, backend: NftablesBackend, prober: Prober
) -> None:
    service = f"{t.HOST_UPLINK_V4}:{t.HOST_SERVICE_PORT}/tcp"
    assert prober.probe("container:worker", service)
    load(backend, ruleset(nft_lab, guard(nft_lab, "worker", None, WORKER_EGRESS)))
    assert not prober.probe("container:worker", service)
    assert not prober.probe("container:worker", f"172.30.0.1:{t.HOST_SERVICE_PORT}/tcp")
    assert prober.probe("container:web", service)


def test_established_connections_survive_a_tightening_apply(
    nft_lab: Lab, backend: NftablesBackend, prober: Prober
) -> None:
    server = start(netns_path(nft_lab.names.inet_ns), ECHO_SERVER, "203.0.113.10")
    wait_listening(netns_path(nft_lab.names.inet_ns))
    client = start(prober.container_netns("worker"), ECHO_CLIENT, "203.0.113.10")
    try:
        assert exchange(client, "before") == "before"
        load(backend, ruleset(nft_lab, guard(nft_lab, "worker", None, Filter())))
        assert not prober.probe("container:worker", "203.0.113.10:443/tcp")
        assert exchange(client, "after") == "after"
    finally:
        for process in (client, server):
            process.kill()
            process.wait(timeout=10)


def start(netns: str, program: str, address: str) -> subprocess.Popen[str]:
    """A helper program we own and kill by its handle; pipes let the test drive it."""
    argv = [sys.executable, "-c", program, address, str(ECHO_PORT)]
    return subprocess.Popen(
        SubprocessRunner(netns=netns).argv_for(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_listening(netns: str) -> None:
    runner = SubprocessRunner(netns=netns)
    for _ in range(50):
        if f":{ECHO_PORT}" in runner.run(["ss", "-ltnH"]).stdout:
            return
        subprocess.run(["sleep", "0.1"], check=True)
    raise AssertionError("echo server did not start")


def exchange(client: subprocess.Popen[str], text: str) -> str:
    assert client.stdin is not None and client.stdout is not None
    client.stdin.write(text + "\n")
    client.stdin.flush()
    return client.stdout.readline().strip()


def test_apply_twice_is_in_sync_and_reset_restores_traffic(
    nft_lab: Lab, backend: NftablesBackend, prober: Prober
) -> None:
    rules = ruleset(nft_lab, guard(nft_lab, "db", DB_INGRESS, None), default_ingress=Filter())
    load(backend, rules)
    assert backend.installed()
    assert backend.plan(rules).in_sync
    load(backend, rules)
    assert backend.plan(rules).in_sync
    assert not prober.probe("192.0.2.7", "host:5432/tcp")
    backend.apply(backend.plan_reset())
    assert not backend.installed()
    assert backend.plan_reset().in_sync
    assert prober.probe("192.0.2.7", "host:5432/tcp")
    assert prober.probe("192.0.2.100", "host:8080/tcp")
    tables = nft_lab.host.run(["nft", "list", "tables"]).stdout.split("\n")
    assert "table inet dockwall" not in tables
    assert "table ip filter" in tables


def test_isolated_peers_need_a_peer_allow(
    nft_lab: Lab, backend: NftablesBackend, prober: Prober
) -> None:
    assert bridge_netfilter(nft_lab) == ("1", "1"), "same-bridge traffic must reach netfilter"
    load(backend, ruleset(nft_lab))
    assert peers_reachable(prober) == (True, True), "not isolated: as before, peers talk"
    closed = isolated(nft_lab, allow_worker_to_db=False)
    load(backend, closed)
    assert backend.plan(closed).in_sync
    assert peers_reachable(prober) == (False, False)
    opened = isolated(nft_lab, allow_worker_to_db=True)
    load(backend, opened)
    assert backend.plan(opened).in_sync
    assert peers_reachable(prober) == (True, True)
    assert not prober.probe("container:db", "container:worker:5432/tcp"), "one way only"
    drops = [c for c in backend.counters() if c.where == "chain peers" and "drop" in c.text]
    assert drops and drops[0].packets > 0


def db_ingress_from(*sources: str) -> Filter:
    return Filter(
        (Allow(peers=nets(*sources), ports=(PortMatch("tcp", 5432, 5432),), original=True),)
    )


@pytest.mark.parametrize(
    "extra",
    [
        (),
        ("192.0.2.102/32", "192.0.2.104/31", "2001:db8:101::/48"),
        (*(f"198.51.100.{i * 2}/32" for i in range(12)), "2001:db8:101::/48"),
    ],
    ids=["plain", "anonymous-set", "named-set"],
)
def test_allowlists_of_every_size_hold_and_read_back_in_sync(
    nft_lab: Lab, backend: NftablesBackend, prober: Prober, extra: tuple[str, ...]
) -> None:
    flt = db_ingress_from("192.0.2.100/32", "2001:db8:100::/64", *extra)
    rules = ruleset(nft_lab, guard(nft_lab, "db", flt, None))
    load(backend, rules)
    assert backend.plan(rules).in_sync
    assert prober.probe("192.0.2.100", "host:5432/tcp")
    assert prober.probe("2001:db8:100::100", "host:5432/tcp")
    assert not prober.probe("192.0.2.7", "host:5432/tcp")
    assert not prober.probe("2001:db8:200::7", "host:5432/tcp")


def test_a_large_table_loads_as_a_script_and_reads_back_in_sync(
    nft_lab: Lab, backend: NftablesBackend
) -> None:
    """Hundreds of guards with allowlists of every size, on a bridge of the lab."""
    bridge = bridges(nft_lab)[0]
    guards = []
    for i in range(300):
        sources = [f"198.51.{i % 200}.{k}/32" for k in range(1 + i % 12)] + [f"2001:db8:{i}::/48"]
        allows = (
            Allow(peers=nets(*sources), ports=(PortMatch("tcp", 8000 + i % 5, 8000 + i % 5),)),
            Allow(peers=nets(f"203.0.113.{i % 16 * 16}/28"), ports=(PortMatch("udp"),)),
        )
        address = ipaddress.ip_address("172.31.0.2") + i
        endpoint = Endpoint(bridge.interface, address)
        guards.append(Guard(f"k{i}", f"c{i}", "test", (endpoint,), Filter(allows), Filter(allows)))
    rules = Ruleset((bridge,), tuple(guards), Filter(), None)
    plan = backend.plan(rules)
    [step] = plan.transaction.rules
    assert step.argv == ("nft", "-f", "-")
    backend.apply(plan)
    assert backend.plan(rules).in_sync
