"""`dockwall export nginx` in front of a real container: a WebSocket through it outlives
nginx's 60 s default read timeout across an idle gap of over 60 s during which dockwall
applies 20 times, and plain HTTP through the same location still works. The article's snippet (Connection "Upgrade"
hard-coded, default timeouts) runs next to it as the control and fails both."""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockwall.lab import topology as t
from dockwall.lab.lab import Lab
from dockwall.runner import SubprocessRunner, netns_path
from tests.conftest import lab_name, own_lab

from ..unit.nginx_check import main_config
from .dockwall_cli import Dockwall

pytestmark = pytest.mark.lab

HERE = Path(__file__).resolve().parent
WS_PEER = str(HERE / "ws_peer.py")
WS_HTTP_PEER = str(HERE / "ws_http_peer.py")
APPLY_MANY = str(HERE / "apply_many.py")
CLIENT = "192.0.2.100"
STRANGER = "203.0.113.10"
IDLE_GAP = 65.0
APPLIES = 20

POLICY_A = """\
version: 1
defaults: {ingress: deny}
containers:
  - name: wsapp
    ingress: [{port: 9765/tcp, from: [192.0.2.0/24]}]
"""
POLICY_B = POLICY_A + "    egress: deny\n"
ARTICLE = """
server {{
    listen 81;
    location / {{
        proxy_pass http://{upstream};
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "Upgrade";
    }}
}}
"""


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with own_lab(lab_name("xp")) as lab:
        yield lab


class WsClient:
    """One WebSocket from the lab internet, fed line by line (see ws_peer.py)."""

    def __init__(self, lab: Lab, url: str) -> None:
        runner = SubprocessRunner(netns=netns_path(lab.names.inet_ns))
        self.proc = runner.interactive(
            [sys.executable, WS_PEER, "client", "--url", url, "--src", CLIENT]
        )
        assert self.proc.stdout is not None
        self.greeting = self.proc.stdout.readline().strip()

    def exchange(self, text: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(text + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return "fail client gone"
        return self.proc.stdout.readline().strip() or "fail no answer"

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


def http_get(lab: Lab, port: int, src: str = CLIENT) -> str:
    url = f"http://{t.HOST_UPLINK_V4}:{port}/"
    runner = SubprocessRunner(netns=netns_path(lab.names.inet_ns))
    return runner.run(
        [sys.executable, WS_HTTP_PEER, "get", "--url", url, "--src", src], timeout=30
    ).stdout.strip()


def wait_for(check: object, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return True
        time.sleep(0.5)
    return False


def start_app(lab: Lab, workdir: Path) -> int:
    """The container publishes only on 127.0.0.1, so nginx is the way in."""
    with lab.client() as client:
        container = client.containers.run(
            t.IMAGE, ["sleep", "2147483647"], name="wsapp", detach=True,
            ports={"8765/tcp": ("127.0.0.1", 9765)},
        )  # fmt: skip
        container.reload()
        pid = container.attrs["State"]["Pid"]
    return SubprocessRunner(netns=f"/proc/{pid}/ns/net").spawn(
        [sys.executable, WS_HTTP_PEER, "serve", "--port", "8765"],
        log_path=str(workdir / "app.log"),
    )


def test_websocket_through_exported_nginx_outlives_idle_gap_and_applies(
    lab: Lab, tmp_path: Path
) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx is not installed (scripts/setup.sh installs Debian's nginx)")
    dockwall = Dockwall(lab, tmp_path, "iptables")
    pids = [start_app(lab, tmp_path)]
    clients: list[WsClient] = []
    try:
        policy = dockwall.policy(POLICY_A)
        export = dockwall.run("export", "nginx", "--live", "-f", str(policy), "--http-port", "9765")
        snippet_text = export.stdout
        upstream = re.search(r"^upstream (\S+) \{", snippet_text, re.M)
        assert upstream is not None, snippet_text
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        snippet = prefix / "dockwall.conf"
        snippet.write_text(snippet_text + ARTICLE.format(upstream=upstream[1]))
        conf = main_config(snippet, prefix)
        pids.append(
            lab.host.spawn(
                [nginx, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                log_path=str(tmp_path / "nginx.log"),
            )
        )
        assert wait_for(lambda: http_get(lab, 80).startswith("200")), (
            http_get(lab, 80), (tmp_path / "nginx.log").read_text(), (tmp_path / "app.log").read_text(),
        )  # fmt: skip
        assert http_get(lab, 80) == "200 plain ok"
        assert not http_get(lab, 81).startswith("200"), "the article's snippet breaks plain HTTP"
        assert http_get(lab, 80, STRANGER).startswith("403"), "allow/deny from the policy"

        ours = WsClient(lab, f"ws://{t.HOST_UPLINK_V4}:80/")
        clients.append(ours)
        article = WsClient(lab, f"ws://{t.HOST_UPLINK_V4}:81/")
        clients.append(article)
        assert ours.greeting.startswith("connected"), ours.greeting
        assert article.greeting.startswith("connected"), article.greeting
        started = time.monotonic()
        assert ours.exchange("hello") == "ok"
        assert article.exchange("hello") == "ok"

        quiet_since = time.monotonic()
        # inside the idle gap: not one byte on either socket while dockwall applies
        other = dockwall.policy(POLICY_B, "policy-b.yaml")
        applies = lab.host.run(
            [sys.executable, APPLY_MANY, str(APPLIES), "iptables", str(other), str(policy)],
            timeout=300,
        )
        assert applies.stdout.strip().endswith(f"applied {APPLIES}"), applies.stdout
        assert "DOCKWALL" in lab.host.run(["iptables-save"]).stdout
        applied = time.monotonic() - quiet_since
        time.sleep(max(0.0, IDLE_GAP - applied))
        assert ours.exchange("after the idle gap") == "ok"
        assert time.monotonic() - quiet_since > 60 and time.monotonic() - started > 60
        assert article.exchange("after the idle gap") != "ok", (
            "control: nginx's default 60 s read timeout should have closed this one"
        )
        assert http_get(lab, 80) == "200 plain ok"
    finally:
        for client in clients:
            client.close()
        for pid in reversed(pids):
            SubprocessRunner().run(["kill", str(pid)], check=False)
        dockwall.run("reset", check=False)
