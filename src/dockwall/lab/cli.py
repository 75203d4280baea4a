"""`dockwall lab`: a disposable Docker host in network namespaces, for trying and testing."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from dockwall.lab import matrix as m
from dockwall.lab.demo import run_demo
from dockwall.lab.lab import Lab, json_status, known_labs
from dockwall.lab.probe import Prober
from dockwall.runner import SubprocessRunner

app = typer.Typer(
    help="A disposable, isolated Docker host (network namespaces, a real dockerd) to try "
    "dockwall on and to test it with real packets. Needs root; never touches the "
    "machine's own network namespace.",
    no_args_is_help=True,
)
console = Console()
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
        info = lab.status()
        console.print(
            f"[bold]{info['name']}[/] dockerd={info['dockerd_pid'] or 'down'} "
            f"DOCKER_HOST={info['docker_host']}"
        )
        for c in info["containers"]:
            console.print(f"  {c['name']:<16} {c['status']:<10} {c['ports']}")


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec(
    ctx: typer.Context,
    name: NameOption = "lab",
) -> None:
    """Run a command on the lab's Docker host (its namespace, DOCKER_HOST set).

    Example: dockwall lab exec -- dockwall plan -f policy.yaml
    """
    if not ctx.args:
        raise typer.BadParameter("give a command after --")
    Lab(name).host.replace_process(ctx.args)


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
