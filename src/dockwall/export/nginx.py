"""`dockwall export nginx`: a reverse proxy for the published HTTP services, with
WebSocket and SignalR done right.

The output goes into /etc/nginx/conf.d/ (http context). What the usual snippet gets
wrong, and this does not:
- `Connection` comes from a map on `$http_upgrade`: `upgrade` for a WebSocket handshake,
  `close` for plain HTTP (hard-coding "Upgrade" breaks every ordinary request);
- `proxy_read_timeout`/`proxy_send_timeout` default to 60 s, which cuts an idle
  WebSocket and SignalR's 90 s long poll: they are set well above both;
- SignalR's negotiate request and the connection that follows must reach the same
  server: `ip_hash` unless the clients skip negotiation (WebSockets only);
- `proxy_buffering off` so server-sent events flow, and the X-Forwarded-* headers, since
  the app sees nginx's address, not the client's;
- the policy's ingress sources become `allow`/`deny`, the only place left to check them
  once nginx connects to the container.
"""

from __future__ import annotations

from dataclasses import dataclass

from dockwall.export.view import (
    Exported,
    View,
    Warnings,
    Workload,
    host_ports,
    label_rule_warnings,
    slug,
    title,
    without_excepts,
)
from dockwall.policy import Network

SIGNALR_LONG_POLL = 90
UPGRADE_MAP = "$dockwall_connection_upgrade"


@dataclass(frozen=True)
class NginxOptions:
    listen: int = 80
    location: str = "/"
    upstream_host: str = "127.0.0.1"
    read_timeout: int = 300
    send_timeout: int = 300
    sticky: bool = True
    http_ports: tuple[int, ...] = ()


@dataclass
class Service:
    """One published HTTP port of a workload, and who may reach it (None: anyone)."""

    name: str
    port: int
    sources: tuple[Network, ...] | None


def export_nginx(view: View, source: str, options: NginxOptions) -> Exported:
    warnings = Warnings()
    label_rule_warnings(view, warnings)
    view = without_excepts(view, warnings, "nginx allow lists")
    if options.read_timeout <= SIGNALR_LONG_POLL:
        warnings.add(
            "nginx",
            f"a read timeout of {options.read_timeout} s ends SignalR's "
            f"{SIGNALR_LONG_POLL} s long poll and idle WebSockets sooner",
        )
    found = services(view, options, warnings)
    if not found:
        warnings.add("nginx", "the policy opens no published TCP port: nothing to proxy")
    return Exported(config(found, source, options), tuple(warnings.items))


def services(view: View, options: NginxOptions, warnings: Warnings) -> list[Service]:
    """Published TCP host ports by workload, their sources merged across rules."""
    merged: dict[tuple[str, int], Service] = {}
    for workload in view.workloads:
        for port, sources in _openings(workload, view, warnings):
            if options.http_ports and port not in options.http_ports:
                continue
            name = slug(title(workload.selector), 30).replace("-", "_")
            key = (name, port)
            known = merged.get(key)
            if known is None:
                merged[key] = Service(name, port, sources)
            elif known.sources is not None:
                known.sources = None if sources is None else (*known.sources, *sources)
            _bypass_warning(workload, port, warnings)
    if not options.http_ports:
        for service in merged.values():
            warnings.add(
                "nginx",
                f"published port {service.port}/tcp is taken to be HTTP; choose with --http-port",
            )
    return list(merged.values())


def _openings(
    workload: Workload, view: View, warnings: Warnings
) -> list[tuple[int, tuple[Network, ...] | None]]:
    direction = workload.ingress
    if direction.mode == "deny":
        return []
    if direction.mode == "allow":
        if not view.live:
            warnings.add(workload.where, "ingress: allow needs --live to know the published ports")
        return [(p.host_port, None) for p in workload.published if p.proto == "tcp"]
    found: list[tuple[int, tuple[Network, ...] | None]] = []
    for rule in direction.rules:
        ports = host_ports(rule, workload)
        sources = rule.cidr_sources
        if ports is None:
            warnings.add(workload.where, "a rule without host ports needs --live: not exported")
            continue
        if sources == ():
            continue
        for port in ports:
            if port.proto != "tcp" or port.first is None:
                warnings.add(workload.where, f"{port} is not an HTTP port: not proxied")
            elif port.first != port.last:
                warnings.add(workload.where, f"port range {port} is not proxied")
            else:
                found.append((port.first, sources))
    return found


def _bypass_warning(workload: Workload, port: int, warnings: Warnings) -> None:
    for binding in workload.published:
        if binding.host_port == port and binding.host_ip in ("", "0.0.0.0", "::"):
            warnings.add(
                workload.where,
                f"port {port} is published on all addresses, so clients can bypass nginx: "
                f"publish it on 127.0.0.1 (-p 127.0.0.1:{port}:{binding.container_port})",
            )


def config(found: list[Service], source: str, options: NginxOptions) -> str:
    blocks = [
        f"# dockwall export nginx, from {source}: for /etc/nginx/conf.d/ (http context).\n"
        "# Publish the containers on 127.0.0.1 only, so that nginx is the way in.",
        f"map $http_upgrade {UPGRADE_MAP} {{\n    default upgrade;\n    ''      close;\n}}",
    ]
    blocks += [_upstream(service, options) for service in found]
    if found:
        locations = [_location(s, _path(s, found, options), options) for s in found]
        blocks.append(
            "server {\n"
            f"    listen {options.listen};\n"
            f"    listen [::]:{options.listen};\n\n" + "\n\n".join(locations) + "\n}"
        )
    return "\n\n".join(blocks) + "\n"


def _upstream_name(service: Service) -> str:
    return f"dockwall_{service.name}_{service.port}"


def _upstream(service: Service, options: NginxOptions) -> str:
    sticky = (
        "    ip_hash;  # SignalR: negotiate and the connection must reach one server\n"
        if options.sticky
        else ""
    )
    host = f"[{options.upstream_host}]" if ":" in options.upstream_host else options.upstream_host
    return f"upstream {_upstream_name(service)} {{\n{sticky}    server {host}:{service.port};\n}}"


def _path(service: Service, found: list[Service], options: NginxOptions) -> str:
    base = options.location if options.location.endswith("/") else options.location + "/"
    if len(found) == 1:
        return base
    return f"{base}{service.name}-{service.port}/"


def _location(service: Service, path: str, options: NginxOptions) -> str:
    target = f"http://{_upstream_name(service)}" + ("" if path == "/" else "/")
    access = (
        [f"allow {network};" for network in service.sources] + ["deny all;"]
        if service.sources is not None
        else []
    )
    lines = [
        *access,
        f"proxy_pass {target};",
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        f"proxy_set_header Connection {UPGRADE_MAP};",
        "proxy_set_header Host $host;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Forwarded-Host $host;",
        f"proxy_read_timeout {options.read_timeout}s;",
        f"proxy_send_timeout {options.send_timeout}s;",
        "proxy_buffering off;",
    ]
    body = "\n".join(f"        {line}" for line in lines)
    return f"    location {path} {{\n{body}\n    }}"
