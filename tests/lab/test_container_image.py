"""dockwall's container image, built in a lab without a registry, enforces what the host
install enforces: the agent runs from the image with the host's network and NET_ADMIN,
and the host install's own `plan` then finds nothing to change, for both backends, while
real packets show the core scenario.

The first run makes the Debian base with debootstrap (minutes, cached under
$DOCKWALL_LAB_CACHE, default /var/cache/dockwall-lab); later runs import the cached tar.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockwall.lab.container_image import IMAGE, base_tarball, build_image
from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober
from tests.conftest import lab_name, own_lab

from .test_core_policies import EXAMPLE, V4, V6

pytestmark = [
    pytest.mark.lab,
    pytest.mark.xdist_group("image-lab"),
]  # one image build, not one per worker
AGENT = "dockwall-agent"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with own_lab(lab_name("ci")) as lab:
        yield lab


def host_dockwall(lab: Lab, *args: str, check: bool = True) -> int:
    result = lab.host.run([sys.executable, "-m", "dockwall", *args], check=check, timeout=120)
    return result.returncode


def start_agent(lab: Lab, policy: Path, backend: str) -> None:
    names = lab.names
    run_dir, state_dir = names.state_dir / "dockwall-run", names.state_dir / "dockwall-state"
    run_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    with lab.client() as client:
        client.containers.run(
            IMAGE,
            ["agent", "-f", "/etc/dockwall/policy.yaml", "--backend", backend],
            name=AGENT,
            detach=True,
            network_mode="host",
            cap_add=["NET_ADMIN"],
            volumes={
                str(names.socket): {"bind": "/var/run/docker.sock", "mode": "rw"},
                str(run_dir): {"bind": "/run/dockwall", "mode": "rw"},
                str(state_dir): {"bind": "/var/lib/dockwall", "mode": "rw"},
                str(policy): {"bind": "/etc/dockwall/policy.yaml", "mode": "ro"},
            },
        )


def stop_agent(lab: Lab) -> str:
    with lab.client() as client:
        container = client.containers.get(AGENT)
        logs = container.logs().decode(errors="replace")
        container.remove(force=True)
    return logs


def in_force(lab: Lab, policy: Path, backend: str) -> bool:
    """The host install would change nothing: the container's rules are its rules."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        args = ("plan", "--backend", backend, "--detailed-exitcode", "-f", str(policy))
        if host_dockwall(lab, *args, check=False) == 0:
            return True
        time.sleep(0.5)
    return False


@pytest.mark.timeout(1800)
def test_agent_from_the_image_enforces_the_core_scenario(lab: Lab, tmp_path: Path) -> None:
    started = time.monotonic()
    tarball = base_tarball()
    with lab.client() as client:
        build_seconds = build_image(client, tarball)
    print(f"base {time.monotonic() - started - build_seconds:.0f} s, build {build_seconds:.0f} s")
    policy = tmp_path / "policy.yaml"
    policy.write_text(EXAMPLE)
    prober = Prober(lab)
    for backend in ("iptables", "nftables"):
        start_agent(lab, policy, backend)
        try:
            assert in_force(lab, policy, backend), f"{backend}: the agent's rules never matched"
            for fam in (V4, V6):
                assert prober.probe(fam.other_src, "host:8080/tcp")
                assert prober.probe(fam.allowed_src, "host:5432/tcp")
                assert not prober.probe(fam.other_src, "host:5432/tcp")
                assert prober.probe("container:web", fam.at(fam.inet, 443))
                assert not prober.probe("container:web", fam.at(fam.inet, 80))
                assert not prober.probe("container:worker", fam.at(fam.inet, 443))
        finally:
            logs = stop_agent(lab)
            host_dockwall(lab, "reset")
        assert "Traceback" not in logs, logs
