"""Egress by name for the iptables backend: learned-address ipsets and the DNS redirect.

- One `hash:ip ... timeout 0` ipset per pattern and family (`dwfq-<hash>-4`): the
  forwarder adds each learned address with `-exist add ... timeout N`, which refreshes
  the timeout of an address already there on every kernel. The sets live outside
  iptables-restore's transactions, so an apply never empties them: they are created
  when missing and otherwise left alone (and destroyed only by `reset`).
- Chain DOCKWALL-DNS in the nat table, jumped to first from PREROUTING, redirects the
  clients' udp/tcp 53 (any destination) to the forwarder's port on the host; our
  INPUT chain lets what was redirected through, and FORWARD drops the clients' 853.
- Ownership as everywhere: the nat chain starts with the OWNED mark (else it is refused),
  and `reset` destroys only the learned sets our own chains match against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from dockwall.backends.base import Change
from dockwall.backends.iptables.detect import Family, Variant
from dockwall.backends.iptables.live import FilterTable
from dockwall.backends.iptables.ownership import MARK, OWNED, ours
from dockwall.backends.transaction import Load, Step
from dockwall.compile.ir import Dns, Ruleset
from dockwall.errors import CommandError, DockwallError
from dockwall.runner import Runner

SET_PREFIX = "dwfq-"
NAT_CHAIN = "DOCKWALL-DNS"
HOOK = f"{MARK} -j {NAT_CHAIN}"
DNS_PORT = 53
DOT_PORT = 853
PROTOCOLS = ("tcp", "udp")
MAXELEM = 262144
CREATE_ARGV = ("ipset", "-exist", "restore")


@dataclass
class DnsSteps:
    """What egress by name adds to a plan: its lines, and steps before and after the
    filter loads."""

    changes: list[Change] = field(default_factory=list)
    before: list[Step] = field(default_factory=list)
    after: list[Step] = field(default_factory=list)


def version(family: Family) -> int:
    return 4 if family == "ipv4" else 6


def set_name(pattern: str, family: Family) -> str:
    digest = hashlib.sha256(pattern.encode()).hexdigest()[:12]
    return f"{SET_PREFIX}{digest}-{version(family)}"


def learned_sets(ruleset: Ruleset, family: Family) -> list[str]:
    dns = ruleset.dns
    return [set_name(p, family) for p in dns.patterns] if dns else []


def clients(dns: Dns | None, family: Family) -> list[str]:
    if dns is None:
        return []
    bits = 32 if family == "ipv4" else 128
    found = {f"{c.address}/{bits}" for c in dns.clients if c.address.version == version(family)}
    return sorted(found)


def forward_rules(ruleset: Ruleset, family: Family) -> list[str]:
    """DNS over TLS/QUIC from a client would resolve around the forwarder."""
    return [
        f"-s {client} -p {proto} -m {proto} --dport {DOT_PORT} -j DROP"
        for client in clients(ruleset.dns, family)
        for proto in PROTOCOLS
    ]


def input_rules(ruleset: Ruleset) -> list[str]:
    """Only packets we redirected: a direct connection to the port is judged as usual."""
    if ruleset.dns is None:
        return []
    port = ruleset.dns.port
    return [
        f"-p {proto} -m {proto} --dport {port} -m conntrack --ctstate DNAT -j RETURN"
        for proto in PROTOCOLS
    ]


def nat_rules(ruleset: Ruleset, family: Family) -> list[str]:
    if ruleset.dns is None:
        return []
    port = ruleset.dns.port
    return [
        f"-s {client} -p {proto} -m {proto} --dport {DNS_PORT} -j REDIRECT --to-ports {port}"
        for client in clients(ruleset.dns, family)
        for proto in PROTOCOLS
    ]


def live_nat(runner: Runner, variant: Variant, family: Family) -> tuple[list[str], int] | None:
    """Our nat chain's rules and how many hooks PREROUTING has to it (None: no chain)."""
    result = runner.run([*variant.save(family), "-t", "nat"], check=False)
    if result.returncode != 0:
        return None
    rules: list[str] | None = None
    hooks = 0
    for line in result.stdout.splitlines():
        if line.startswith(f":{NAT_CHAIN} "):
            rules = rules if rules is not None else []
        elif line.startswith(f"-A {NAT_CHAIN} "):
            rules = [*(rules or []), line.removeprefix(f"-A {NAT_CHAIN} ")]
        elif line == f"-A PREROUTING {HOOK}":
            hooks += 1
    return None if rules is None else (rules, hooks)


def nat_plan(
    runner: Runner, variant: Variant, ruleset: Ruleset, family: Family
) -> tuple[list[Change], Load | None]:
    """The nat chain as wanted: with its hook first in PREROUTING, or gone entirely."""
    live = live_nat(runner, variant, family)
    wanted = [OWNED, *nat_rules(ruleset, family)] if ruleset.dns is not None else None
    have = live[0] if live else None
    hooks = live[1] if live else 0
    if have is not None and have[:1] != [OWNED]:
        raise DockwallError(
            f"{family} nat chain {NAT_CHAIN} exists but is not dockwall's (its first rule is "
            f"not {OWNED!r}); dockwall never touches it: rename or delete it"
        )
    if wanted == have and (wanted is None or hooks == 1):
        return [], None
    where = f"nat {NAT_CHAIN}"
    changes = [Change(family, "remove", where, r) for r in have or [] if r not in (wanted or [])]
    changes += [Change(family, "add", where, r) for r in wanted or [] if r not in (have or [])]
    if not changes:
        changes.append(Change(family, "add", "nat PREROUTING", HOOK))
    lines = ["*nat", f":{NAT_CHAIN} - [0:0]"]
    lines += [f"-D PREROUTING {HOOK}"] * hooks
    if wanted is not None:
        lines += [f"-A {NAT_CHAIN} {r}" for r in wanted]
        lines.append(f"-I PREROUTING 1 {HOOK}")
    else:
        lines.append(f"-X {NAT_CHAIN}")
    lines.append("COMMIT")
    return changes, Load(tuple(variant.restore(family)), "\n".join(lines) + "\n")


def redirected(live: FilterTable) -> bool:
    """Whether our chains accept redirected DNS: then a nat chain of ours may exist."""
    return any("--ctstate DNAT" in rule for chain in ours(live) for rule in live.rules(chain))


def existing(runner: Runner) -> set[str]:
    try:
        result = runner.run(["ipset", "list", "-n"], check=False)
    except CommandError:
        return set()
    return set(result.stdout.split()) if result.returncode == 0 else set()


def create_step(runner: Runner, ruleset: Ruleset) -> tuple[list[Change], Load | None]:
    """The learned sets that do not exist yet, created before any rule names them."""
    have = existing(runner)
    missing: list[tuple[str, Family]] = [
        (name, family)
        for family in ("ipv4", "ipv6")
        for name in learned_sets(ruleset, family)
        if name not in have
    ]
    if not missing:
        return [], None
    lines = [
        f"create {name} hash:ip family {'inet' if f == 'ipv4' else 'inet6'} timeout 0 "
        f"maxelem {MAXELEM}"
        for name, f in missing
    ]
    changes = [Change(f, "add", f"ipset {name}", "(new learned set)") for name, f in missing]
    return changes, Load(CREATE_ARGV, "\n".join(lines) + "\n")


def learned_names(names: Iterable[str]) -> list[str]:
    return sorted(n for n in names if n.startswith(SET_PREFIX))
