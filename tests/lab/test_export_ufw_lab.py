"""`dockwall export ufw` with the real ufw, active in a lab's Docker host namespace.

ufw runs against a scratch root/data directory (a copy of Debian's /etc/ufw, /lib/ufw
and /usr/share/ufw, with its sysctl and module loading turned off) and only inside the
lab's network namespace; the test checks that this machine's own firewall and /etc/ufw
are exactly as they were.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober
from dockwall.runner import SubprocessRunner
from tests.conftest import lab_name, own_lab

pytestmark = pytest.mark.lab

POLICY = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: web
    ingress:
      - port: 8080/tcp
        from: [any]
  - name: db
    ingress:
      - port: 5432/tcp
        from: [192.0.2.100/32]
"""
ALLOWED, OTHER = "192.0.2.100", "192.0.2.7"
COUNTERS = re.compile(r"\[\d+:\d+\]")


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with own_lab(lab_name("xp")) as lab:
        yield lab


def machine_firewall() -> str:
    """This machine's own rules (its own namespace), without counters."""
    parts = []
    for tool in ("iptables-save", "ip6tables-save"):
        text = SubprocessRunner().run([tool]).stdout
        parts += [COUNTERS.sub("", x) for x in text.splitlines() if not x.startswith("#")]
    return "\n".join(parts)


def etc_ufw() -> str:
    return "\n".join(
        f"{p}:{hashlib.sha256(p.read_bytes()).hexdigest()}"
        for p in sorted(Path("/etc/ufw").rglob("*"))
        if p.is_file()
    )


def scratch_ufw(root: Path, after_block: str) -> Path:
    """A private copy of ufw's configuration; ufw-init reads and writes only here."""
    for part in ("etc/ufw", "lib/ufw", "usr/share/ufw"):
        shutil.copytree(Path("/") / part, root / part)
    defaults = (Path("/etc/default/ufw")).read_text()
    defaults = re.sub(r"(?m)^IPT_SYSCTL=.*$", "IPT_SYSCTL=", defaults)
    defaults = re.sub(r"(?m)^IPT_MODULES=.*$", 'IPT_MODULES=""', defaults)
    (root / "etc/default").mkdir(parents=True)
    (root / "etc/default/ufw").write_text(defaults)
    after = root / "etc/ufw/after.rules"
    after.write_text(after.read_text() + after_block)
    return root


def heredoc(script: str) -> str:
    """The after.rules block the exported script appends."""
    start = script.index("<<'EOF'\n") + len("<<'EOF'\n")
    return script[start : script.index("\nEOF\n", start)] + "\n"


def test_exported_rules_restrict_a_published_port_with_ufw_active(lab: Lab, tmp_path: Path) -> None:
    if shutil.which("ufw") is None:
        pytest.fail("ufw is not installed (scripts/setup.sh installs it)")
    before_machine, before_etc = machine_firewall(), etc_ufw()
    prober = Prober(lab)
    assert prober.probe(OTHER, "host:5432/tcp"), "plain Docker: 5432 must be open to all"

    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    export = lab.host.run(
        [sys.executable, "-m", "dockwall", "export", "ufw", "--live", "-f", str(policy)],
        timeout=120,
    )
    script = export.stdout
    commands = [shlex.split(x) for x in script.splitlines() if x.startswith("ufw route ")]
    assert len(commands) == 3, script  # web over both families, db over IPv4
    assert "go stale" in export.stderr

    root = scratch_ufw(tmp_path / "ufw", heredoc(script))
    ufw = ["ufw", f"--rootdir={root}", f"--datadir={root}"]
    try:
        for command in commands:
            result = lab.host.run([*ufw, *command[1:]], timeout=60)
            assert "Rules updated" in result.stdout, (command, result.stdout, result.stderr)
        enabled = lab.host.run([*ufw, "--force", "enable"], timeout=60)
        assert "active" in enabled.stdout, enabled.stdout + enabled.stderr
        status = lab.host.run([*ufw, "status"], timeout=60).stdout
        assert "Status: active" in status and "ALLOW FWD" in status, status
        assert "ufw-user-forward" in lab.host.run(["iptables", "-S", "DOCKER-USER"]).stdout

        assert prober.probe(ALLOWED, "host:5432/tcp"), "the allowed source is refused"
        assert not prober.probe(OTHER, "host:5432/tcp"), "ufw did not restrict 5432"
        assert prober.probe(OTHER, "host:8080/tcp"), "8080 is open to all in the policy"
    finally:
        lab.host.run([*ufw, "--force", "disable"], check=False, timeout=60)
    assert machine_firewall() == before_machine, "this machine's own firewall changed"
    assert etc_ufw() == before_etc, "this machine's /etc/ufw changed"
    assert "ENABLED=no" in Path("/etc/ufw/ufw.conf").read_text()


VARIED = """\
version: 1
defaults: {ingress: allow}
containers:
  - name: web
    ingress:
      - ports: [8080/tcp, 7000-7010/udp]
        container_ports: [80/tcp, 53/udp]
        from: [192.0.2.0/24, "2001:db8:100::/64"]
  - name: db
    ingress:
      - port: 5432/tcp
        from: [any]
      - port: 6000-6100/tcp
        from: ["2001:db8:200::/48"]
"""


@pytest.mark.parametrize("live", [False, True], ids=["file", "live"])
def test_ufw_accepts_every_generated_command(lab: Lab, tmp_path: Path, live: bool) -> None:
    before_machine = machine_firewall()
    policy = tmp_path / "policy.yaml"
    policy.write_text(VARIED)
    argv = [sys.executable, "-m", "dockwall", "export", "ufw", "-f", str(policy)]
    script = lab.host.run([*argv, *(["--live"] if live else [])], timeout=120).stdout
    commands = [shlex.split(x) for x in script.splitlines() if x.startswith("ufw route ")]
    assert len(commands) >= 5, script
    root = scratch_ufw(tmp_path / "ufw", heredoc(script))
    ufw = ["ufw", f"--rootdir={root}", f"--datadir={root}"]
    for command in commands:
        result = lab.host.run([*ufw, *command[1:]], check=False, timeout=60)
        assert result.returncode == 0 and "Rules updated" in result.stdout, (
            command, result.stdout, result.stderr,
        )  # fmt: skip
    status = lab.host.run([*ufw, "show", "added"], timeout=60).stdout
    assert status.count("ufw route allow") == len(commands), status
    assert machine_firewall() == before_machine
