"""A mistyped command, subcommand, option or option value gets "did you mean"."""

from __future__ import annotations

import contextlib
import io

import pytest

from tests.fuzzing import Outcome, assert_one_line_error
from vmlayout.cli import main


def run_main(*argv: str) -> Outcome:
    """In process; a usage error leaves argparse through SystemExit(2)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(argv))
        except SystemExit as leaving:
            status = int(leaving.code or 0)
    return Outcome(status, out.getvalue(), err.getvalue())


@pytest.mark.parametrize(
    ("argv", "suggestion"),
    [
        (["reslove"], "did you mean resolve?"),
        (["emit", "acip", "-o", "x"], "did you mean acpi?"),
        (["check", "mtr"], "did you mean mtrr?"),
        (["resolve", "--format", "jsn"], "did you mean json?"),
        (["resolve", "--formt", "json"], "did you mean --format?"),
        (["emit", "acpi", "-o", "x", "--vp-cont", "3"], "did you mean --vp-count?"),
    ],
)
def test_a_near_miss_gets_the_closest_name(argv: list[str], suggestion: str) -> None:
    assert_one_line_error(run_main(*argv), "error: usage:", suggestion)


def test_nothing_close_gets_no_guess() -> None:
    out = run_main("xyzzy")
    assert_one_line_error(out, "invalid choice: 'xyzzy'")
    assert "did you mean" not in out.stderr
    assert "did you mean" not in run_main("emit", "acpi", "-o", "x", "--bogus").stderr
