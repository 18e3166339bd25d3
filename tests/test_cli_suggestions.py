"""A mistyped command, subcommand, option or option value gets "did you mean"."""

from __future__ import annotations

import pytest

from tests.cli import assert_one_line_error, run_cli


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
    assert_one_line_error(run_cli(*argv), "error: usage:", suggestion)


def test_nothing_close_gets_no_guess() -> None:
    out = run_cli("xyzzy")
    assert_one_line_error(out, "invalid choice: 'xyzzy'")
    assert "did you mean" not in out.stderr
    assert "did you mean" not in run_cli("emit", "acpi", "-o", "x", "--bogus").stderr
