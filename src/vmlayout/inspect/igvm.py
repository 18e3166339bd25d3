"""`vmlayout inspect igvm-mmio-ranges.bin`: the IGVM MmioRanges parameter the host
hands the paravisor (low then high chipset window, as page number and page count)."""

from __future__ import annotations

import json
from pathlib import Path

from vmlayout.devicetree.paravisor import MMIO_RANGE, decode_mmio_ranges
from vmlayout.errors import VmLayoutError
from vmlayout.inspect.binaries import range_line
from vmlayout.ranges import FOUR_GIB


def sniff(path: Path, data: bytes | None) -> bool:
    """Exactly two entries, a low window at or below 4 GiB and a high one above it;
    the name decides only when the content is ambiguous (32 bytes of anything)."""
    if data is None or len(data) != 2 * MMIO_RANGE.size:
        return False
    try:
        low, high = decode_mmio_ranges(data)
    except VmLayoutError:
        return False
    shaped = low.end <= FOUR_GIB and (high.is_empty() or high.start >= FOUR_GIB)
    return shaped or path.name == "igvm-mmio-ranges.bin"


def inspect(path: Path, data: bytes | None, fmt: str) -> tuple[str, int]:
    assert data is not None
    low, high = decode_mmio_ranges(data)
    if fmt == "json":
        doc = {"kind": "igvm-mmio-ranges", "low": low.to_pair(), "high": high.to_pair()}
        return json.dumps(doc) + "\n", 0
    lines = [f"{path.name}: IGVM MmioRanges parameter, 2 entries (VTL0 chipset windows)"]
    for name, r in (("chipset low", low), ("chipset high", high)):
        lines.append(range_line(name, r, "(empty)" if r.is_empty() else ""))
    return "\n".join(lines) + "\n", 0
