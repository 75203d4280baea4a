"""The phases of a transaction, walked the same way for every backend."""

from __future__ import annotations

import pytest

from dockwall.backends.transaction import Load, Transaction
from dockwall.errors import CommandError

from .fakes import FakeRunner


def runner(failing: str | None = None) -> FakeRunner:
    """Fails every run of program `failing` whose input is not an undo."""

    def respond(argv: list[str], stdin: str | None) -> tuple[int, str]:
        return (1, "refused") if argv[0] == failing and stdin != "undo" else (0, "")

    return FakeRunner(respond)


def walked(fake: FakeRunner) -> list[str]:
    return [f"{argv[0]} {stdin}" for argv, stdin in fake.calls]


TRANSACTION = Transaction(
    before=(Load(("pre",), "create"),),
    rules=(Load(("v4",), "load", "undo"), Load(("v6",), "load", "undo")),
    after=(Load(("post",), "destroy stale"),),
    fail=(Load(("fail",), "destroy new"),),
)


def test_phases_run_in_order_and_fail_steps_only_on_failure() -> None:
    fake = runner()
    TRANSACTION.run(fake)
    assert walked(fake)[0] == "pre create"
    assert sorted(walked(fake)[1:3]) == ["v4 load", "v6 load"], "side by side, any order"
    assert walked(fake)[3:] == ["post destroy stale"]


def test_a_failed_load_puts_the_other_family_back_and_runs_the_fail_steps() -> None:
    fake = runner(failing="v6")
    with pytest.raises(CommandError, match="refused"):
        TRANSACTION.run(fake)
    calls = walked(fake)
    assert "v4 undo" in calls and "v6 undo" not in calls, "only what went in is put back"
    assert calls[-1] == "fail destroy new"
    assert "post destroy stale" not in calls, "nothing is removed that old rules still use"


def test_a_failed_before_step_changes_no_rule() -> None:
    fake = runner(failing="pre")
    with pytest.raises(CommandError):
        TRANSACTION.run(fake)
    assert walked(fake) == ["pre create", "fail destroy new"]


def test_one_load_runs_without_undo_when_it_has_none() -> None:
    fake = runner(failing="nft")
    with pytest.raises(CommandError):
        Transaction(rules=(Load(("nft",), "table"),)).run(fake)
    assert walked(fake) == ["nft table"]
    assert Transaction().empty and not TRANSACTION.empty
