"""`dockwall export TARGET`: the policy for the other layers in front of the containers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from dockwall.commands.options import DEFAULT, PolicyOption
from dockwall.commands.report import err, warn
from dockwall.engine import read_host_state
from dockwall.export.aws import AwsFormat, export_aws
from dockwall.export.k8s import export_k8s
from dockwall.export.nginx import NginxOptions, export_nginx
from dockwall.export.ufw import export_ufw
from dockwall.export.view import Exported, View, build_view
from dockwall.policy import load_policy

Target = Literal["k8s", "ufw", "aws", "nginx"]
NGINX = NginxOptions()


def export(
    target: Annotated[Target, typer.Argument(help="k8s, ufw, aws or nginx.")],
    policy: PolicyOption = DEFAULT,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Also read the running containers (published ports, container ports, "
            "addresses); without it only the policy file is read, no Docker needed.",
        ),
    ] = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail (exit 1) if anything cannot be expressed.")
    ] = False,
    fmt: Annotated[
        Literal["cli", "json", "terraform"],
        typer.Option("--format", help="aws: command lines, --ip-permissions JSON, Terraform."),
    ] = "cli",
    group_id: Annotated[
        str, typer.Option("--group-id", help="aws: the security group id for the commands.")
    ] = "$SECURITY_GROUP_ID",
    listen: Annotated[int, typer.Option(help="nginx: the port nginx listens on.")] = NGINX.listen,
    location: Annotated[
        str, typer.Option(help="nginx: the location (a prefix per service if several).")
    ] = NGINX.location,
    upstream_host: Annotated[
        str, typer.Option(help="nginx: where the published ports are reached.")
    ] = NGINX.upstream_host,
    read_timeout: Annotated[
        int, typer.Option(help="nginx: proxy_read_timeout, seconds.")
    ] = NGINX.read_timeout,
    send_timeout: Annotated[
        int, typer.Option(help="nginx: proxy_send_timeout, seconds.")
    ] = NGINX.send_timeout,
    skip_negotiation: Annotated[
        bool,
        typer.Option(
            "--skip-negotiation",
            help="nginx: the SignalR clients skip negotiation (WebSockets only): no ip_hash.",
        ),
    ] = False,
    http_port: Annotated[
        list[int] | None,
        typer.Option("--http-port", help="nginx: a published port that speaks HTTP (repeat)."),
    ] = None,
) -> None:
    """Export the policy to Kubernetes, ufw, AWS security groups or nginx.

    What a target cannot express is a warning on stderr (an error with --strict); the
    output errs closed: a part that cannot be expressed is left out rather than widened.
    """
    source = str(policy)
    view = build_view(load_policy(policy), read_host_state() if live else None)
    nginx = NginxOptions(
        listen, location, upstream_host, read_timeout, send_timeout,
        sticky=not skip_negotiation, http_ports=tuple(http_port or ()),
    )  # fmt: skip
    result = exported(target, view, source, fmt, group_id, nginx)
    if strict and result.warnings:
        for warning in result.warnings:
            err.print(f"[red]error:[/] {warning}", highlight=False, markup=False)
        raise typer.Exit(1)
    warn(str(w) for w in result.warnings)
    if output is None:
        typer.echo(result.text, nl=False)
    else:
        output.write_text(result.text)


def exported(
    target: Target, view: View, source: str, fmt: AwsFormat, group_id: str, nginx: NginxOptions
) -> Exported:
    if target == "k8s":
        return export_k8s(view, source)
    if target == "ufw":
        return export_ufw(view, source)
    if target == "aws":
        return export_aws(view, source, fmt, group_id)
    return export_nginx(view, source, nginx)
