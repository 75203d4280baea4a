"""What holds traffic of interfaces dockwall has not seen: a Docker network created while
no agent ran, whatever its bridge is called.

With the host's own interfaces known (set `hosts`), forwarded traffic from one of them
to an interface that is neither the host's nor a known bridge is ingress to something
unseen and meets the ingress defaults; from such an interface to one of the host's, it
is egress and meets the egress defaults, as does traffic from it to the host itself.
The rules sit after the dispatch jumps and jump (not goto) to the default chains, so a
forwarded packet is judged in both directions. Without that knowledge (a ruleset saved
by an older version), bridges named br-* are held, as Docker names its own.
"""

from __future__ import annotations

from dockwall.backends.nftables import expr as e
from dockwall.backends.nftables.expr import Json
from dockwall.compile.ir import Ruleset

HOSTS = "hosts"
BRIDGES = "bridges"


def neither(key: str) -> list[Json]:
    """The interface is neither the host's own nor a known bridge."""
    return [
        e.match(e.meta(key), e.set_ref(HOSTS), op="!="),
        e.match(e.meta(key), e.set_ref(BRIDGES), op="!="),
    ]


def host(key: str) -> Json:
    return e.match(e.meta(key), e.set_ref(HOSTS))


def forward_rules(ruleset: Ruleset, default_in: str, default_out: str) -> list[list[Json]]:
    if ruleset.plain_host_interfaces is None:
        return []
    rules = []
    if ruleset.default_ingress is not None:
        rules.append([*neither("oifname"), host("iifname"), e.jump(default_in)])
    if ruleset.default_egress is not None:
        rules.append([*neither("iifname"), host("oifname"), e.jump(default_out)])
    return rules


def input_rules(ruleset: Ruleset, default_out: str) -> list[list[Json]]:
    if ruleset.plain_host_interfaces is None or ruleset.default_egress is None:
        return []
    return [[*neither("iifname"), e.jump(default_out)]]
