"""Unmounts whatever dockerd and containerd mounted under a lab's directories."""

from __future__ import annotations

from pathlib import Path

from dockwall.runner import Runner


def mount_points_under(roots: tuple[Path, ...]) -> list[str]:
    """Mount points below the roots, deepest first, read from the kernel's own table."""
    points: list[str] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            points.append(point)
    return sorted(set(points), key=len, reverse=True)


def unmount_all(runner: Runner, roots: tuple[Path, ...]) -> None:
    """Plain unmount first; a lazy one for anything still busy so teardown always ends."""
    for _ in range(3):
        points = mount_points_under(roots)
        if not points:
            return
        for point in points:
            if runner.run(["umount", point], check=False).returncode != 0:
                runner.run(["umount", "-l", point], check=False)
