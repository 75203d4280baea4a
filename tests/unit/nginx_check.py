"""Debian's nginx checks a generated config: `nginx -t` with every path in a scratch dir."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

MIME_TYPES = Path("/etc/nginx/mime.types")


def main_config(snippet: Path, prefix: Path) -> Path:
    """A whole nginx.conf around the exported conf.d snippet, writing only under prefix."""
    for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / name).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        f"    access_log {prefix}/access.log;\n"
        f"    client_body_temp_path {prefix}/client_body;\n"
        f"    proxy_temp_path {prefix}/proxy;\n"
        f"    fastcgi_temp_path {prefix}/fastcgi;\n"
        f"    uwsgi_temp_path {prefix}/uwsgi;\n"
        f"    scgi_temp_path {prefix}/scgi;\n"
        f"    include {snippet};\n"
        "}\n"
    )
    return conf


def nginx_test(snippet_text: str, prefix: Path) -> subprocess.CompletedProcess[str]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed (scripts/setup.sh installs Debian's nginx)")
    snippet = prefix / "dockwall.conf"
    snippet.write_text(snippet_text)
    conf = main_config(snippet, prefix)
    return subprocess.run(
        [nginx, "-t", "-p", str(prefix), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
