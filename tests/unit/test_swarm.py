"""Swarm: entries for services and stacks, refused task-to-task rules, the routing mesh."""

from __future__ import annotations

import ipaddress

import pytest

from dockwall.backends.iptables.render import render as render_iptables
from dockwall.backends.nftables.render import render as render_nft
from dockwall.compile.compiler import compile_policy
from dockwall.compile.ir import Allow, Filter, Guard, PortMatch
from dockwall.compile.swarm import MESH_KEY, MESH_NAME
from dockwall.errors import PolicyError
from dockwall.model.state import Attachment, Bridge, Container, HostState, Mesh, MeshPort
from dockwall.policy import parse_policy

net = ipaddress.ip_network
GWBRIDGE = Bridge("docker_gwbridge", "docker_gwbridge", (net("172.18.0.0/16"),))
SBOX = ipaddress.ip_address("172.18.0.2")
MESH = Mesh(
    "docker_gwbridge",
    (SBOX,),
    (
        MeshPort("web", None, 8080, 80, "tcp"),
        MeshPort("shop_api", "shop", 9090, 9000, "tcp"),
        MeshPort("shop_api", "shop", 9053, 53, "udp"),
        MeshPort("other", None, 7070, 70, "tcp"),
    ),
)


def task(service: str, stack: str | None, address: str, image_labels=None) -> Container:  # type: ignore[no-untyped-def]
    labels = {"com.docker.swarm.service.name": service, "com.docker.swarm.task.id": "t1"}
    if stack:
        labels["com.docker.stack.namespace"] = stack
    return Container(
        id=f"{service[:4]:0<4}" * 16,
        name=f"{service}.1.abc",
        labels=labels,
        image_labels=image_labels or {},
        attachments=(
            Attachment("docker_gwbridge", "docker_gwbridge", (ipaddress.ip_address(address),)),
        ),
    )


POLICY = """version: 1
defaults: {ingress: deny}
containers:
  - service: web
    ingress:
      - port: 8080/tcp
        from: [192.0.2.0/24, "2001:db8:100::/64"]
    egress:
      - to: [203.0.113.0/24]
        port: 443/tcp
  - stack: shop
    ingress:
      - container_port: 9000/tcp
        from: [198.51.100.0/24]
      - port: 9053/udp
"""


def compiled(policy: str = POLICY, containers: tuple[Container, ...] = (), mesh=MESH):  # type: ignore[no-untyped-def]
    state = HostState((GWBRIDGE,), containers, ("lo", "eth0"), mesh)
    return compile_policy(parse_policy(policy, "p.yaml"), state)


def mesh_of(result) -> Guard:  # type: ignore[no-untyped-def]
    return next(g for g in result.ruleset.guards if g.name == MESH_NAME)


def test_service_and_stack_entries_govern_tasks_by_swarm_labels() -> None:
    web, api = task("web", None, "172.18.0.3"), task("shop_api", "shop", "172.18.0.4")
    result = compiled(containers=(web, api), mesh=None)
    by_name = {g.name: g for g in result.ruleset.guards}
    assert (by_name[web.name].origin, by_name[api.name].origin) == ("service=web", "stack=shop")
    egress = by_name[web.name].egress
    assert egress == Filter((Allow((net("203.0.113.0/24"),), (PortMatch("tcp", 443, 443),)),))
    assert by_name[api.name].egress is None
    assert result.warnings == ()


def test_swarm_labels_from_the_image_do_not_count() -> None:
    """An image must not choose its container's firewall, Swarm's labels included."""
    web = task("web", None, "172.18.0.3", image_labels={"com.docker.swarm.service.name": "web"})
    result = compiled(containers=(web,), mesh=None)
    assert all(g.name != web.name for g in result.ruleset.guards)


def test_mesh_ports_get_their_service_entry_sources_on_the_original_port() -> None:
    guard = mesh_of(compiled())
    assert guard.key == MESH_KEY and [str(e.address) for e in guard.endpoints] == ["172.18.0.2"]
    tcp = lambda port: (PortMatch("tcp", port, port),)  # noqa: E731
    assert guard.ingress == Filter(
        (
            Allow((net("192.0.2.0/24"), net("2001:db8:100::/64")), tcp(8080), original=True),
            Allow(None, (PortMatch("udp", 9053, 9053),), original=True),
            Allow((net("198.51.100.0/24"),), tcp(9090), original=True),
        )
    )
    assert guard.egress is None


def test_entries_used_only_by_the_mesh_are_not_reported_unused() -> None:
    """A node without a task of the service still carries its published ports."""
    assert compiled().warnings == ()
    assert any("matches no running container" in w for w in compiled(mesh=None).warnings)


