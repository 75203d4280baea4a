"""Labels (trusted only from the container itself, capped by the file) and peer rules."""

from __future__ import annotations

import ipaddress

from dockwall.compile.compiler import compile_policy
from dockwall.compile.ir import Allow, Filter, PeerAllow, PortMatch
from dockwall.compile.labels import intersect
from dockwall.model.state import HostState
from dockwall.policy import parse_policy

from .state_samples import DB, DOCKER0, SHOP, WEB, WORKER

net = ipaddress.ip_network


def state_with(labels: dict[str, str], image_labels: dict[str, str] | None = None) -> HostState:
    web = WEB.__class__(
        id=WEB.id,
        name=WEB.name,
        labels=labels,
        image_labels=image_labels or {},
        attachments=WEB.attachments,
        ports=WEB.ports,
    )
    return HostState((DOCKER0, SHOP), (web, DB, WORKER))


def web_guard(policy_text: str, state: HostState):  # type: ignore[no-untyped-def]
    compiled = compile_policy(parse_policy(policy_text, "p.yaml"), state)
    return next((g for g in compiled.ruleset.guards if g.name == "web"), None), compiled


DENY = "version: 1\ndefaults: {ingress: deny}\n"


def test_container_label_replaces_the_default() -> None:
    guard, _ = web_guard(DENY, state_with({"dockwall.ingress": "[{port: 8080/tcp, from: [any]}]"}))
    assert guard is not None and guard.origin == "labels"
    assert guard.ingress == Filter((Allow(None, (PortMatch("tcp", 8080, 8080),), original=True),))


def test_image_label_is_ignored() -> None:
    label = {"dockwall.ingress": "allow"}
    guard, _ = web_guard(DENY, state_with(label, image_labels=label))
    assert guard is None, "inherited from the image: the container stays under the defaults"


def test_label_overriding_the_image_value_counts() -> None:
    guard, _ = web_guard(
        DENY,
        state_with({"dockwall.ingress": "[{port: 8080/tcp}]"}, {"dockwall.ingress": "allow"}),
    )
    assert guard is not None


def test_labels_merge_with_the_entry() -> None:
    text = "version: 1\ncontainers:\n  - name: web\n    ingress: [{port: 9000/tcp}]\n"
    guard, _ = web_guard(text, state_with({"dockwall.ingress": "[{port: 8080/tcp}]"}))
    assert guard is not None and guard.origin == "name=web + labels"
    assert guard.ingress is not None
    assert [a.ports[0].first for a in guard.ingress.allows] == [9000, 8080]


def test_untrusted_labels_are_ignored() -> None:
    text = DENY + "labels: {trust: false}\n"
    guard, _ = web_guard(text, state_with({"dockwall.ingress": "allow"}))
    assert guard is None


def test_caps_narrow_label_sources() -> None:
    text = DENY + "labels: {ingress_from: [192.0.2.0/24]}\n"
    guard, _ = web_guard(text, state_with({"dockwall.ingress": "[{port: 8080/tcp, from: [any]}]"}))
    assert guard is not None and guard.ingress is not None
    assert guard.ingress.allows[0].peers == (net("192.0.2.0/24"),)
    guard, _ = web_guard(text, state_with({"dockwall.ingress": "allow"}))
    assert guard is not None and guard.ingress is not None
    assert guard.ingress.allows == (Allow((net("192.0.2.0/24"),)),)


def test_intersect_keeps_the_narrower_side() -> None:
    cap = (net("192.0.2.0/24"), net("2001:db8::/32"))
    assert intersect((net("192.0.2.128/25"), net("198.51.100.0/24")), cap) == (
        net("192.0.2.128/25"),
    )
    assert intersect((net("0.0.0.0/0"),), cap) == (net("192.0.2.0/24"),)
    assert intersect(None, cap) == cap
    assert intersect((net("10.0.0.0/8"),), None) == (net("10.0.0.0/8"),)


def test_bad_label_is_ignored_with_a_located_warning() -> None:
    state = state_with({"dockwall.egress": "[{to: [300.0.0.0/8]}]"})
    guard, compiled = web_guard(DENY, state)
    assert guard is None
    (held,) = compiled.held
    assert "label dockwall.egress on container web:1:" in held and "label ignored" in held


def test_labels_may_not_name_containers_unless_allowed() -> None:
    state = state_with({"dockwall.egress": "[{to_containers: [db]}]"})
    guard, compiled = web_guard(DENY, state)
    assert guard is None and "may not name other containers" in compiled.held[0]
    guard, _ = web_guard(DENY + "labels: {containers: true}\n", state)
    assert guard is not None


PEERS = """\
version: 1
defaults: {peers: deny}
containers:
  - name: db
    ingress:
      - {from_containers: [worker], port: 5432/tcp}
"""


def test_from_containers_become_peer_allows_on_the_shared_bridge() -> None:
    compiled = compile_policy(
        parse_policy(PEERS, "p.yaml"), HostState((DOCKER0, SHOP), (WEB, DB, WORKER))
    )
    ruleset = compiled.ruleset
    assert ruleset.isolate_peers
    ports = (PortMatch("tcp", 5432, 5432),)
    assert set(ruleset.peers) == {
        PeerAllow(ipaddress.ip_address("172.30.0.3"), ipaddress.ip_address("172.30.0.2"), ports),
        PeerAllow(
            ipaddress.ip_address("2001:db8:d0c:1::3"),
            ipaddress.ip_address("2001:db8:d0c:1::2"),
            ports,
        ),
    }
    (db,) = ruleset.guards
    assert db.ingress == Filter(()), "a rule naming only containers admits no address"


def test_to_containers_across_bridges_gives_nothing() -> None:
    text = "version: 1\ndefaults: {peers: deny}\ncontainers:\n  - name: web\n    egress: [{to_containers: [db]}]\n"
    compiled = compile_policy(
        parse_policy(text, "p.yaml"), HostState((DOCKER0, SHOP), (WEB, DB, WORKER))
    )
    assert compiled.ruleset.peers == (), "web and db share no network"
