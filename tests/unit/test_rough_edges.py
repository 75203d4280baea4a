"""Rough edges a new user hit (issue 9, section 5), in the parts that need no root:
output off a terminal, `lab status` as a table, `lab exec dockwall`, status without a
policy. Their lab tests are in tests/lab/test_rough_edges.py."""

from __future__ import annotations

import fcntl
import ipaddress
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

from rich.console import Console

from dockwall.commands.lab import ports_text, same_dockwall, status_table
from dockwall.commands.status import live_lines, ruleset_rows
from dockwall.compile.ir import Allow, Filter, Guard, PortMatch, Ruleset
from dockwall.model.state import Attachment, Container, PublishedPort

# `:abcd:` and `:beef:` would be emoji codes to rich: addresses must come out as written.
LONG_RULE = (
    "-d 2001:db8:200:abcd::2/128 ! -i br-6ff4aeb24b06 -o br-6ff4aeb24b06 -s 2001:db8:beef::/48 "
    "-m conntrack --ctorigdstport 8080 --ctdir ORIGINAL -g DOCKWALL-I-8a1d611c6fc2"
)


def test_a_pipe_gets_whole_lines() -> None:
    """Everything dockwall prints goes through make_console; in a pipe it never wraps."""
    program = (
        "from rich.table import Table\n"
        "from dockwall.commands.report import console, err\n"
        "from dockwall.terminal import make_console\n"
        f"rule = {LONG_RULE!r}\n"
        "console.print('  + ' + rule)\n"
        "err.print('warning: ' + rule)\n"
        "table = Table('family', 'chain', 'rule')\n"
        "table.add_row('ipv6', 'DOCKWALL-FORWARD', rule)\n"
        "make_console().print(table)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert len(LONG_RULE) > 120
    assert result.stdout.splitlines()[0] == "  + " + LONG_RULE
    assert result.stderr.splitlines() == ["warning: " + LONG_RULE]
    assert sum(LONG_RULE in line for line in result.stdout.splitlines()) == 2


def test_a_terminal_still_fits_the_window() -> None:
    """Only pipes are unwrapped: on a terminal (a real pty, 60 columns) rich wraps to it."""
    program = (
        "from dockwall.terminal import make_console\n"
        f"make_console().print('  + ' + {LONG_RULE!r}, highlight=False)\n"
    )
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    try:
        subprocess.run(
            [sys.executable, "-c", program], stdout=follower, env=env, timeout=60, check=True
        )
        output = os.read(leader, 65536).decode()
    finally:
        os.close(leader)
        os.close(follower)
    lines = [line for line in output.replace("\r", "").split("\n") if line]
    assert len(lines) > 1 and all(len(line) <= 60 for line in lines), lines
    assert "".join(lines).replace(" ", "") == "+" + LONG_RULE.replace(" ", "")


def test_force_color_in_a_pipe_still_gets_whole_lines() -> None:
    program = (
        "from dockwall.terminal import make_console\n"
        f"make_console().print({LONG_RULE!r}, highlight=False)\n"
    )
    env = {**os.environ, "FORCE_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert result.stdout.splitlines() == [LONG_RULE]


DOCKER_PORTS = {
    "5432/tcp": [
        {"HostIp": "0.0.0.0", "HostPort": "5432"},
        {"HostIp": "::", "HostPort": "5432"},
    ],
    "80/tcp": None,
}


def test_lab_ports_read_like_docker_ps() -> None:
    assert ports_text(DOCKER_PORTS).splitlines() == [
        "0.0.0.0:5432->5432/tcp",
        "[::]:5432->5432/tcp",
        "80/tcp",
    ]
    assert ports_text(None) == ""


def test_lab_status_is_a_table_not_a_dict() -> None:
    info = {
        "name": "demo",
        "docker_host": "unix:///run/dockwall-lab/demo/docker.sock",
        "dockerd_pid": 4242,
        "containers": [{"name": "db", "status": "running", "ports": DOCKER_PORTS}],
    }
    console = Console(width=200, record=True)
    console.print(status_table(info))
    text = console.export_text()
    assert "{" not in text and "HostIp" not in text
    assert "lab demo: dockerd 4242, DOCKER_HOST=unix:///run/dockwall-lab/demo/docker.sock" in text
    row = next(line for line in text.splitlines() if " db " in line)
    assert "running" in row and "0.0.0.0:5432->5432/tcp" in row


def test_lab_exec_runs_this_dockwall() -> None:
    assert same_dockwall(["dockwall", "plan", "-f", "p.yaml"]) == [
        sys.executable,
        "-m",
        "dockwall",
        "plan",
        "-f",
        "p.yaml",
    ]
    assert same_dockwall(["docker", "ps"]) == ["docker", "ps"]
    assert same_dockwall(["/usr/bin/dockwall"]) == ["/usr/bin/dockwall"]


def web() -> Container:
    address = ipaddress.ip_address("172.17.0.2")
    return Container(
        "0123456789abcdef",
        "web",
        attachments=(Attachment("bridge", "docker0", (address,)),),
        ports=(PublishedPort(8080, 80, "tcp"), PublishedPort(8080, 80, "tcp", "::")),
    )


def test_without_rules_everyone_reaches_published_ports() -> None:
    (row,) = ruleset_rows([web()], None)
    assert row["entry"] == "none (Docker's default)"
    assert row["published"] == ["8080->80/tcp"]
    assert (row["ingress"], row["egress"]) == ("allow all", "allow all")


def test_with_rules_in_force_status_reads_the_applied_ruleset() -> None:
    allow = Allow((ipaddress.ip_network("192.0.2.0/24"),), (PortMatch("tcp", 8080, 8080),), True)
    guard = Guard("0123456789ab", "web", "name=web", (), Filter((allow,)), Filter())
    ruleset = Ruleset((), (guard,), Filter(), None)
    other = Container("fedcba9876543210", "other")
    rows = {r["name"]: r for r in ruleset_rows([web(), other], ruleset)}
    assert rows["web"]["entry"] == "name=web"
    assert rows["web"]["ingress"] == "8080/tcp (host port) from 192.0.2.0/24"
    assert rows["web"]["egress"] == "deny all"
    assert (rows["other"]["entry"], rows["other"]["ingress"]) == ("defaults", "deny all")


def test_status_says_no_policy_was_given() -> None:
    report = {
        "no_policy": "/etc/dockwall/policy.yaml does not exist",
        "backend": "iptables",
        "reason": "Docker uses iptables",
        "rules_in_force": False,
        "applied_ruleset_known": False,
    }
    first, second = live_lines(report)
    assert first.startswith("[yellow]no policy given[/]: /etc/dockwall/policy.yaml does not")
    assert "no dockwall rules in force: Docker's defaults apply" in second
    in_force = live_lines({**report, "rules_in_force": True, "applied_ruleset_known": True})
    assert "dockwall's rules are in force (as last applied)" in in_force[1]


def test_every_console_comes_from_the_factory() -> None:
    """A Console made anywhere else would bring the 80-column wrapping back to pipes."""
    source = Path(__file__).resolve().parents[2] / "src" / "dockwall"
    makers = [
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if "Console(" in path.read_text()
    ]
    assert makers == ["terminal.py"]
