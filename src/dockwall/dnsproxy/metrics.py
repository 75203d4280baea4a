"""The forwarder's Prometheus metrics (`dockwall_dns_*`), for observe's `extra_collectors`.

Read at scrape time from the running forwarder's plain counters and learned record, so
a query pays nothing for being counted, and a scrape costs one pass over the learned
record (no kernel set is listed). Before the first ruleset with DNS clients there is no
forwarder: every counter reads 0, so dashboards see the series from the start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from dockwall.dnsproxy.forwarder import Counts, Forwarder

OUTCOMES = ("answered", "held", "refused", "servfail")


class DnsCollector(Collector):
    def __init__(self, forwarder: Callable[[], Forwarder | None]) -> None:
        self.forwarder = forwarder

    def collect(self) -> Iterator[Metric]:
        forwarder = self.forwarder()
        counts = forwarder.counts if forwarder is not None else Counts()
        queries = CounterMetricFamily(
            "dockwall_dns_queries",
            "DNS queries of containers by outcome: answered (passed on, nothing to learn), "
            "held (answered once its addresses were in the kernel), refused, servfail.",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            queries.add_metric([outcome], getattr(counts, outcome))
        yield queries
        yield CounterMetricFamily(
            "dockwall_dns_learned_elements",
            "Set elements the forwarder added or refreshed in the kernel.",
            value=counts.learned,
        )
        yield SummaryMetricFamily(
            "dockwall_dns_set_update_seconds",
            "Time answers were held while their addresses went into the kernel's sets.",
            count_value=counts.held,
            sum_value=counts.hold_seconds,
        )
        learned = GaugeMetricFamily(
            "dockwall_dns_learned_addresses",
            "Learned addresses in force (unexpired) per to_fqdn pattern.",
            labels=["pattern"],
        )
        in_force = forwarder.store.in_force() if forwarder is not None else {}
        for pattern, count in sorted(in_force.items()):
            learned.add_metric([pattern], count)
        yield learned
