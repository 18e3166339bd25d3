"""Inspectors: decode what vmlayout writes and check it against a layout.

`vmlayout.inspect` is both this package and the library function of that name
(`vmlayout.inspect(path)`, docs/api.md): importing a submodule makes the package the
`vmlayout` attribute whatever `vmlayout.__getattr__` returned before, so the package
itself is callable and does what the function does.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, path: str | Path, /, *, strict: bool = False) -> Any:
        from vmlayout.inspect.dispatch import inspect_artifacts

        return inspect_artifacts(path, strict=strict)


sys.modules[__name__].__class__ = _CallableModule
