"""Shared pieces of the small decoders: the aligned range line of `inspect/e820.py`,
`inspect/igvm.py` and `inspect/views.py`, and the JSON document every JSON inspector
(`pcat`, `views`, `pci`) sniffs."""

from __future__ import annotations

import functools
from typing import Any

from vmlayout.errors import VmLayoutError
from vmlayout.ranges import MemoryRange, format_address, format_size


@functools.lru_cache(maxsize=1)
def _parse_once(data: bytes, where: str) -> Any:
    from vmlayout.inputs import parse_json  # bounded nesting and numbers

    try:
        return parse_json(data, where, "invalid_artifact")
    except VmLayoutError as error:
        return error


def json_document(data: bytes, where: str) -> Any:
    """`data` as JSON, or `invalid_artifact`. `inspect` asks each JSON inspector's
    `sniff` and then the chosen `inspect` about the same bytes: they share one parse
    (callers must not modify the document)."""
    doc = _parse_once(data, where)
    if isinstance(doc, VmLayoutError):
        raise doc
    return doc


def sniffed_object(data: bytes | None, where: str) -> dict[str, Any] | None:
    """The JSON object `data` holds, for a `sniff`; None when it is not one of ours.

    No size cap of its own: whatever `emit all` writes (a `pci.json` of many devices
    runs to tens of MiB) must be read back, and `read_bytes` already bounds `data` by
    the input limit while `parse_json` keeps the parse linear in it."""
    if data is None or data.lstrip(b" \t\r\n")[:1] != b"{":
        return None
    try:
        doc = json_document(data, where)
    except VmLayoutError:
        return None
    return doc if isinstance(doc, dict) else None


def range_line(label: str, r: MemoryRange, note: str = "", width: int = 12) -> str:
    """One aligned `label start - end size` line, as the other inspectors print."""
    tail = f"  {note}" if note else ""
    return (
        f"  {label:<{width}} {format_address(r.start):>20} - {format_address(r.end):<20} "
        f"{format_size(r.size):>8}{tail}"
    ).rstrip()
