"""Atomic file output: a failed run never leaves a partial artifact behind."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from vmlayout.errors import VmLayoutError


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write to a temporary file in the same directory, then rename over `path`."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise VmLayoutError("output_error", f"{path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as error:
        raise VmLayoutError("output_error", f"{path}: cannot write: {error.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        raise VmLayoutError("output_error", f"{path}: cannot write: {error.strerror}") from None


def write_directory_atomic(path: str | Path, files: Mapping[str, bytes | str]) -> None:
    """Create or refresh directory `path` holding exactly-these new files, all or nothing.

    Files are staged in a sibling temporary directory; existing files of the same
    names are then replaced one rename at a time, so readers never see a torn file.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.exists() and not path.is_dir():
        raise VmLayoutError("output_error", f"{path}: exists and is not a directory")
    if not parent.is_dir():
        raise VmLayoutError("output_error", f"{path}: directory {parent} does not exist")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=parent))
    except OSError as error:
        raise VmLayoutError("output_error", f"{path}: cannot write: {error.strerror}") from None
    try:
        for name, data in files.items():
            (staging / name).write_bytes(data.encode() if isinstance(data, str) else data)
        if not path.exists():
            os.replace(staging, path)
            return
        for name in files:
            os.replace(staging / name, path / name)
    except OSError as error:
        raise VmLayoutError("output_error", f"{path}: cannot write: {error.strerror}") from None
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
