"""dockwall's container image built inside a lab, where there is no registry.

The base is Debian made by debootstrap from the package mirror (once: the tarball is
cached, since it takes minutes) and `docker import`ed into the lab's dockerd; the build
context is a copy of deploy/Dockerfile, the sources and the runtime dependencies of the
running dockwall (its Python is Debian 12's minor version, 3.11, so they load as they
are). The build runs with no network: the same Dockerfile that pip-installs on an
ordinary host installs nothing here.
"""

from __future__ import annotations

import os
import re
import shutil
import sysconfig
import tempfile
import time
from importlib import metadata
from pathlib import Path

import docker
from docker.errors import DockerException

from dockwall.errors import DockwallError
from dockwall.runner import Runner, SubprocessRunner

CACHE_DIR = Path(os.environ.get("DOCKWALL_LAB_CACHE", "/var/cache/dockwall-lab"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "iptables", "nftables", "ipset", "conntrack", "iproute2")
BASE_IMAGE = "dockwall-lab/debian:bookworm"
IMAGE = "dockwall-lab/dockwall:latest"
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.-]+)")


def project_root() -> Path:
    """The checkout dockwall runs from: the lab builds what is being tested."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "deploy" / "Dockerfile").is_file():
        raise DockwallError(f"{root}: no deploy/Dockerfile; build the image from a checkout")
    return root


def base_tarball(runner: Runner | None = None, cache: Path = CACHE_DIR) -> Path:
    """The Debian root file system as a tar, made once. debootstrap runs in this
    machine's own namespace (it needs the package mirror) and changes nothing there but
    the cache directory; a half-made tree is never taken for a finished one."""
    runner = runner or SubprocessRunner()
    tarball = cache / f"{SUITE}-dockwall-base.tar"
    if tarball.is_file():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix="debootstrap-") as scratch:
        tree = Path(scratch) / "root"
        started = time.monotonic()
        runner.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(tree),
                MIRROR,
            ],
            timeout=1800,
        )
        partial = Path(scratch) / "base.tar"
        runner.run(["tar", "-C", str(tree), "-cf", str(partial), "."], timeout=600)
        partial.rename(tarball)
        (cache / f"{SUITE}-dockwall-base.seconds").write_text(f"{time.monotonic() - started:.0f}\n")
    return tarball


def runtime_distributions() -> list[metadata.Distribution]:
    """dockwall's dependencies and theirs, without dockwall itself (copied as source)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [r for r in metadata.requires("dockwall") or [] if "extra ==" not in r]
    while todo:
        match = REQUIREMENT.match(todo.pop())
        if match is None:
            continue
        name = match.group(1).lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        todo += [r for r in dist.requires or [] if "extra ==" not in r]
    return list(seen.values())


def stage_context(dest: Path) -> None:
    """The build context: what the Dockerfile copies, plus vendor/site."""
    root = project_root()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(root / "src", dest / "src", ignore=ignore)
    shutil.copytree(root / "deploy", dest / "deploy", ignore=ignore)
    site = dest / "deploy" / "vendor" / "site"
    purelib = Path(sysconfig.get_paths()["purelib"])
    for dist in runtime_distributions():
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file))).resolve()
            if not source.is_file() or purelib not in source.parents:
                continue
            target = site / source.relative_to(purelib)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def build_image(client: docker.DockerClient, tarball: Path) -> float:
    """Imports the base and builds IMAGE on the lab's dockerd; returns the build's seconds."""
    with tarball.open("rb") as data:
        client.api.import_image_from_data(data, repository=BASE_IMAGE.partition(":")[0], tag=SUITE)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dockwall-image-") as scratch:
        stage_context(Path(scratch))
        try:
            client.images.build(
                path=scratch,
                dockerfile="deploy/Dockerfile",
                tag=IMAGE,
                buildargs={"BASE": BASE_IMAGE},
                network_mode="none",
                rm=True,
                forcerm=True,
            )
        except DockerException as exc:
            raise DockwallError(f"building {IMAGE} failed: {exc}") from exc
    return time.monotonic() - started
