"""External validators (iasl, dtc): required in CI, optional on a developer machine."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, package: str) -> str:
    """The tool's path; fails under CI=true when it is missing, skips otherwise."""
    found = shutil.which(name)
    if found is None and os.environ.get("CI") == "true":
        pytest.fail(f"{name} ({package}) is required in CI")
    if found is None:
        pytest.skip(f"{name} not installed")
    return found
