"""Prometheus metrics: kernel counters read at scrape time, plus the agent's own.

Drops and allowed connections come from the rule counters when Prometheus asks, never
from the rate-limited log, so they are exact. Names follow Prometheus conventions
(`dockwall_` prefix, `_total` counters, base units: seconds, bytes).

Other features add their counters by registering a collector with `extra_collectors`
(the DNS forwarder's, for instance: `dockwall_dns_*`), so they appear on the same
endpoint without touching this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dockwall.backends.base import RuleCounter
from dockwall.compile.ir import Ruleset
from dockwall.compile.origin import describe_tag
from dockwall.observe.counters import ChainTotals, chain_totals
from dockwall.observe.history import AddressHistory

APPLY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class AgentView:
    """What the collector needs from the agent, as callables read at scrape time."""

    counters: Callable[[], list[RuleCounter]]
    backend: Callable[[], str | None]
    stats: Callable[[], dict[str, object]]
    log_stats: Callable[[], dict[str, object]]
    policy_name: str
    history: AddressHistory
    ruleset: Callable[[], Ruleset | None] = field(default=lambda: None)


def chain_container(chain: ChainTotals, history: AddressHistory) -> str:
    """The container a filter chain is named after ("" for the defaults and peers): an
    iptables chain carries the guard key, an nft chain the container's name."""
    if chain.owner is None:
        return ""
    if chain.chain.startswith("DOCKWALL"):
        return history.name_of_key(chain.owner)
    return chain.owner


class DockwallCollector(Collector):
    def __init__(self, view: AgentView) -> None:
        self.view = view

    def collect(self) -> Iterator[Metric]:
        view = self.view
        labels = ["container", "direction", "entry"]
        dropped = CounterMetricFamily(
            "dockwall_dropped_packets",
            "New connections dropped, from rule counters.",
            labels=labels,
        )
        dropped_bytes = CounterMetricFamily(
            "dockwall_dropped_bytes", "Bytes of dropped packets, from rule counters.", labels=labels
        )
        allowed = CounterMetricFamily(
            "dockwall_allowed_connections",
            "New connections a filter's rules allowed, from rule counters.",
            labels=labels,
        )
        logged = CounterMetricFamily(
            "dockwall_log_records_sent",
            "Drop records the kernel sent to the log (after the rate limit).",
            labels=["direction"],
        )
        backend = view.backend() or "none"
        try:
            counters = view.counters()
        except Exception:
            counters = []
        sent: dict[str, int] = {}
        for chain in chain_totals(counters):
            entry = describe_tag(
                chain.tag, chain.direction, view.policy_name, view.history.name_of_key
            )
            values = [chain_container(chain, view.history), chain.direction, entry]
            dropped.add_metric(values, chain.dropped_packets)
            dropped_bytes.add_metric(values, chain.dropped_bytes)
            allowed.add_metric(values, chain.allowed)
            sent[chain.direction] = sent.get(chain.direction, 0) + chain.logged
        for direction, count in sorted(sent.items()):
            logged.add_metric([direction], count)
        yield from (dropped, dropped_bytes, allowed, logged)
        rules = GaugeMetricFamily(
            "dockwall_rules", "Rules of dockwall's in force.", labels=["backend"]
        )
        rules.add_metric([backend], len(counters))
        yield rules
        yield self.set_elements(backend)
        yield from self.agent_metrics()
        yield from self.log_metrics()

    def set_elements(self, backend: str) -> Metric:
        """Elements of each named list in force, per family: the sizes the compiled
        ruleset already holds, never a listing of the kernel's (maybe huge) sets. The
        forwarder's learned addresses are `dockwall_dns_learned_addresses`."""
        elements = GaugeMetricFamily(
            "dockwall_set_elements",
            "Elements of each named list's kernel set in force, per family.",
            labels=["backend", "set", "family"],
        )
        ruleset = self.view.ruleset()
        for found in ruleset.lists if ruleset is not None else ():
            for family in (4, 6):
                elements.add_metric(
                    [backend, found.name, f"ipv{family}"], len(found.elements(family))
                )
        return elements

    def agent_metrics(self) -> Iterable[Metric]:
        stats = self.view.stats()
        for name, key, text in (
            ("dockwall_reconciles", "reconciles", "Reconciles that loaded the policy."),
            ("dockwall_drift_repairs", "repairs", "Times our rules were restored."),
            ("dockwall_drift_checks", "drift_checks", "Checks that our rules are in place."),
            (
                "dockwall_drift_listings",
                "drift_listings",
                "Drift checks that read the ruleset (nf_tables changed by someone else).",
            ),
            ("dockwall_docker_events", "events", "Docker events received."),
        ):
            yield CounterMetricFamily(name, text, value=number(stats.get(key)))
        yield GaugeMetricFamily(
            "dockwall_docker_connected",
            "1 while the agent is connected to dockerd.",
            value=1.0 if stats.get("connected") else 0.0,
        )
        yield GaugeMetricFamily(
            "dockwall_containers",
            "Containers the agent knows.",
            value=number(stats.get("containers")),
        )

    def log_metrics(self) -> Iterable[Metric]:
        stats = self.view.log_stats()
        records = CounterMetricFamily(
            "dockwall_log_records", "Drop records read from NFLOG.", labels=["direction"]
        )
        found = stats.get("records")
        for direction, count in sorted(found.items() if isinstance(found, dict) else []):
            records.add_metric([direction], count)
        yield records
        yield CounterMetricFamily(
            "dockwall_log_records_lost",
            "Drop records lost between kernel and agent (sequence gaps).",
            value=number(stats.get("lost")),
        )
        yield CounterMetricFamily(
            "dockwall_log_overruns",
            "Times the log socket overflowed (ENOBUFS; records lost, count unknown).",
            value=number(stats.get("overruns")),
        )


def number(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def apply_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "dockwall_apply_duration_seconds",
        "Time from compiling a policy to its rules being in force (each reconcile).",
        buckets=APPLY_BUCKETS,
        registry=registry,
    )


def event_histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram(
        "dockwall_event_to_enforced_seconds",
        "Time from the first Docker event of a burst to its rules being in force.",
        buckets=APPLY_BUCKETS,
        registry=registry,
    )


def make_registry(view: AgentView, extra_collectors: Iterable[Collector] = ()) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DockwallCollector(view))
    for collector in extra_collectors:
        registry.register(collector)
    return registry
