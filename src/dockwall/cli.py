"""The `dockwall` command line: thin wiring over the commands modules.

Each command's module is imported only when that command runs: `dockwall plan` does
not load the agent, the DNS forwarder, explain or the lab (about 0.3 s of imports,
which is a third of a `plan` in sync). `dockwall --help`, a mistyped command and
shell completion see every command, because they build the whole app.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from typing import Any, NoReturn

import typer
from rich.markup import escape

from dockwall.errors import DockwallError
from dockwall.terminal import make_console

HELP = (
    "dockwall: a declarative ingress/egress firewall for Docker hosts.\n\n"
    "Write who may reach each container's published ports and where each container may "
    "connect in one policy file; dockwall compiles it to the host's firewall (iptables "
    "DOCKER-USER or nftables), applies it atomically over IPv4 and IPv6, and shows the "
    "diff before it does. Docker is reached as its CLI does (DOCKER_HOST, contexts)."
)
# command name -> (module under dockwall.commands, function), in --help's order; a
# function whose docstring is not its help has it in its module's HELP (`check`)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("policy", "init"),
    "plan": ("policy", "plan"),
    "apply": ("policy", "apply"),
    "status": ("status", "status"),
    "check": ("check", "check"),
    "reset": ("policy", "reset"),
    "agent": ("agent", "agent"),
    "logs": ("logs", "logs"),
    "graph": ("graph", "graph"),
    "install-units": ("units", "install_units"),
    "export": ("export", "export"),
    "explain": ("explain", "explain"),
    "audit": ("audit", "audit"),
}
GROUPS: dict[str, str] = {"lab": "lab"}  # sub-apps: name -> module with a Typer `app`
err_console = make_console(stderr=True)


def command_module(name: str) -> Any:
    return importlib.import_module(f"dockwall.commands.{name}")


def build_app(only: str | None = None) -> typer.Typer:
    """The app with every command, or with just `only` when that names one."""
    built = typer.Typer(
        help=HELP, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="rich"
    )
    built.callback()(commands_follow)
    for name, (module_name, function) in COMMANDS.items():
        if only in (None, name):
            module = command_module(module_name)
            built.command(name, help=getattr(module, "HELP", None))(getattr(module, function))
    for name, module_name in GROUPS.items():
        if only in (None, name):
            built.add_typer(command_module(module_name).app, name=name)
    return built


def commands_follow() -> None:
    """A callback makes the app a group even with one command registered, so
    `dockwall plan -f x` still reads `plan` as the command's name."""


def invoked_command(argv: list[str]) -> str | None:
    """The command a run names, when the app can be built for it alone."""
    if len(argv) < 2 or any(key.endswith("_COMPLETE") for key in os.environ):
        return None
    first = argv[1]
    return first if first in COMMANDS or first in GROUPS else None


def __getattr__(name: str) -> typer.Typer:
    """`dockwall.cli.app`, the whole app, for tests and tools that invoke it in process."""
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main() -> None:
    """Entry point: user errors become one line on stderr and their exit code (1 unless
    the error says otherwise: 3 state not saved, 4 lock busy)."""
    try:
        build_app(invoked_command(sys.argv))()
    except DockwallError as exc:
        err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False)
        leave(exc.exit_code)
    except SystemExit as exc:
        leave(exc.code)
    leave(0)


def leave(code: int | str | None) -> NoReturn:
    """Exit with `code` as `sys.exit` reads it, without the interpreter's teardown when
    nothing is left to finish. Why: a finished command's teardown frees its ~650 modules
    one object at a time, 0.1-0.2 s on this machine (a fifth of a `plan` in sync), for
    memory the kernel takes back at once. Output and logging are flushed first; a run
    with another thread still alive (which `sys.exit` would wait for) exits normally."""
    if isinstance(code, str):
        sys.stderr.write(f"{code}\n")
        code = 1
    status = 0 if code is None else code
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    if threading.active_count() > 1:
        sys.exit(status)
    os._exit(status)
