"""to_fqdn patterns (Cilium's semantics), the dns: settings and label caps."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockwall.audit.dns import daemon_dns, dns_bypass
from dockwall.errors import PolicyError
from dockwall.policy import parse_policy
from dockwall.policy.fields import SpecError
from dockwall.policy.fqdn import covers, matches, parse_pattern
from dockwall.policy.lint import policy_warnings
from dockwall.policy.load import parse_policy_document

MATCHES = [
    ("api.example.com", "api.example.com", True),
    ("api.example.com", "x.api.example.com", False),
    ("*.example.org", "a.example.org", True),
    ("*.example.org", "example.org", False),
    ("*.example.org", "a.b.example.org", False),
    ("**.example.org", "a.example.org", True),
    ("**.example.org", "a.b.c.example.org", True),
    ("**.example.org", "example.org", False),
    ("**.example.org", "badexample.org", False),
    ("*.example.org", "aexample.org", False),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), MATCHES)
def test_matches(pattern: str, name: str, expected: bool) -> None:
    assert matches(parse_pattern(pattern), name) is expected


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("API.Example.COM", "api.example.com"),
        ("api.example.com.", "api.example.com"),
        ("*.Example.org.", "*.example.org"),
        ("**.cdn.example.net", "**.cdn.example.net"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("*.münchen.test", "*.xn--mnchen-3ya.test"),
        ("_srv.example.com", "_srv.example.com"),
    ],
)
def test_every_spelling_is_stored_as_a_labels(written: str, stored: str) -> None:
    assert parse_pattern(written) == stored


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("", "not a domain name"),
        (".", "not a domain name"),
        ("a..example.com", "empty label"),
        ("a.*.example.com", "whole first label"),
        ("*example.com", "whole first label"),
        ("***.example.com", "whole first label"),
        ("*.", "whole first label"),
        ("-a.example.com", "must be 1-63"),
        ("a b.example.com", "must be 1-63"),
        ("x" * 64 + ".com", "must be 1-63"),
        (".".join(["a" * 60] * 5), "longer than 253"),
        ("192.0.2.1", "IP address, not a name"),
        ("2001:db8::1", "IP address, not a name"),
    ],
)
def test_bad_patterns_say_why(bad: str, says: str) -> None:
    with pytest.raises(SpecError, match=says):
        parse_pattern(bad)


def test_errors_name_file_line_column_and_field() -> None:
    text = (
        "version: 1\n"
        "containers:\n"
        "  - name: w\n"
        "    egress:\n"
        "      - to_fqdn: [ok.example.com, 'a..b']\n"
        "        port: 443/tcp\n"
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    message = str(caught.value)
    assert message.startswith("p.yaml:5:35: containers[0].egress[0].to_fqdn[1]:"), message
    assert "empty label" in message


@pytest.mark.parametrize(
    ("dns", "says"),
    [
        ("{min_ttl: 0}", "dns.min_ttl: expected seconds"),
        ("{max_ttl: lots}", "dns.max_ttl: expected seconds"),
        ("{max_ttl: 1.5h}", "dns.max_ttl: expected seconds .* like 30s, 5m, 1h, 1d"),
        ("{max_ttl: 8d}", "dns.max_ttl: expected seconds from 1 to 604800"),
        ("{min_ttl: 100, max_ttl: 10}", "min_ttl 100 is above max_ttl 10"),
        ("{port: 53}", "dns.port: 53"),
        ("{upstreams: [resolver]}", "dns.upstreams[0]: expected an IP address"),
        ("{ttl: 5}", "dns.ttl"),
    ],
)
def test_dns_settings_are_checked(dns: str, says: str) -> None:
    with pytest.raises(PolicyError, match=says.replace("[", r"\[").replace("]", r"\]")):
        parse_policy(f"version: 1\ndns: {dns}\n", "p.yaml")


def test_dns_defaults_and_clamp() -> None:
    policy = parse_policy("version: 1\ndns: {min_ttl: 5, max_ttl: 60}\n", "p.yaml")
    assert [policy.dns.lifetime(t) for t in (1, 30, 600)] == [5, 30, 60]
    default = parse_policy("version: 1\n", "p.yaml").dns
    assert (default.min_ttl, default.max_ttl, default.upstreams) == (30, 86400, None)


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("90", 90), ("'90'", 90), ("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400),
     ("1h30m", 5400), ("1H", 3600)],
)  # fmt: skip
def test_dns_lifetimes_take_durations(written: str, seconds: int) -> None:
    policy = parse_policy(f"version: 1\ndns: {{min_ttl: 1, max_ttl: {written}}}\n", "p.yaml")
    assert policy.dns.max_ttl == seconds


def test_restrict_dns_per_entry_and_default() -> None:
    policy = parse_policy(
        "version: 1\ndefaults: {restrict_dns: true}\n"
        "containers:\n  - name: w\n    restrict_dns: false\n",
        "p.yaml",
    )
    assert policy.defaults.restrict_dns is True
    assert policy.containers[0].restrict_dns is False


@pytest.mark.parametrize(
    ("cap", "pattern", "expected"),
    [
        ("api.example.com", "api.example.com", True),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", "*.example.com", True),
        ("*.example.com", "**.example.com", False),
        ("**.example.com", "*.a.example.com", True),
        ("**.example.com", "*.example.com", True),
        ("**.example.com", "**.a.example.com", True),
        ("**.example.com", "example.com", False),
        ("api.example.com", "*.example.com", False),
    ],
)
def test_label_caps_cover(cap: str, pattern: str, expected: bool) -> None:
    assert covers(cap, pattern) is expected


def test_check_knows_a_name_rule_allows_something() -> None:
    text = (
        "version: 1\ncontainers:\n  - name: worker\n    egress:\n"
        "      - to: [192.0.2.0/24]\n        port: 443/tcp\n"
        "      - to_fqdn: [api.example.test]\n        port: 443/tcp\n"
    )
    messages = [str(w) for w in policy_warnings(*parse_policy_document(text, "p.yaml"))]
    assert messages == [], messages


def test_audit_says_when_docker_28_resolves_around_the_forwarder(tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    daemon.write_text('{"dns": ["192.0.2.53"]}')
    assert [f.code for f in dns_bypass("28.0.1", [])] == ["dns-bypasses-forwarder"]
    assert dns_bypass("28.0.1", daemon_dns(daemon)) == []
    assert dns_bypass("20.10.24+dfsg1", []) == []
