"""Locating and loading the JSON Lines test vectors.

The project's own copy in `tests/vectors/` is always read, so a fresh clone runs every
vector. Each directory in `VMLAYOUT_VECTORS` (`os.pathsep`-separated) adds the
same-named files from elsewhere (held-back vectors). `UPSTREAM_VECTORS` is where the
vectors are published beside a development checkout; `test_vector_copy` compares the
project's copy with it when it exists.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT_VECTORS = Path(__file__).resolve().parent / "vectors"
UPSTREAM_VECTORS = REPO_ROOT.parent / "shared" / "vectors"


def vector_dirs() -> list[Path]:
    dirs = [PROJECT_VECTORS]
    extra = os.environ.get("VMLAYOUT_VECTORS", "")
    dirs += [Path(d) for d in extra.split(os.pathsep) if d]
    return dirs


def read_cases(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def vector_params(filename: str) -> list[Any]:
    """One pytest param per vector line, with the vector's id as the test id."""
    if not (PROJECT_VECTORS / filename).is_file():
        raise FileNotFoundError(f"project vector file missing: {PROJECT_VECTORS / filename}")
    params = []
    for directory in vector_dirs():
        path = directory / filename
        if path.is_file():
            params += [pytest.param(case, id=case["id"]) for case in read_cases(path)]
    return params
