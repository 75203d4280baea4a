"""Who may reach what: the compiled policy on this host as a picture (SVG or DOT).

Columns, left to right: sources (the internet, allowed prefixes), published ports,
containers, egress destinations. Allowed paths are solid, denied ones ("everyone else")
dashed. Built from the IR, so it shows what the firewall enforces, not what the YAML
says. Every text is escaped: container names and anything from labels are untrusted.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from dockwall.compile.ir import Allow, Filter, Guard, Ruleset
from dockwall.model.state import Container, HostState

COLUMNS = ("sources", "published ports", "containers", "destinations")
WIDTH, NODE_W, NODE_H, GAP, TOP = 1000, 210, 30, 14, 50


@dataclass(frozen=True)
class Node:
    id: str
    column: int
    label: str


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    allowed: bool


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def node(self, id_: str, column: int, label: str) -> str:
        self.nodes.setdefault(id_, Node(id_, column, label))
        return id_

    def edge(self, source: str, target: str, label: str, allowed: bool) -> None:
        found = Edge(source, target, label, allowed)
        if found not in self.edges:
            self.edges.append(found)


def peers_text(allow: Allow) -> str:
    if allow.peers is None:
        return "any"
    return ", ".join(str(p) for p in allow.peers) or "nothing"


def ports_text(allow: Allow) -> str:
    if not allow.ports:
        return "any port"
    parts: list[str] = []
    for port in allow.ports:
        if port.first is None:
            parts.append(port.proto)
        elif port.last in (None, port.first):
            parts.append(f"{port.first}/{port.proto}")
        else:
            parts.append(f"{port.first}-{port.last}/{port.proto}")
    return ", ".join(parts)


def build(ruleset: Ruleset, state: HostState) -> Graph:
    graph = Graph()
    guards: dict[str, Guard] = {g.name: g for g in ruleset.guards}
    for container in sorted(state.containers, key=lambda c: c.name):
        guard = guards.get(container.name)
        me = graph.node(f"c:{container.id}", 2, container.name)
        targets = published(graph, container, me)
        ingress = guard.ingress if guard else ruleset.default_ingress
        egress = guard.egress if guard else ruleset.default_egress
        add_ingress(graph, ingress, targets)
        add_egress(graph, egress, me)
    return graph


def published(graph: Graph, container: Container, me: str) -> list[str]:
    targets = []
    for port in container.ports:
        node = graph.node(
            f"p:{container.id}:{port.host_port}/{port.proto}",
            1,
            f":{port.host_port} → {port.container_port}/{port.proto}",
        )
        graph.edge(node, me, "", True)
        targets.append(node)
    return targets or [me]


def add_ingress(graph: Graph, flt: Filter | None, targets: list[str]) -> None:
    if flt is None:
        for target in targets:
            graph.edge(graph.node("s:any", 0, "internet (any)"), target, "", True)
        return
    for allow in flt.allows:
        source = graph.node(f"s:{peers_text(allow)}", 0, peers_text(allow))
        for target in targets:
            graph.edge(source, target, ports_text(allow), True)
    for target in targets:
        graph.edge(graph.node("s:other", 0, "everyone else"), target, "denied", False)


def add_egress(graph: Graph, flt: Filter | None, me: str) -> None:
    if flt is None:
        graph.edge(me, graph.node("d:any", 3, "anywhere"), "", True)
        return
    for allow in flt.allows:
        graph.edge(me, graph.node(f"d:{peers_text(allow)}", 3, peers_text(allow)),
                   ports_text(allow), True)  # fmt: skip
    graph.edge(me, graph.node("d:other", 3, "anywhere else"), "denied", False)


def positions(graph: Graph) -> dict[str, tuple[float, float]]:
    rows = [0, 0, 0, 0]
    found: dict[str, tuple[float, float]] = {}
    step = (WIDTH - NODE_W) / 3
    for node in graph.nodes.values():
        found[node.id] = (node.column * step, TOP + rows[node.column] * (NODE_H + GAP))
        rows[node.column] += 1
    return found


def svg(graph: Graph) -> str:
    """Scales to any width (viewBox), so it fits a phone screen too."""
    where = positions(graph)
    height = max((y for _, y in where.values()), default=TOP) + NODE_H + 20
    esc = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'role="img" aria-label="who may reach what" font-family="sans-serif" font-size="13">',
        "<style>.ok{stroke:#2a9d4b;fill:none;stroke-width:1.6}"
        ".no{stroke:#d33;fill:none;stroke-width:1.6;stroke-dasharray:6 4}"
        ".n{fill:#f4f6f8;stroke:#6b7785}.t{fill:#1d2430}.e{fill:#555;font-size:11px}</style>",
    ]
    step = (WIDTH - NODE_W) / 3
    for index, title in enumerate(COLUMNS):
        parts.append(
            f'<text x="{index * step + 4:.0f}" y="24" font-weight="bold" class="t">'
            f"{esc(title)}</text>"
        )
    for edge in graph.edges:
        x1, y1 = where[edge.source]
        x2, y2 = where[edge.target]
        x1, y1, y2 = x1 + NODE_W, y1 + NODE_H / 2, y2 + NODE_H / 2
        mid = (x1 + x2) / 2
        kind = "ok" if edge.allowed else "no"
        parts.append(
            f'<path class="{kind}" d="M{x1:.0f},{y1:.0f} C{mid:.0f},{y1:.0f} '
            f'{mid:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"><title>{esc(edge.label)}</title></path>'
        )
        if edge.label:
            parts.append(
                f'<text class="e" x="{mid:.0f}" y="{(y1 + y2) / 2 - 3:.0f}" '
                f'text-anchor="middle">{esc(edge.label[:40])}</text>'
            )
    for node in graph.nodes.values():
        x, y = where[node.id]
        parts.append(
            f'<g><rect class="n" x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" '
            f'rx="5"/><text class="t" x="{x + 8:.0f}" y="{y + 19:.0f}">{esc(node.label[:32])}'
            f"</text><title>{esc(node.label)}</title></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot(graph: Graph) -> str:
    lines = ["digraph dockwall {", "  rankdir=LR;", "  node [shape=box, style=rounded];"]
    for index, title in enumerate(COLUMNS):
        members = [n for n in graph.nodes.values() if n.column == index]
        if members:
            lines.append(f"  subgraph cluster_{index} {{ label={dot_string(title)};")
            lines += [f"    {dot_string(n.id)} [label={dot_string(n.label)}];" for n in members]
            lines.append("  }")
    for edge in graph.edges:
        style = "solid, color=forestgreen" if edge.allowed else "dashed, color=red"
        lines.append(
            f"  {dot_string(edge.source)} -> {dot_string(edge.target)} "
            f"[label={dot_string(edge.label)}, style={style.split(',', maxsplit=1)[0]},"
            f"{style.split(',')[1]}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"
