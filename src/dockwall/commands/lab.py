"""`dockwall lab`: a disposable Docker host in network namespaces, for trying and testing."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from dockwall.lab import matrix as m
from dockwall.lab.demo import run_demo
from dockwall.lab.lab import Lab, json_status, known_labs
from dockwall.lab.probe import Prober
from dockwall.runner import SubprocessRunner
from dockwall.terminal import make_console

app = typer.Typer(
    help="A disposable, isolated Docker host (network namespaces, a real dockerd) to try "
    "dockwall on and to test it with real packets. Needs root; never touches the "
    "machine's own network namespace.",
    no_args_is_help=True,
)
console = make_console()
NameOption = Annotated[str, typer.Option("--name", "-n", help="Lab name (1-10 of a-z, 0-9).")]


@app.command()
def up(
    name: NameOption = "lab",
    samples: Annotated[bool, typer.Option(help="Start the sample containers.")] = True,
) -> None:
    """Create the lab: namespaces, uplink to a fake internet, dockerd, image, containers."""
    lab = Lab(name)
    with console.status(f"bringing lab {name} up"):
        lab.up(samples=samples)
    console.print(f"lab [bold]{name}[/] is up; DOCKER_HOST={lab.names.docker_host}")
    console.print(f"try: dockwall lab exec --name {name} -- docker ps")


@app.command()
def down(
    name: NameOption = "lab",
    all_labs: Annotated[bool, typer.Option("--all", help="Every lab, also crashed ones.")] = False,
) -> None:
    """Remove the lab and every namespace, mount, process and file it made."""
    names = known_labs(SubprocessRunner()) if all_labs else [name]
    for each in names:
        with console.status(f"tearing lab {each} down"):
            Lab(each).down()
        console.print(f"lab [bold]{each}[/] is down")


def ports_text(ports: dict[str, list[dict[str, str]] | None] | None) -> str:
    """Docker's port map as `docker ps` shows it: `0.0.0.0:8080->80/tcp`, one per line."""
    lines = []
    for inside, bindings in sorted((ports or {}).items()):
        if not bindings:
            lines.append(inside)
        for b in bindings or ():
            host = f"[{b['HostIp']}]" if ":" in b.get("HostIp", "") else b.get("HostIp", "")
            lines.append(f"{host}:{b.get('HostPort', '')}->{inside}")
    return "\n".join(lines)


def status_table(info: dict[str, Any]) -> Group:
    """One lab: a line with its dockerd and DOCKER_HOST (not a table title, which would
    wrap to the table's width), then a row per container."""
    heading = (
        f"lab [bold]{escape(info['name'])}[/]: dockerd {info['dockerd_pid'] or 'down'}, "
        f"DOCKER_HOST={escape(info['docker_host'])}"
    )
    table = Table("container", "status", "ports")
    for c in info["containers"]:
        table.add_row(escape(c["name"]), c["status"], escape(ports_text(c["ports"])))
    return Group(Text.from_markup(heading), table)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the labs on this machine with their dockerd and containers."""
    labs = [Lab(n) for n in known_labs(SubprocessRunner())]
    if as_json:
        typer.echo(json_status(labs))
        return
    if not labs:
        console.print("no labs")
    for lab in labs:
        console.print(status_table(lab.status()))


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec(
    ctx: typer.Context,
    name: NameOption = "lab",
) -> None:
    """Run a command on the lab's Docker host (its namespace, DOCKER_HOST set).

    A command named `dockwall` runs this same dockwall (this Python, this install), also
    when it is not on PATH. Example: dockwall lab exec -- dockwall plan -f policy.yaml
    """
    if not ctx.args:
        raise typer.BadParameter("give a command after --")
    Lab(name).host.replace_process(same_dockwall(ctx.args))


def same_dockwall(argv: list[str]) -> list[str]:
    """`dockwall ...` runs the dockwall that is running now, wherever it is installed.

    After `make demo` it lives in .venv/bin, which is not on root's PATH (nor on sudo's
    secure_path), so a bare `dockwall` would not be found, or would be another version.
    """
    if argv[0] == "dockwall":
        return [sys.executable, "-m", "dockwall", *argv[1:]]
    return argv


@app.command()
def probe(
    name: NameOption = "lab",
    source: Annotated[
        str | None, typer.Option("--from", help="Internet address, container:NAME or host.")
    ] = None,
    destination: Annotated[
        str | None,
        typer.Option("--to", help="host:PORT/PROTO, container:NAME:PORT/PROTO or ADDR:PORT/PROTO."),
    ] = None,
    family: Annotated[
        int, typer.Option("--family", "-f", help="4 or 6 when the source does not say.")
    ] = 4,
    matrix: Annotated[
        bool, typer.Option("--matrix", help="Probe everything and print the table.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds before a silent port counts as closed.")
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Send real packets and report open or closed (exit 0 open, 3 closed for one probe)."""
    prober = Prober(Lab(name), timeout=timeout)
    if matrix:
        result = m.measure(prober)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "ingress": [c.__dict__ for c in result.ingress],
                        "egress": [c.__dict__ for c in result.egress],
                    },
                    indent=2,
                )
            )
            return
        console.print(m.table("Ingress: internet -> published ports", result.ingress))
        console.print(
            m.table(
                "Egress: containers -> internet and the Docker host",
                result.egress,
                by_destination=True,
            )
        )
        return
    if source is None or destination is None:
        raise typer.BadParameter("give --from and --to, or --matrix")
    is_open = prober.probe(source, destination, family)
    if as_json:
        typer.echo(json.dumps({"from": source, "to": destination, "open": is_open}))
    else:
        console.print(
            f"{source} -> {destination}: " + ("[green]open[/]" if is_open else "[red]closed[/]")
        )
    raise typer.Exit(0 if is_open else 3)


@app.command()
def demo(
    name: NameOption = "demo",
    keep: Annotated[bool, typer.Option("--keep", help="Leave the lab up afterwards.")] = False,
) -> None:
    """Bring up a lab, print who can reach what, apply the example policy, print it again."""
    run_demo(console, name, keep)
