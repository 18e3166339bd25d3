"""One exception type for every rejected input, so the CLI can print one line and exit 2.

`kind` is the stable machine-readable name (the vectors' error kinds); the message is
ours and names the offending field or request.
"""

from __future__ import annotations


class VmLayoutError(Exception):
    """A configuration or artifact that vmlayout refuses, with a stable `kind`."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message
