"""The integer merge of interval-set elements agrees with the standard library's."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from dockwall.backends.nftables.intervals import collapsed
from dockwall.model.state import Network


def nets(*texts: str) -> list[Network]:
    return [ipaddress.ip_network(t) for t in texts]


def test_overlapping_adjacent_and_contained_networks_merge() -> None:
    given_nets = nets("10.0.0.0/25", "10.0.0.128/25", "10.0.0.7/32", "192.0.2.1/32", "192.0.2.3/32")
    assert collapsed(given_nets) == nets("10.0.0.0/24", "192.0.2.1/32", "192.0.2.3/32")


def test_families_never_merge_with_each_other() -> None:
    assert collapsed(nets("::/128", "0.0.0.1/32", "0.0.0.0/32")) == nets("0.0.0.0/31", "::/128")


def test_a_merged_range_that_is_no_prefix_is_split() -> None:
    assert collapsed(nets("10.0.0.1/32", "10.0.0.2/31")) == nets("10.0.0.1/32", "10.0.0.2/31")
    assert collapsed(nets("10.0.0.2/31", "10.0.0.4/31")) == nets("10.0.0.2/31", "10.0.0.4/31")


v4 = st.builds(
    lambda a, p: ipaddress.IPv4Network((a, p), strict=False),
    st.integers(0, 2**32 - 1),
    st.integers(20, 32),
)
v6 = st.builds(
    lambda a, p: ipaddress.IPv6Network((a, p), strict=False),
    st.integers(0, 2**16 - 1).map(lambda x: x << 112),
    st.integers(1, 128),
)


@settings(deadline=None)  # a busy machine must not fail it
@given(st.lists(v4, max_size=30), st.lists(v6, max_size=10))
def test_same_result_as_collapse_addresses(
    four: list[ipaddress.IPv4Network], six: list[ipaddress.IPv6Network]
) -> None:
    expected: list[Network] = [
        *ipaddress.collapse_addresses(four),
        *ipaddress.collapse_addresses(six),
    ]
    assert collapsed([*six, *four]) == expected
