"""Static checks on Dockerfiles and compose files: mistakes visible before anything runs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from dockwall.audit.findings import Finding, egress_snippet, ingress_snippet
from dockwall.errors import DockwallError

FIREWALL_TOOLS = re.compile(
    r"\b(iptables|ip6tables|iptables-legacy|iptables-nft|nft|ufw|firewall-cmd)\b"
)
SENSITIVE_PORTS = {
    22: "SSH", 2375: "Docker API", 2376: "Docker API", 2379: "etcd", 3306: "MySQL",
    5432: "PostgreSQL", 5984: "CouchDB", 6379: "Redis", 8500: "Consul", 9042: "Cassandra",
    9090: "Prometheus", 9200: "Elasticsearch", 11211: "memcached", 15672: "RabbitMQ admin",
    27017: "MongoDB", 5601: "Kibana", 8086: "InfluxDB",
}  # fmt: skip
ALL_ADDRESSES = ("", "0.0.0.0", "::", "[::]")


def audit_files(paths: list[Path]) -> list[Finding]:
    findings: list[Finding] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DockwallError(f"{path}: {exc.strerror}") from exc
        if is_compose(path):
            findings += audit_compose(str(path), text)
        else:
            findings += audit_dockerfile(str(path), text)
    return findings


def is_compose(path: Path) -> bool:
    return path.suffix in (".yml", ".yaml")


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Dockerfile lines with backslash continuations joined, numbered by their first line."""
    joined: list[tuple[int, str]] = []
    start, parts = 0, list[str]()
    for number, line in enumerate(text.splitlines(), 1):
        if not parts:
            start = number
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            parts.append(stripped[:-1])
            continue
        parts.append(stripped)
        joined.append((start, " ".join(parts).strip()))
        parts = []
    if parts:
        joined.append((start, " ".join(parts).strip()))
    return joined


def audit_dockerfile(name: str, text: str) -> list[Finding]:
    findings: list[Finding] = []
    for number, line in logical_lines(text):
        instruction, _, args = line.partition(" ")
        where = f"{name}:{number}"
        if instruction.upper() == "RUN" and (tool := FIREWALL_TOOLS.search(args)):
            findings.append(
                Finding(
                    "dockerfile-run-firewall",
                    "high",
                    f"`RUN {tool.group(1)}` changes the throwaway build container's firewall: "
                    "nothing lands in the image, and build steps lack NET_ADMIN anyway",
                    line,
                    egress_snippet("SERVICE"),
                    where,
                )
            )
        elif instruction.upper() == "EXPOSE":
            findings.append(expose_finding(where, line, args.split()))
    return findings


def expose_finding(where: str, line: str, ports: list[str]) -> Finding:
    port = ports[0] if ports else "PORT"
    return Finding(
        "expose-is-not-publish",
        "info",
        "EXPOSE only documents a port: it neither publishes nor restricts it "
        "(`-p`/`ports:` publishes, to every address unless you bind one)",
        line,
        ingress_snippet("SERVICE", port if "/" in port else f"{port}/tcp"),
        where,
    )


def audit_compose(name: str, text: str) -> list[Finding]:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise DockwallError(f"{name}: not valid YAML: {exc}") from exc
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        raise DockwallError(f"{name}: no `services:` mapping; is this a compose file?")
    findings: list[Finding] = []
    for service, spec in services.items():
        if isinstance(spec, dict):
            findings += audit_service(f"{name}: service {service}", str(service), spec)
    return findings


def audit_service(where: str, service: str, spec: dict[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for entry in spec.get("ports") or []:
        finding = published_port_finding(where, service, entry)
        if finding is not None:
            findings.append(finding)
    if spec.get("network_mode") == "host":
        findings.append(
            Finding(
                "network-mode-host",
                "high",
                "network_mode: host bypasses Docker's firewall: the service's ports are the host's "
                "ports, and neither DOCKER-USER nor dockwall's container rules apply",
                "network_mode: host",
                "# use a bridge network and publish the ports you need:\n"
                + ingress_snippet(service, "PORT/tcp"),
                where,
            )
        )
    caps = {str(c).upper().removeprefix("CAP_") for c in spec.get("cap_add") or []}
    if spec.get("privileged") or caps & {"NET_ADMIN", "ALL"}:
        evidence = "privileged: true" if spec.get("privileged") else f"cap_add: {sorted(caps)}"
        findings.append(
            Finding(
                "privileged-network",
                "high",
                "a privileged or NET_ADMIN container can rewrite its own network and firewall",
                evidence,
                "# drop privileged/NET_ADMIN; restrict what it may reach instead:\n"
                + egress_snippet(service),
                where,
            )
        )
    return findings


def parse_port_entry(entry: Any) -> tuple[str, int | None, int, str] | None:
    """(host address, host port, container port, proto) from short or long syntax."""
    if isinstance(entry, dict):
        target = entry.get("target")
        published = entry.get("published")
        host = str(entry.get("host_ip", ""))
        proto = str(entry.get("protocol", "tcp"))
        if target is None:
            return None
        return host, int(str(published).split("-")[0]) if published else None, int(target), proto
    text, _, proto = str(entry).partition("/")
    parts = text.rsplit(":", 2)
    if len(parts) == 1:
        return "", None, int(parts[0].split("-")[0]), proto or "tcp"
    host = parts[0] if len(parts) == 3 else ""
    published = parts[-2].split("-")[0]
    container = parts[-1].split("-")[0]
    return host, int(published) if published else None, int(container), proto or "tcp"


def published_port_finding(where: str, service: str, entry: Any) -> Finding | None:
    try:
        parsed = parse_port_entry(entry)
    except ValueError:
        return None
    if parsed is None:
        return None
    host, published, container, proto = parsed
    kind = SENSITIVE_PORTS.get(container) or SENSITIVE_PORTS.get(published or 0)
    if host not in ALL_ADDRESSES or kind is None:
        return None
    port = f"{published or container}/{proto}"
    return Finding(
        "sensitive-port-published",
        "high",
        f"{kind} port published on every address: anyone who can reach the host can connect",
        f"ports: {entry}",
        ingress_snippet(service, port)
        + f"\n# or bind it: 127.0.0.1:{port.split('/', maxsplit=1)[0]}:{container}",
        where,
    )
