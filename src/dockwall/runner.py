"""The one place dockwall starts subprocesses.

Everything that runs a program goes through a Runner so that it can be pointed at a
network namespace (the lab) and replaced by a fake in unit tests. Arguments are always
lists: nothing here ever goes through a shell.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from dockwall.errors import CommandError


@dataclass(frozen=True)
class Result:
    """What a finished command returned."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    """Runs a command and returns its result; raises CommandError when check is set."""

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> Result: ...

    def spawn(self, argv: Sequence[str], *, log_path: str) -> int:
        """Starts a long-running program in its own session and returns its pid."""
        ...


def netns_path(name: str) -> str:
    """The bind-mounted namespace file that `ip netns add NAME` creates."""
    return f"/run/netns/{name}"


@dataclass(frozen=True)
class SubprocessRunner:
    """Runs commands for real, optionally inside the network namespace at `netns`.

    `netns` is a path to a namespace file (/run/netns/X or /proc/PID/ns/net). Only the
    network namespace is entered, so the host's mounts (and its cgroup view) stay visible.
    """

    netns: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def argv_for(self, argv: Sequence[str]) -> list[str]:
        """The argument list actually executed, with the namespace entry in front."""
        if self.netns is None:
            return list(argv)
        return ["nsenter", f"--net={self.netns}", "--", *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> Result:
        full = self.argv_for(argv)
        env = {**os.environ, **self.env} if self.env else None
        try:
            proc = subprocess.run(  # noqa: S603 - argument list, never a shell
                full,
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        except FileNotFoundError as exc:
            raise CommandError(full, 127, f"{full[0]}: not found") from exc
        except subprocess.TimeoutExpired as exc:
            raise CommandError(full, -1, f"timed out after {timeout:g}s") from exc
        result = Result(full, proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise CommandError(full, proc.returncode, proc.stderr or proc.stdout)
        return result

    def spawn(self, argv: Sequence[str], *, log_path: str) -> int:
        full = self.argv_for(argv)
        env = {**os.environ, **self.env} if self.env else None
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(  # noqa: S603 - argument list, never a shell
                full,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return proc.pid

    def replace_process(self, argv: Sequence[str]) -> None:
        """Becomes the command (exec), so it gets the terminal and its exit code is ours."""
        full = self.argv_for(argv)
        os.execvpe(full[0], full, {**os.environ, **self.env})

    def interactive(self, argv: Sequence[str]) -> subprocess.Popen[str]:
        """A running command to talk to line by line (stdin and stdout are pipes)."""
        full = self.argv_for(argv)
        env = {**os.environ, **self.env} if self.env else None
        return subprocess.Popen(  # noqa: S603 - argument list, never a shell
            full,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=env,
        )
