"""What observe adds from what other features know: list sizes in /metrics and the
learned name of an egress drop's destination (no kernel, no root)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

from dockwall.compile.ir import AddressSet, DropLog, Ruleset
from dockwall.observe.history import AddressHistory
from dockwall.observe.journal import Journal
from dockwall.observe.logview import columns
from dockwall.observe.metrics import AgentView, make_registry
from dockwall.observe.nflog import Record
from dockwall.observe.service import DropLogService

from .test_observe_reader import ipv4_syn, ipv6_udp

LISTS = (
    AddressSet(
        "blocked", "blocked.txt", "d1", ("192.0.2.0/24", "198.51.100.9"), ("2001:db8::/48",)
    ),
    AddressSet("partners", "partners.txt", "d2", (), ("2001:db8:1::1",)),
)


def view(tmp_path: Path, ruleset: Ruleset | None) -> AgentView:
    return AgentView(
        counters=lambda: [],
        backend=lambda: "nftables",
        stats=lambda: {},
        log_stats=lambda: {},
        policy_name="policy.yaml",
        history=AddressHistory(tmp_path / "addresses.json"),
        ruleset=lambda: ruleset,
    )


def test_set_elements_per_list_and_family_from_the_ruleset(tmp_path: Path) -> None:
    registry = make_registry(view(tmp_path, Ruleset((), (), None, None, lists=LISTS)))
    expected = {
        ("blocked", "ipv4"): 2,
        ("blocked", "ipv6"): 1,
        ("partners", "ipv4"): 0,
        ("partners", "ipv6"): 1,
    }
    for (name, family), count in expected.items():
        labels = {"backend": "nftables", "set": name, "family": family}
        assert registry.get_sample_value("dockwall_set_elements", labels) == count


def test_no_ruleset_yet_has_no_set_elements(tmp_path: Path) -> None:
    registry = make_registry(view(tmp_path, None))
    samples = [
        s for m in registry.collect() if m.name == "dockwall_set_elements" for s in m.samples
    ]
    assert samples == []
    assert registry.get_sample_value("dockwall_rules", {"backend": "nftables"}) == 0


LEARNED = {"203.0.113.10": "api.example.test", "2001:db8::10": "v6.example.test"}


@pytest.mark.parametrize(
    ("prefix", "payload", "fqdn"),
    [
        ("dw:e:p4", ipv4_syn("172.17.0.2", "203.0.113.10", 4000, 8443), "api.example.test"),
        ("dw:e:p4", ipv6_udp("fd00::2", "2001:db8::10", 4000, 53), "v6.example.test"),
        ("dw:e:d", ipv4_syn("172.17.0.2", "203.0.113.99", 4000, 443), None),
        ("dw:i:p4", ipv4_syn("203.0.113.10", "172.17.0.2", 4000, 80), None),
    ],
)
def test_an_egress_drop_names_the_learned_fqdn_of_its_destination(
    tmp_path: Path, prefix: str, payload: bytes, fqdn: str | None
) -> None:
    asked: list[str] = []

    def fqdn_of(address: str) -> str | None:
        asked.append(address)
        return LEARNED.get(address)

    service = DropLogService(
        "policy.yaml",
        AddressHistory(tmp_path / "addresses.json"),
        Journal(tmp_path / "drops.jsonl"),
        print,
        fqdn_of,
    )
    entry = service.drop(Record(prefix, payload, 0, 1, 1.0))
    assert entry["kind"] == "drop"
    assert entry["fqdn"] == fqdn
    assert asked == ([] if prefix.startswith("dw:i") else [entry["remote"]])
    if fqdn is not None:
        assert columns(entry)[3].endswith(f"/{entry['proto']} ({fqdn})")


class SlowReader:
    """An NFLOG reader that records its group; reads return nothing for their timeout."""

    groups: ClassVar[list[int]] = []

    def __init__(self, group: int) -> None:
        SlowReader.groups.append(group)

    def read(self, timeout: float) -> list[Record]:
        time.sleep(timeout)
        return []

    def close(self) -> None:
        pass


def test_an_apply_returns_once_its_nflog_group_is_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So the agent says a ruleset is in force only when its first drops are logged."""
    monkeypatch.setattr("dockwall.observe.service.NflogReader", SlowReader)
    SlowReader.groups = []
    service = DropLogService(
        "policy.yaml", AddressHistory(tmp_path / "a.json"), Journal(tmp_path / "d.jsonl"), print
    )
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(0.05)  # the thread is waiting for a ruleset
        for group in (7, 8):
            log = DropLog(group, None, None, None)
            service.applied(Ruleset((), (), None, None, log=log), [], list)
            assert SlowReader.groups[-1] == group, SlowReader.groups
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
