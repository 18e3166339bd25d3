"""The README's two opening commands are the project's contract with a new user and CI."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _readme_commands() -> list[str]:
    return re.findall(r"```sh\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_starts_with_install_and_test_commands() -> None:
    first, second = _readme_commands()[:2]
    assert first == "pip install . && vmlayout resolve"
    assert "pytest" in second and "mypy" in second and "ruff check" in second


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci_lines[-1] == _readme_commands()[1]
