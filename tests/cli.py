"""Running the `vmlayout` CLI as a user would: in-process for speed (`run_cli`, the same
`main` the console script calls, with its own stdout/stderr and exit status), and in a
real subprocess for the few smoke tests that prove the installed entry point works
(`run_cli_subprocess`)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

from vmlayout.cli import main


def run_cli(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`vmlayout ARGS` in this process; argparse's exits (usage errors, `--help`) are
    caught and returned as the status, as a shell would see them."""
    argv = [str(a) for a in args]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            status = main(argv)
        except SystemExit as exit_:
            status = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    return subprocess.CompletedProcess(["vmlayout", *argv], status, out.getvalue(), err.getvalue())


def run_cli_subprocess(
    *args: str | Path, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m vmlayout ARGS` in a child process (smoke tests only: ~0.3 s each)."""
    return subprocess.run(
        [sys.executable, "-m", "vmlayout", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
        env={**os.environ},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2, exactly one stderr line starting `error:`, no traceback, nothing on stdout."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
