"""nft transactions in-process through libnftables (ctypes), without a subprocess.

`nft -f -` costs a fork and exec per answer the forwarder holds (tens of milliseconds
on a loaded host); the library nft itself is built on takes the same script and
commits it as one transaction in well under a millisecond. Used only where the library
is installed (Debian's nftables package ships libnftables.so.1); otherwise the caller
falls back to the nft program through the runner.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

from dockwall.errors import DockwallError

LIBRARY = "libnftables.so.1"


class NftLibrary:
    def __init__(self) -> None:
        name = ctypes.util.find_library("nftables") or LIBRARY
        lib = ctypes.CDLL(name)
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        lib.nft_ctx_buffer_error.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.argtypes = [ctypes.c_void_p]
        lib.nft_ctx_get_error_buffer.restype = ctypes.c_char_p
        lib.nft_ctx_buffer_output.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.ctx = lib.nft_ctx_new(0)
        if not self.ctx:
            raise OSError("libnftables: no context")
        lib.nft_ctx_buffer_error(self.ctx)
        lib.nft_ctx_buffer_output(self.ctx)
        self.lock = threading.Lock()

    def run(self, script: str) -> None:
        """One transaction; raises with nft's own message when the kernel refuses it."""
        with self.lock:
            code = self.lib.nft_run_cmd_from_buffer(self.ctx, script.encode())
            if code != 0:
                error = self.lib.nft_ctx_get_error_buffer(self.ctx) or b""
                raise DockwallError(f"nft: {error.decode(errors='replace').strip()}")


def load() -> NftLibrary | None:
    try:
        return NftLibrary()
    except (OSError, AttributeError):
        return None
