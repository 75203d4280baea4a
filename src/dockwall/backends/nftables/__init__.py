"""The nftables backend: table `inet dockwall`, hooked just before Docker's chains."""

from dockwall.backends.nftables.backend import NftablesBackend
from dockwall.backends.nftables.detect import docker_uses_nftables, native_nftables_table
from dockwall.backends.nftables.render import render

__all__ = ["NftablesBackend", "docker_uses_nftables", "native_nftables_table", "render"]
