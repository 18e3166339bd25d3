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


def require_arch(actual: str, wanted: str, what: str) -> None:
    """The one refusal of a view that exists for one architecture only, shared by the
    CLI and the library so both refuse the same inputs with the same words."""
    if actual != wanted:
        raise VmLayoutError(
            "unsupported_arch", f"arch: {what}: {wanted} only, this layout is {actual}"
        )
