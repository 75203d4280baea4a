"""Named lists, `except:` and `deny_with` from the policy file to the IR and nft rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockwall.backends.nftables.backend import added_objects, load
from dockwall.backends.nftables.render import render
from dockwall.backends.nftables.view import table_view
from dockwall.compile.compiler import compile_policy
from dockwall.errors import DockwallError
from dockwall.policy import read_policy
from tests.unit.state_samples import STATE

POLICY = """\
version: 1
defaults: {deny_with: reject}
lists:
  feeds: {file: feeds.txt, on_error: skip}
  partners: {file: partners.txt}
containers:
  - name: web
    ingress:
      - from: [any]
        except: [list:feeds, 192.0.2.0/28, 2001:db8:bad::/48]
        port: 8080/tcp
      - from: [list:partners]
        port: 2222/tcp
  - name: db
    deny_with: drop
    egress:
      - to: [198.51.100.0/24, list:partners]
        except: [198.51.100.128/25]
"""


def write_policy(tmp_path: Path, text: str = POLICY) -> Path:
    (tmp_path / "feeds.txt").write_text(
        "# feed\n203.0.113.7\n203.0.113.0/28\nnot-an-ip\n2001:db8:f::1\n\n"
    )
    (tmp_path / "partners.txt").write_text("198.51.100.9  # partner a\n2001:db8:1::9\n")
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def rule_texts(tmp_path: Path) -> dict[str, list[str]]:
    loaded = read_policy(write_policy(tmp_path))
    ruleset = compile_policy(loaded.policy, STATE).ruleset
    view = table_view(added_objects(render(ruleset)))
    return {name: list(chain.rules) for name, chain in view.chains.items()}


def test_lists_are_read_next_to_the_policy_and_bad_lines_skipped_with_a_warning(
    tmp_path: Path,
) -> None:
    loaded = read_policy(write_policy(tmp_path))
    feeds = loaded.policy.loaded_lists["feeds"]
    assert feeds.v4 == ("203.0.113.0/28",)  # the host inside the /28 is covered by it
    assert feeds.v6 == ("2001:db8:f::1",)
    assert feeds.interval4 and not feeds.interval6
    assert any("feeds.txt:4: 'not-an-ip'" in w for w in loaded.warnings)


def test_a_bad_line_without_skip_names_file_and_line(tmp_path: Path) -> None:
    path = write_policy(tmp_path, POLICY.replace(", on_error: skip", ""))
    with pytest.raises(DockwallError, match=r"feeds\.txt:4: 'not-an-ip' is not an IP address"):
        read_policy(path)


def test_except_and_lists_become_set_lookups_and_not_equal_matches(tmp_path: Path) -> None:
    chains = rule_texts(tmp_path)
    web = chains["in-web"]
    assert (
        "ip saddr != 192.0.2.0/28 ip saddr != @list-feeds-v4 meta l4proto "
        "tcp ct original proto-dst 8080 counter return"
    ) in web
    assert any("ip6 saddr != 2001:db8:bad::/48 ip6 saddr != @list-feeds-v6" in r for r in web)
    assert any(r.startswith("ip saddr @list-partners-v4 ") for r in web)
    assert web[-2:] == [
        "meta l4proto tcp counter reject with tcp reset",
        "counter reject with icmpx admin-prohibited",
    ]
    db = chains["out-db"]
    assert "ip daddr 198.51.100.0/24 ip daddr != 198.51.100.128/25 counter return" in db
    assert "ip daddr @list-partners-v4 ip daddr != 198.51.100.128/25 counter return" in db
    assert db[-1] == "counter drop"


def test_each_list_is_one_set_per_family_shared_and_loadable_as_a_script(
    tmp_path: Path,
) -> None:
    loaded = read_policy(write_policy(tmp_path))
    ruleset = compile_policy(loaded.policy, STATE).ruleset
    commands = render(ruleset)
    view = table_view(added_objects(commands))
    assert view.sets["list-feeds-v4"].elements == {"203.0.113.0/28"}
    assert "interval" in view.sets["list-feeds-v4"].declaration
    assert "interval" not in view.sets["list-partners-v4"].declaration
    assert view.sets["list-partners-v6"].elements == {"2001:db8:1::9"}
    script = load(commands, view).payload
    assert "reject with tcp reset" in script
    assert [s.name for s in ruleset.lists] == ["feeds", "partners"]


def test_iptables_rules_match_list_sets_and_carve_with_negated_sets(tmp_path: Path) -> None:
    from dockwall.backends.iptables.render import render as render_iptables

    loaded = read_policy(write_policy(tmp_path))
    ruleset = compile_policy(loaded.policy, STATE).ruleset
    v4 = render_iptables(ruleset, "ipv4")
    web = next(rules for chain, rules in v4.chains.items() if chain.startswith("DOCKWALL-I-"))
    carve = next(r for r in web if "! --match-set dwl-feeds-v4 src" in r)
    assert carve.startswith("-p tcp -m set ! --match-set dockwall-")
    assert carve.endswith(
        "-m set ! --match-set dwl-feeds-v4 src -m conntrack --ctorigdstport 8080 "
        "--ctdir ORIGINAL -j RETURN"
    )
    assert (
        "-p tcp -m set --match-set dwl-partners-v4 src -m conntrack --ctorigdstport 2222 "
        "--ctdir ORIGINAL -j RETURN" in web
    )
    assert web[-2:] == [
        "-p tcp -j REJECT --reject-with tcp-reset",
        "-j REJECT --reject-with icmp-admin-prohibited",
    ]
    assert v4.sets["dwl-feeds-v4"].members == ("203.0.113.0/28",)
    v6 = render_iptables(ruleset, "ipv6")
    assert v6.sets["dwl-partners-v6"].members == ("2001:db8:1::9",)
    assert any(r.endswith("icmp6-adm-prohibited") for rules in v6.chains.values() for r in rules)


def test_every_set_a_rule_matches_counts_as_referenced() -> None:
    from dockwall.backends.iptables.live import parse_filter
    from dockwall.backends.iptables.ownership import OWNED
    from dockwall.backends.iptables.plan import set_names

    rule = "-p tcp -m set ! --match-set dockwall-0123456789abcdef src -m set ! --match-set dwl-feeds-v4 src -j RETURN"
    table = parse_filter(
        f"*filter\n:DOCKWALL-I-x - [0:0]\n-A DOCKWALL-I-x {OWNED}\n-A DOCKWALL-I-x {rule}\nCOMMIT\n"
    )
    assert set_names([table]) == {"dockwall-0123456789abcdef", "dwl-feeds-v4"}


def test_exports_expand_lists_map_except_to_ipblock_and_others_leave_the_rule_out(
    tmp_path: Path,
) -> None:
    from dockwall.export.k8s import export_k8s
    from dockwall.export.ufw import export_ufw
    from dockwall.export.view import build_view

    view = build_view(read_policy(write_policy(tmp_path)).policy)
    k8s = export_k8s(view, "policy.yaml")
    assert "except:\n        - 203.0.113.0/28\n        - 192.0.2.0/28" in k8s.text
    assert "cidr: 198.51.100.9/32" in k8s.text
    ufw = export_ufw(view, "policy.yaml")
    assert any("cannot carve addresses out" in str(w) for w in ufw.warnings)
    assert "8080" not in ufw.text


@pytest.mark.parametrize(
    ("extra", "label", "problem"),
    [
        ("", "[{from: [list:partners], port: 80/tcp}]", None),
        ("", "[{from: [list:nope], port: 80/tcp}]", "list:nope is not defined in the policy"),
        (
            "labels: {ingress_from: [192.0.2.0/24]}\n",
            "[{from: [list:partners], port: 80/tcp}]",
            "a label cannot allow list:partners",
        ),
    ],
)
def test_labels_may_name_defined_lists_but_not_under_caps(
    tmp_path: Path, extra: str, label: str, problem: str | None
) -> None:
    from dataclasses import replace

    from dockwall.model.state import HostState
    from tests.unit.state_samples import WEB

    text = POLICY.split("containers:", maxsplit=1)[0] + extra + "containers: []\n"
    policy = read_policy(write_policy(tmp_path, text)).policy
    web = replace(WEB, labels={"dockwall.ingress": label})
    compiled = compile_policy(policy, HostState(STATE.bridges, (web,)))
    if problem is None:
        assert compiled.held == ()
        assert [s.name for s in compiled.ruleset.lists] == ["partners"]
    else:
        assert any(problem in h and "label ignored" in h for h in compiled.held), compiled.held
        assert compiled.ruleset.lists == ()
