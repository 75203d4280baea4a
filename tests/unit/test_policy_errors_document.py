"""Errors about the document itself (encoding, YAML syntax, aliases) and about labels."""

from __future__ import annotations

import pytest

from dockwall.errors import Location, PolicyError
from dockwall.policy import MAX_LABEL_BYTES, parse_label_rules, parse_policy

HEAD = "version: 1\ncontainers:\n  - name: web\n"


def error_of(data: str | bytes) -> PolicyError:
    with pytest.raises(PolicyError) as info:
        parse_policy(data, "policy.yaml")
    return info.value


CASES: list[tuple[str, str, str]] = [
    (
        "non-scalar key",
        "version: 1\n? [a]\n: b\n",
        "policy.yaml:2:3: keys must be plain words, not lists or mappings",
    ),
    (
        "empty file",
        "",
        "policy.yaml:1:1: the policy is empty (or only comments)",
    ),
    (
        "only comments",
        "# a policy\n\n   # nothing yet\n",
        "policy.yaml:1:1: the policy is empty (or only comments)",
    ),
    (
        "top level is a list",
        "- version: 1\n",
        "policy.yaml:1:1: the top level must be a mapping with "
        "version, backend, defaults, labels, dns, lists, log, containers, not a list",
    ),
    (
        "top level is a word",
        "hello\n",
        "policy.yaml:1:1: the top level must be a mapping with "
        "version, backend, defaults, labels, dns, lists, log, containers, not 'hello'",
    ),
    (
        "syntax error",
        "version: 1\n  foo: bar\n",
        "policy.yaml:2:6: invalid YAML: mapping values are not allowed here",
    ),
    (
        "syntax error with context",
        "version: 1\ncontainers: [\n  - name: x\n",
        "policy.yaml:3:3: invalid YAML: while parsing a flow node at line 3, column 3: "
        "expected the node content, but found '-'",
    ),
    (
        "two documents",
        "version: 1\n---\nversion: 1\n",
        "policy.yaml:2:1: invalid YAML: expected a single document in the stream "
        "at line 1, column 1: but found another document",
    ),
    (
        "tab indentation",
        "version: 1\ncontainers:\n\t- name: web\n",
        "policy.yaml:3:1: invalid YAML: while scanning for the next token: "
        "found character '\\t' that cannot start any token",
    ),
    (
        "control character",
        "version: 1\nbackend: a\x01b\n",
        "policy.yaml:2:11: character U+0001 is not allowed in YAML",
    ),
    (
        "alias",
        "version: 1\ndefaults: &d {ingress: deny}\nbackend: *d\n",
        "policy.yaml:3:10: YAML aliases (*name) are not supported: write the value out in full",
    ),
    (
        "deep nesting",
        "version: 1\nbackend: " + "[" * 100 + "]" * 100 + "\n",
        "policy.yaml:2:73: nested more than 64 levels deep",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_document_error_message(text: str, expected: str) -> None:
    assert str(error_of(text)) == expected


def test_invalid_utf8_points_at_the_byte() -> None:
    error = error_of("version: 1\nbackend: é".encode() + b"\xff\n")
    assert str(error) == "policy.yaml:2:11: not valid UTF-8 (byte 0xff); save the file as UTF-8"


def test_latin1_file() -> None:
    error = error_of("version: 1\n# café\n".encode("latin-1"))
    assert str(error) == "policy.yaml:2:6: not valid UTF-8 (byte 0xe9); save the file as UTF-8"


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}" + f",*{chr(97 + i)}" * 8 + "]"
        for i in range(8)
    ]
    error = error_of("\n".join(lines) + "\n")
    assert error.message.startswith("YAML aliases")
    assert error.location == Location("policy.yaml", 2, 8)


def test_recursive_anchor_is_refused() -> None:
    error = error_of("version: 1\nx: &a [*a]\n")
    assert error.message.startswith("YAML aliases")


def test_unsafe_tags_are_inert() -> None:
    error = error_of("version: 1\nbackend: !!python/object/apply:os.system [echo hi]\n")
    assert error.field == "backend"


def test_long_input_is_clipped_in_messages() -> None:
    error = error_of(HEAD + "    ingress:\n      - port: " + "x" * 5000 + "\n")
    assert len(str(error)) < 200


LABEL_CASES: list[tuple[str, str, str, str]] = [
    (
        "out of range",
        "[{port: 99999/tcp}]",
        "ingress",
        "label web:1:9: ingress[0].port: port 99999 is out of range 1-65535",
    ),
    (
        "cidr",
        "[{to: [10.0.0.1/8]}]",
        "egress",
        "label web:1:8: egress[0].to[0]: 10.0.0.1/8 has host bits set; "
        "did you mean 10.0.0.0/8 or 10.0.0.1/32?",
    ),
    (
        "unknown key",
        "[{to: [any], port: 1/tcp, form: x}]",
        "egress",
        "label web:1:27: egress[0].form: unknown key 'form' (allowed keys: to, port, ports, to_containers, to_fqdn, except)",
    ),
    (
        "from is ingress only",
        "[{from: [any]}]",
        "egress",
        "label web:1:3: egress[0].from: unknown key 'from' (allowed keys: to, port, ports, to_containers, to_fqdn, except)",
    ),
    (
        "word",
        "maybe",
        "egress",
        "label web:1:1: egress: expected allow, deny or a list of rules, got 'maybe'",
    ),
    (
        "mapping",
        "{port: 80/tcp}",
        "ingress",
        "label web:1:1: ingress: expected allow, deny or a list of rules, got a mapping",
    ),
    ("empty", "", "ingress", "label web:1:1: ingress: the label is empty (or only comments)"),
    (
        "syntax",
        "[{port: 80/tcp}",
        "ingress",
        "label web:1:16: invalid YAML: while parsing a flow sequence at line 1, column 1: "
        "expected ',' or ']', but got '<stream end>'",
    ),
]


@pytest.mark.parametrize(
    ("value", "direction", "expected"),
    [case[1:] for case in LABEL_CASES],
    ids=[c[0] for c in LABEL_CASES],
)
def test_label_error(value: str, direction: str, expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_label_rules(value, "label web", direction)
    assert str(info.value) == expected


def test_label_size_is_bounded() -> None:
    value = "[" + "{to: [any]}, " * (MAX_LABEL_BYTES // 10) + "]"
    with pytest.raises(PolicyError) as info:
        parse_label_rules(value, "label web", "egress")
    assert info.value.field == "egress"
    assert info.value.message.endswith(f"the limit is {MAX_LABEL_BYTES}")
