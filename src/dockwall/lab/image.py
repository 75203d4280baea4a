"""Builds the lab's only image from Debian's busybox-static: no registry is needed."""

from __future__ import annotations

import io
import shutil
import tarfile

from dockwall.errors import DockwallError

APPLETS = ("sh", "nc", "httpd", "sleep", "ip", "ping", "ping6", "cat", "echo", "ls", "nslookup")


def busybox_path() -> str:
    path = shutil.which("busybox")
    if path is None:
        raise DockwallError("busybox not found: install Debian's busybox-static")
    return path


def rootfs_tar() -> bytes:
    """A root filesystem with a static busybox and a symlink per applet the lab uses."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "tmp", "etc", "www"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox_path(), arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
    return buffer.getvalue()
