"""Compatibility diff: which guest-physical ranges moved between two layouts.

Guests persist addresses (hibernation, saved state), so a range present on both sides
that starts elsewhere is a break; a range that only grew or shrank in place, appeared or
vanished is reported but is not a move.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from vmlayout.config import config_from_dict, load_config
from vmlayout.errors import VmLayoutError
from vmlayout.policy import resolve
from vmlayout.ranges import MemoryRange, format_address, format_size
from vmlayout.report import resolved_to_json


class Change(Enum):
    MOVED = "moved"
    RESIZED = "resized"
    APPEARED = "appeared"
    VANISHED = "vanished"


@dataclass(frozen=True, slots=True)
class RangeChange:
    name: str
    change: Change
    before: MemoryRange | None
    after: MemoryRange | None

    def to_json(self) -> dict[str, Any]:
        def pair(r: MemoryRange | None) -> list[int] | None:
            return None if r is None else [r.start, r.end]

        return {
            "name": self.name,
            "change": self.change.value,
            "before": pair(self.before),
            "after": pair(self.after),
        }


def named_ranges(layout: dict[str, Any]) -> dict[str, MemoryRange]:
    """Every non-empty range of a resolved layout (the `resolve --format json` form), by
    a stable name: placed tags (`ram0[1]` for a split request's second extent, so a
    first extent keeps its plain name whether or not the request is split), the chipset
    windows and each root complex's ECAM share."""
    out: dict[str, MemoryRange] = {}
    counts: dict[str, int] = {}
    for placed in layout["placed"]:
        name = placed["name"]
        index = counts.get(name, 0)
        counts[name] = index + 1
        key = f"{name}[{index}]" if index else name
        out[key] = MemoryRange(placed["start"], placed["end"])
    for window in ("low", "high", "vtl2"):
        start, end = layout["chipset"][window]
        if start != end:
            out[f"chipset.{window}"] = MemoryRange(start, end)
    for rc in layout["pcie_root_complexes"]:
        start, end = rc["ecam"]
        out[f"pcie.{rc['name']}.ecam"] = MemoryRange(start, end)
    return out


def diff_layouts(before: dict[str, Any], after: dict[str, Any]) -> list[RangeChange]:
    old, new = named_ranges(before), named_ranges(after)
    changes = []
    for name, range_ in old.items():
        other = new.get(name)
        if other is None:
            changes.append(RangeChange(name, Change.VANISHED, range_, None))
        elif other.start != range_.start:
            changes.append(RangeChange(name, Change.MOVED, range_, other))
        elif other.end != range_.end:
            changes.append(RangeChange(name, Change.RESIZED, range_, other))
    changes += [RangeChange(n, Change.APPEARED, None, r) for n, r in new.items() if n not in old]
    order = list(Change)
    return sorted(
        changes,
        key=lambda c: (order.index(c.change), (c.before or c.after or MemoryRange(0, 0)).start),
    )


def load_layout(path: str | Path, arch: str | None = None) -> dict[str, Any]:
    """A saved `resolve --format json` output as is, or a config file resolved now."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise VmLayoutError("invalid_input", f"{path}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise VmLayoutError("invalid_input", f"{path}: cannot read JSON: {error}") from None
        if isinstance(data, dict) and "placed" in data and "chipset" in data:
            return check_saved_layout(data, str(path))
        return resolved_to_json(resolve(config_from_dict(data, arch)))
    return resolved_to_json(resolve(load_config(path, arch)))


def check_saved_layout(data: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate the parts of a saved layout that the diff reads."""
    try:
        for placed in data["placed"]:
            MemoryRange(int(placed["start"]), int(placed["end"]))
            str(placed["name"])
        for window in ("low", "high", "vtl2"):
            MemoryRange(*data["chipset"][window])
        for rc in data["pcie_root_complexes"]:
            MemoryRange(*rc["ecam"])
            str(rc["name"])
    except (KeyError, TypeError, ValueError) as error:
        raise VmLayoutError(
            "invalid_input", f"{where}: not a saved vmlayout layout: {error!r}"
        ) from None
    return data


def changes_to_table(changes: list[RangeChange]) -> str:
    if not changes:
        return "no differences\n"

    def span(r: MemoryRange | None) -> str:
        if r is None:
            return "-"
        return f"{format_address(r.start)} - {format_address(r.end)} ({format_size(r.size)})"

    rows = [(c.change.value, c.name, span(c.before), span(c.after)) for c in changes]
    header = ("change", "range", "before", "after")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]  # fmt: skip
    moved = sum(c.change is Change.MOVED for c in changes)
    lines.append("")
    lines.append(
        f"{moved} moved (a compatibility break)"
        if moved
        else "no range present on both sides moved"
    )
    return "\n".join(lines) + "\n"