def test_mesh_port_without_entry_follows_the_ingress_default() -> None:
    allow = compiled("version: 1\n")
    assert (
        Allow(None, (PortMatch("tcp", 7070, 7070),), original=True) in mesh_of(allow).ingress.allows
    )  # type: ignore[union-attr]
    deny = mesh_of(compiled("version: 1\ndefaults: {ingress: deny, egress: deny}\n"))
    assert deny.ingress == Filter() and deny.egress == Filter()


def test_two_entries_for_one_service_hold_its_port_closed() -> None:
    policy = "version: 1\ncontainers:\n  - service: web\n    ingress: allow\n  - label: com.docker.swarm.service.name=web\n    ingress: allow\n"
    result = compiled(policy)
    assert all(8080 not in (a.ports[0].first,) for a in mesh_of(result).ingress.allows)  # type: ignore[union-attr]
    assert any("Swarm service 'web' port 8080 is held closed" in h for h in result.held)


def test_iptables_mesh_rules_match_client_source_and_original_port() -> None:
    ruleset = compiled().ruleset
    v4 = render_iptables(ruleset, "ipv4").chains
    chain = f"DOCKWALL-I-{MESH_KEY}"
    dispatch = f"-d 172.18.0.2/32 ! -i docker_gwbridge -o docker_gwbridge -g {chain}"
    assert dispatch in v4["DOCKWALL-FORWARD"]
    forward = v4["DOCKWALL-FORWARD"]
    assert forward.index(dispatch) < forward.index(
        "! -i docker_gwbridge -o docker_gwbridge -g DOCKWALL-DEFAULT-I"
    )
    assert v4[chain][1:] == [
        "-s 192.0.2.0/24 -p tcp -m conntrack --ctorigdstport 8080 --ctdir ORIGINAL -j RETURN",
        "-p udp -m conntrack --ctorigdstport 9053 --ctdir ORIGINAL -j RETURN",
        "-s 198.51.100.0/24 -p tcp -m conntrack --ctorigdstport 9090 --ctdir ORIGINAL -j RETURN",
        "-m hashlimit --hashlimit-upto 20/sec --hashlimit-burst 50 --hashlimit-name dwi20s50 "
        '-j NFLOG --nflog-prefix "dw:i:d" --nflog-group 2710 --nflog-size 128',
        "-j DROP",
    ]
    v6 = render_iptables(ruleset, "ipv6").chains
    assert all("172.18.0.2" not in rule for rules in v6.values() for rule in rules)


