"""Shared fixtures. Lab tests fail loudly when they cannot run: they are never skipped."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dockwall.lab.lab import Lab
from dockwall.lab.probe import Prober

from .lab.dockwall_cli import Dockwall

REQUIRED_TOOLS = ("dockerd", "ip", "nsenter", "iptables-save", "busybox")


def lab_preconditions() -> list[str]:
    problems = [] if os.geteuid() == 0 else ["lab tests need root"]
    problems += [f"{tool} is not installed" for tool in REQUIRED_TOOLS if not shutil.which(tool)]
    return problems


def new_lab_name(worker: str) -> str:
    """Unique per pytest-xdist worker and run, so parallel runs never collide;
    DOCKWALL_LAB_PREFIX (default `t`) keeps runs of different people apart."""
    prefix = os.environ.get("DOCKWALL_LAB_PREFIX", "t")
    return f"{prefix}{worker.removeprefix('gw')[:3]}{secrets.token_hex(3)}"[:10]


@contextmanager
def own_lab(name: str) -> Iterator[Lab]:
    """A lab that is torn down whatever happens; a machine that cannot run one fails the
    test loudly (never skips it)."""
    problems = lab_preconditions()
    if problems:
        pytest.fail("cannot run lab tests: " + "; ".join(problems) + " (run `make test` as root)")
    lab = Lab(name)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()


@pytest.fixture(scope="session")
def lab_session(worker_id: str) -> Iterator[Lab]:
    with own_lab(new_lab_name(worker_id)) as lab:
        yield lab


@pytest.fixture
def lab(lab_session: Lab) -> Lab:
    return lab_session


@pytest.fixture
def prober(lab: Lab) -> Prober:
    return Prober(lab)


@pytest.fixture(params=["iptables", "nftables"])
def dockwall(lab: Lab, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Dockwall]:
    """The dockwall CLI on the lab host, once per backend (they must behave the same);
    the lab is back to plain Docker afterwards."""
    dw = Dockwall(lab, tmp_path, request.param)
    dw.cleanup()
    try:
        yield dw
    finally:
        dw.cleanup()
