"""Shared pieces of the small binary decoders (`inspect/e820.py`, `inspect/igvm.py`)."""

from __future__ import annotations

from vmlayout.ranges import MemoryRange, format_address, format_size


def range_line(label: str, r: MemoryRange, note: str = "", width: int = 12) -> str:
    """One aligned `label start - end size` line, as the other inspectors print."""
    tail = f"  {note}" if note else ""
    return (
        f"  {label:<{width}} {format_address(r.start):>20} - {format_address(r.end):<20} "
        f"{format_size(r.size):>8}{tail}"
    ).rstrip()
