"""`inspect PATH`: recognise what vmlayout wrote by its content and decode it back.

One place for the dispatch, so the CLI (`vmlayout inspect`) and the library
(`vmlayout.inspect`) recognise and refuse the same inputs alike.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vmlayout.errors import VmLayoutError


def inspect_path(path: Path, fmt: str, strict: bool = False) -> tuple[str, int]:
    """(text, exit status) of `vmlayout inspect PATH --format fmt [--strict]`: an
    `emit all` directory is cross-checked, anything else decoded by the first
    inspector that recognises it."""
    from vmlayout.artifacts import inspector_modules
    from vmlayout.inputs import read_bytes, shown
    from vmlayout.output import INCOMPLETE_MARKER

    if "\0" in str(path) or not path.exists():
        raise VmLayoutError("invalid_input", f"{shown(path)}: no such file or directory")
    if path.is_dir() and os.path.lexists(path / INCOMPLETE_MARKER):
        raise VmLayoutError(
            "invalid_artifact",
            f"{shown(path)}: an interrupted `emit all` left this set incomplete "
            f"({INCOMPLETE_MARKER} is present); run it again",
        )
    if path.is_dir() and os.path.lexists(path / "config.json"):
        from vmlayout.inspect.crosscheck import inspect_directory

        return inspect_directory(path, fmt, strict)
    data = None
    if not path.is_dir():
        data = read_bytes(path, "invalid_input")
    # Each view's inspector module (`vmlayout.artifacts.VIEWS`) provides
    #   sniff(path, data) -> bool   (data is None for a directory)
    #   inspect(path, data, fmt) -> (text, exit status)
    # and the first whose sniff accepts decodes it.
    for name in inspector_modules():
        module = importlib.import_module(name)
        if module.sniff(path, data):
            text, status = module.inspect(path, data, fmt)
            return str(text), int(status)
    what = "directory" if data is None else "file"
    raise VmLayoutError("unrecognised_input", f"{shown(path)}: not a {what} vmlayout can decode")


@dataclass(frozen=True, slots=True)
class InspectResult:
    """What `vmlayout inspect PATH --format json` prints (`report`) and its exit
    status: 0 when everything decoded and agrees, 1 on a disagreement."""

    path: str
    status: int
    report: Any

    @property
    def ok(self) -> bool:
        return self.status == 0

    def to_json(self) -> Any:
        return self.report


def inspect_artifacts(path: str | Path, /, *, strict: bool = False) -> InspectResult:
    """The library's `vmlayout.inspect`: `inspect PATH --format json` as a value."""
    import json

    if not isinstance(path, (str, Path)):
        raise VmLayoutError("invalid_argument", f"path: expected a path, got {type(path).__name__}")
    text, status = inspect_path(Path(path), "json", strict)
    return InspectResult(str(path), status, json.loads(text))
