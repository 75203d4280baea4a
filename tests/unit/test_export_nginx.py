"""`dockwall export nginx`: what the article's snippet gets wrong, and `nginx -t` on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockwall.export.nginx import NginxOptions, export_nginx
from dockwall.export.view import build_view

from .export_helpers import SOURCE, example_policy, example_state, view_of
from .nginx_check import nginx_test

OPTIONS = [
    NginxOptions(),
    NginxOptions(listen=8081, location="/app", read_timeout=3600, send_timeout=3600),
    NginxOptions(sticky=False, http_ports=(8080,), upstream_host="::1"),
]


@pytest.mark.parametrize("options", OPTIONS, ids=["defaults", "location", "no-sticky"])
@pytest.mark.parametrize("live", [False, True], ids=["file", "live"])
def test_nginx_accepts_every_generated_config(
    options: NginxOptions, live: bool, tmp_path: Path
) -> None:
    view = build_view(example_policy(), example_state() if live else None)
    result = export_nginx(view, SOURCE, options)
    check = nginx_test(result.text, tmp_path)
    assert check.returncode == 0, check.stderr
    assert "test is successful" in check.stderr


def test_nginx_refuses_a_broken_config(tmp_path: Path) -> None:
    text = export_nginx(build_view(example_policy()), SOURCE, NginxOptions()).text
    check = nginx_test(text.replace("proxy_http_version 1.1;", "proxy_http_version;"), tmp_path)
    assert check.returncode != 0


def test_websocket_headers_come_from_the_upgrade_map() -> None:
    text = export_nginx(build_view(example_policy()), SOURCE, NginxOptions()).text
    assert "map $http_upgrade $dockwall_connection_upgrade {" in text
    assert "default upgrade;" in text
    assert "''      close;" in text
    assert "proxy_set_header Connection $dockwall_connection_upgrade;" in text
    assert '"Upgrade"' not in text
    assert "proxy_http_version 1.1;" in text
    assert text.count("proxy_read_timeout 300s;") == 2
    assert text.count("ip_hash;") == 2


def test_sources_become_allow_and_deny() -> None:
    text = export_nginx(build_view(example_policy()), SOURCE, NginxOptions(http_ports=(5432,))).text
    assert "allow 192.0.2.100/32;\n        allow 2001:db8:100::/64;\n        deny all;" in text
    assert "8080" not in text
    assert "location / {" in text


def test_short_timeout_and_guessed_http_ports_warn() -> None:
    result = export_nginx(build_view(example_policy()), SOURCE, NginxOptions(read_timeout=60))
    messages = " ".join(w.message for w in result.warnings)
    assert "long poll" in messages
    assert "taken to be HTTP" in messages


def test_live_warns_when_clients_can_bypass_nginx() -> None:
    result = export_nginx(
        build_view(example_policy(), example_state()), SOURCE, NginxOptions(http_ports=(8080,))
    )
    assert any("bypass nginx" in w.message for w in result.warnings)


def test_udp_and_ranges_are_not_proxied() -> None:
    result = export_nginx(
        view_of(
            "version: 1\ncontainers:\n  - name: a\n    ingress:\n"
            "      - ports: [53/udp, 9000-9001/tcp]\n"
        ),
        SOURCE,
        NginxOptions(),
    )
    assert "upstream" not in result.text
    assert len(result.warnings) == 3
