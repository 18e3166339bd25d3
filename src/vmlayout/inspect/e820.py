"""`vmlayout inspect e820.bin`: the packed 20-byte E820 entries of a Linux direct boot.

There is no magic number, so the file is recognised by its shape: a whole number of
entries (at most the zero page's 128), every type a defined one, sorted and disjoint —
what the kernel itself requires before it trusts the map.
"""

from __future__ import annotations

import json
from pathlib import Path

from vmlayout.errors import VmLayoutError
from vmlayout.firmware.e820 import ENTRY, MAX_ENTRIES, E820Entry, E820Type, decode_e820
from vmlayout.inspect.binaries import range_line
from vmlayout.ranges import MemoryRange, format_size


def _plausible(entries: tuple[E820Entry, ...]) -> bool:
    known = {t.value for t in E820Type}
    previous_end = 0
    for e in entries:
        if e.type not in known or e.size == 0 or e.addr < previous_end:
            return False
        previous_end = e.end
    return True


def sniff(path: Path, data: bytes | None) -> bool:
    if data is None or not data or len(data) % ENTRY.size:
        return False
    if len(data) // ENTRY.size > MAX_ENTRIES:
        return False
    try:
        return _plausible(decode_e820(data))
    except VmLayoutError:
        return False


def inspect(path: Path, data: bytes | None, fmt: str) -> tuple[str, int]:
    assert data is not None
    entries = decode_e820(data)
    ram = sum(e.size for e in entries if e.type == E820Type.RAM)
    if fmt == "json":
        doc = {
            "kind": "e820",
            "entries": [
                {"addr": e.addr, "size": e.size, "type": e.type, "name": e.type_name}
                for e in entries
            ],
            "ram_bytes": ram,
        }
        return json.dumps(doc) + "\n", 0
    lines = [f"{path.name}: E820 map, {len(entries)} entries, {format_size(ram)} RAM"]
    lines += [_entry_line(n, e) for n, e in enumerate(entries)]
    return "\n".join(lines) + "\n", 0


def _entry_line(n: int, e: E820Entry) -> str:
    label = f"{n:>3} {e.type_name}"
    try:
        return range_line(label, MemoryRange(e.addr, e.end))
    except ValueError:  # E820 entries need not be page aligned, nor end below 2**64
        return f"  {label:<12} {e.addr:#x} - {e.end:#x} ({e.size} bytes)"