def test_nft_mesh_rules_match_client_source_and_original_port() -> None:
    objects = [o["add"] for o in render_nft(compiled().ruleset) if "add" in o]
    maps = [o["map"] for o in objects if "map" in o and o["map"]["name"] == "ingress-v4"]
    key = {"concat": ["172.18.0.2", "docker_gwbridge"]}
    assert [key, {"goto": {"target": "in-swarm-ingress"}}] in maps[0]["elem"]
    rules = [
        o["rule"]["expr"]
        for o in objects
        if "rule" in o and o["rule"]["chain"] == "in-swarm-ingress"
    ]
    source = {"payload": {"protocol": "ip", "field": "saddr"}}
    original = {"ct": {"key": "proto-dst", "dir": "original"}}
    assert rules[0][0]["match"] == {
        "op": "==",
        "left": source,
        "right": {"prefix": {"addr": "192.0.2.0", "len": 24}},
    }
    assert rules[0][2]["match"] == {"op": "==", "left": original, "right": 8080}
    logged = {"log": {"prefix": "dw:i:d", "group": 2710, "snaplen": 128}}
    assert [r[-1] for r in rules] == [{"return": None}] * 4 + [logged, {"drop": None}]
    ports = [r[-3]["match"]["right"] for r in rules[:4]]
    assert ports == [8080, 8080, 9053, 9090]  # 8080 from IPv4 and from IPv6 sources


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "version: 1\ncontainers:\n  - name: x\n    ingress:\n"
            "      - from_containers: [web, {service: api}]\n",
            "p.yaml:5:32: containers[0].ingress[0].from_containers[1]: service=api cannot be "
            "enforced: traffic between Swarm tasks travels inside the overlay network's VXLAN "
            "tunnel and never meets the host's forward path, so no host firewall can enforce it",
        ),
        (
            "version: 1\ncontainers:\n  - name: x\n    egress:\n"
            "      - to_containers: [{stack: shop}]\n",
            "p.yaml:5:25: containers[0].egress[0].to_containers[0]: stack=shop cannot be enforced",
        ),
        (
            "version: 1\ncontainers:\n  - stack: shop\n    egress:\n      - to: [any]\n"
            "      - to_containers: [db]\n",
            "p.yaml:6:9: containers[0].egress[1].to_containers: to_containers cannot be enforced "
            "for stack=shop",
        ),
        (
            "version: 1\ncontainers:\n  - service: web\n    ingress:\n"
            "      - from_containers: [db]\n",
            "p.yaml:5:9: containers[0].ingress[0].from_containers: from_containers cannot be "
            "enforced for service=web",
        ),
        (
            "version: 1\ncontainers:\n  - service: web\n    stack: shop\n",
            "p.yaml:4:5: containers[0].stack: give only one of name, compose, label, service or "
            "stack (this entry has service and stack)",
        ),
        (
            "version: 1\ncontainers:\n  - service: [web]\n",
            "p.yaml:3:14: containers[0].service: expected a Swarm service name, got a list",
        ),
        (
            "version: 1\ncontainers:\n  - stack: 'a b'\n",
            "p.yaml:3:12: containers[0].stack: 'a b' is not a valid Swarm stack name",
        ),
    ],
)
def test_unenforceable_or_bad_swarm_entries_are_refused(text: str, expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.yaml")
    assert str(info.value).startswith(expected)


class FakeApi:
    """The two answers a manager's and a worker's dockerd give about the mesh."""

    def services(self) -> list[dict[str, object]]:
        ports = [
            {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"},
            {"Protocol": "udp", "TargetPort": 53, "PublishedPort": 8053, "PublishMode": "host"},
        ]
        spec = {"Name": "shop_web", "Labels": {"com.docker.stack.namespace": "shop"}}
        return [{"Spec": spec, "Endpoint": {"Ports": ports}}]


def test_manager_reads_ingress_ports_with_protocol_and_stack() -> None:
    from dockwall.sources.swarm import manager_ports

    client = type("Client", (), {"api": FakeApi()})()
    assert manager_ports(client) == [MeshPort("shop_web", "shop", 8080, 80, "tcp")]


def test_worker_reads_the_ingress_networks_verbose_view_for_both_protocols() -> None:
    from dockwall.sources.swarm import verbose_ports

    services = {"web": {"VIP": "10.0.0.5", "Ports": ["Target: 80, Publish: 8080"]}, "": {}}
    assert verbose_ports(services) == [
        MeshPort("web", None, 8080, 80, "tcp"),
        MeshPort("web", None, 8080, 80, "udp"),
    ]


def spec_with(config: str) -> dict[str, object]:
    file = {"Name": "/etc/dockwall/policy.yaml"}
    return {"ContainerSpec": {"Configs": [{"ConfigName": config, "File": file}]}}


def test_status_swarm_rows_show_each_nodes_policy_version_and_sync() -> None:
    from dockwall.sources.swarm_cluster import agent_service, node_rows

    service = {"ID": "s1", "Spec": {"Name": "dockwall_agent", "TaskTemplate": spec_with("v2")}}
    other = {"ID": "s2", "Spec": {"Name": "web", "TaskTemplate": {"ContainerSpec": {}}}}
    assert agent_service([other, service]) is service
    nodes = [
        {"ID": f"n{i}", "Description": {"Hostname": f"h{i}"}, "Status": {"State": "ready"}}
        for i in (1, 2, 3)
    ]
    tasks = [
        {
            "NodeID": "n1",
            "CreatedAt": "1",
            "Spec": spec_with("v1"),
            "Status": {"State": "shutdown"},
        },
        {"NodeID": "n1", "CreatedAt": "2", "Spec": spec_with("v2"), "Status": {"State": "running"}},
        {"NodeID": "n2", "CreatedAt": "1", "Spec": spec_with("v1"), "Status": {"State": "running"}},
    ]
    rows = node_rows(nodes, service, tasks)
    assert [(r.hostname, r.agent, r.policy_version, r.in_sync) for r in rows] == [
        ("h1", "running", "v2", True),
        ("h2", "running", "v1", False),
        ("h3", "none", "", False),
    ]


def test_status_swarm_needs_exactly_one_agent_service() -> None:
    from dockwall.sources.swarm_cluster import agent_service

    with pytest.raises(Exception, match="found none"):
        agent_service([])


def test_cluster_node_links_never_cover_an_internet_host_address() -> None:
    from dockwall.lab import topology as t
    from dockwall.lab.cluster import MAX_NODES, node_address

    links = [
        ipaddress.ip_interface(f"{node_address(i).host}/30").network
        for i in range(1, MAX_NODES + 1)
    ]
    assert len(set(links)) == MAX_NODES
    hosts = [ipaddress.ip_address(a) for a in t.INTERNET_V4]
    assert not [(h, link) for h in hosts for link in links if h in link]
    assert [node_address(i).inet in [str(h) for h in links[i - 1].hosts()] for i in (1, 2, 3)] == [
        True
    ] * 3


def test_cluster_refuses_what_it_cannot_name() -> None:
    from dockwall.lab.cluster import Cluster

    with pytest.raises(Exception, match="2 to 5 nodes"):
        Cluster("c", 6)
    with pytest.raises(Exception, match="at most 8 characters"):
        Cluster("abcdefghi", 3)
