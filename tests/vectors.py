"""Locating and loading the JSON Lines test vectors (shared and VMLAYOUT_VECTORS)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_VECTORS = REPO_ROOT.parent / "shared" / "vectors"


def vector_dirs() -> list[Path]:
    dirs = [SHARED_VECTORS]
    extra = os.environ.get("VMLAYOUT_VECTORS", "")
    dirs += [Path(d) for d in extra.split(os.pathsep) if d]
    return dirs


def vector_params(filename: str) -> list[Any]:
    """One pytest param per vector line, with the vector's id as the test id."""
    if not (SHARED_VECTORS / filename).is_file():
        raise FileNotFoundError(f"shared vector file missing: {SHARED_VECTORS / filename}")
    params = []
    for directory in vector_dirs():
        path = directory / filename
        if not path.is_file():
            continue
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    case = json.loads(line)
                    params.append(pytest.param(case, id=case["id"]))
    return params
