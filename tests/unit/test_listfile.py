"""The plain list-file reader: every way a line is written, canonical output, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockwall.policy.listfile import ListFileError, parse_lines, read_list_file


@pytest.mark.parametrize(
    ("line", "v4", "v6"),
    [
        ("192.0.2.1", ("192.0.2.1",), ()),
        ("  192.0.2.1  # a host", ("192.0.2.1",), ()),
        ("192.0.2.1/32", ("192.0.2.1",), ()),
        ("192.0.2.0/24", ("192.0.2.0/24",), ()),
        ("2001:DB8::1", (), ("2001:db8::1",)),
        ("2001:db8:0:0::1/128", (), ("2001:db8::1",)),
        ("2001:db8::/32", (), ("2001:db8::/32",)),
        ("1.10.16.0/20 ; SBL256894", ("1.10.16.0/20",), ()),
        ("; Spamhaus DROP List", (), ()),
        ("\t192.0.2.1\t#\ttabbed", ("192.0.2.1",), ()),
        ("192.0.2.1\r", ("192.0.2.1",), ()),
        ("2001:db8::1;note", (), ("2001:db8::1",)),
    ],
)
def test_each_spelling_becomes_the_kernel_spelling(
    line: str, v4: tuple[str, ...], v6: tuple[str, ...]
) -> None:
    found = parse_lines([line], "l.txt", "fail")
    assert (found.v4, found.v6) == (v4, v6)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("192.0.2.300", "is not an IP address"),
        ("010.0.0.1", "is not an IP address"),
        ("192.0.2.1/24", "host bits set"),
        ("192.0.2.0/33", "bad prefix length"),
        ("192.0.2.0/ 24", "bad prefix length"),
        ("0.0.0.0/0", "is every address"),
        ("::ffff:192.0.2.1", "IPv4-mapped"),
        ("fe80::1%eth0", "is not an IP address"),
        ("example.com", "is not an IP address"),
    ],
)
def test_bad_lines_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(ListFileError, match=rf"^l\.txt:3: .*{message}"):
        parse_lines(["# head", "192.0.2.9", line], "l.txt", "fail")


def test_skip_keeps_the_rest_and_warns_a_bounded_number_of_times() -> None:
    found = parse_lines(["192.0.2.1", *(["bad"] * 8)], "l.txt", "skip")
    assert found.v4 == ("192.0.2.1",) and found.skipped == 8
    assert (
        found.warnings[0]
        == "l.txt:2: 'bad' is not an IP address or CIDR (like 192.0.2.0/24 or 2001:db8::/32); line skipped"
    )
    assert found.warnings[-1] == "l.txt: 8 bad lines skipped in all"
    assert len(found.warnings) == 6


def test_covered_entries_go_so_interval_sets_never_overlap() -> None:
    found = parse_lines(
        [
            "10.0.0.0/8",
            "10.1.0.0/16",
            "10.2.3.4",
            "192.0.2.1",
            "192.0.2.1",
            "2001:db8::/32",
            "2001:db8:1::1",
        ],
        "l.txt",
        "fail",
    )
    assert found.v4 == ("10.0.0.0/8", "192.0.2.1")
    assert found.v6 == ("2001:db8::/32",)
    assert found.interval4 and found.interval6
    hosts = parse_lines(["192.0.2.2", "192.0.2.1"], "l.txt", "fail")
    assert not hosts.interval4 and set(hosts.v4) == {"192.0.2.1", "192.0.2.2"}


def test_a_file_with_a_byte_order_mark_and_crlf_lines_reads_like_any_other(tmp_path: Path) -> None:
    path = tmp_path / "drop.txt"
    path.write_bytes(b"\xef\xbb\xbf; Spamhaus DROP\r\n1.10.16.0/20 ; SBL1\r\n192.0.2.1\r\n")
    found = read_list_file(path)
    assert found.v4 == ("1.10.16.0/20", "192.0.2.1") and found.lines == 3


def test_a_byte_order_mark_elsewhere_is_still_a_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    path.write_bytes(b"192.0.2.1\n\xef\xbb\xbf192.0.2.2\n")
    with pytest.raises(ListFileError, match=r"odd\.txt:2: .*is not an IP address"):
        read_list_file(path)
