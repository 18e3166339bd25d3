"""Rows for assigned BARs and bridge windows: the resolve table, explain, map, pci.json.

Every BAR or window is named by `vmlayout.pci.model.resource_name` (`rc0 01:00.0 BAR1`,
`rc0 01:00.0 VF-BAR0`, `rc0 00:00.0 mem|pref`); `end` is exclusive like every other
range of vmlayout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vmlayout.errors import VmLayoutError
from vmlayout.pci.model import (
    BAR,
    MEM,
    PREF,
    RESOURCE_NAME,
    VF_BAR,
    Decision,
    PciAssignment,
    resource_name,
)
from vmlayout.pci_layout import assign_resolved
from vmlayout.policy import ResolvedLayout, VmConfig, resolve
from vmlayout.ranges import format_address, format_size, readable_size
from vmlayout.schema import closest


@dataclass(frozen=True, slots=True)
class PciRow:
    name: str
    kind: str  # "bar", "vf-bar" or "window"
    start: int
    end: int
    attributes: str
    decision: Decision | None
    #: For a bridge window, its prefetchable flag; for a BAR, the pool's.
    prefetchable: bool


def range_table(rows: list[tuple[str, str, str, str, str]], indent: str = "") -> list[str]:
    """Lines of a name/start/end/size/type table (addresses and sizes right-aligned), as
    the resolve table's PCI section and `inspect pci.json` print it."""
    table = [("name", "start", "end", "size", "type"), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    lines = []
    for i, row in enumerate(table):
        cells = [
            c.rjust(w) if 1 <= j <= 3 else c.ljust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append((indent + "  ".join(cells)).rstrip())
        if i == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return lines


def _bar_attributes(is_64bit: bool, prefetchable: bool) -> str:
    return f"{64 if is_64bit else 32}-bit{' pref' if prefetchable else ''}"


def pci_rows(rc: str, assignment: PciAssignment) -> list[PciRow]:
    """Every BAR, VF BAR region and bridge window of a root complex, in scan order."""
    rows = []
    for b in assignment.bars:
        rows.append(
            PciRow(
                resource_name(rc, b.bdf, BAR, b.index),
                BAR,
                b.address,
                b.address + b.size,
                _bar_attributes(b.is_64bit, b.prefetchable),
                b.decision,
                b.decision.pool == "mem64",
            )
        )
    for v in assignment.vf_bars:
        rows.append(
            PciRow(
                resource_name(rc, v.bdf, VF_BAR, v.index),
                VF_BAR,
                v.address,
                v.address + v.total_size,
                f"{_bar_attributes(v.is_64bit, v.prefetchable)} x{v.total_vfs} VFs",
                v.decision,
                v.decision.pool == "mem64",
            )
        )
    for w in assignment.bridge_windows:
        for label, window, decision in (
            (MEM, w.mem, w.mem_decision),
            (PREF, w.pref, w.pref_decision),
        ):
            if window is not None:
                rows.append(
                    PciRow(
                        resource_name(rc, w.bdf, label),
                        "window",
                        window[0],
                        window[1] + 1,
                        "bridge window" + (" pref" if label == PREF else ""),
                        decision,
                        label == PREF,
                    )
                )
    return rows


def explain_row(row: PciRow) -> str:
    """Why a BAR or window sits where it does: pool, alignment, turn, fixed or not."""
    lines = [f"{row.name}: {format_address(row.start)}..{format_address(row.end)} "]
    lines[0] += f"({readable_size(row.end - row.start)}, {row.attributes})"
    d = row.decision
    if d is None:
        return lines[0] + "\n"
    pool = (
        "mem64 pool (64-bit prefetchable: the bridge prefetchable window / high_mmio)"
        if d.pool == "mem64"
        else "mem32 pool (32-bit or non-prefetchable: the bridge memory window / low_mmio)"
    )
    where = "the root bus" if d.level == "root" else f"the secondary bus of bridge {d.level}"
    lines.append(f"  pool:      {pool}")
    lines.append(f"  alignment: {format_size(d.alignment)}")
    lines.append(
        f"  turn:      {d.turn} of {d.turns} on {where} (demands sorted by alignment, "
        "largest first; ties keep scan order)"
    )
    if d.fixed:
        lines.append("  placement: fixed (a pinned BAR kept with preserve_bars, or a window")
        lines.append("             holding one)")
    else:
        lines.append("  placement: first fit: the lowest free address of its pool with")
        lines.append("             that alignment, after the demands placed before it")
    return "\n".join(lines) + "\n"


def explain_pci(name: str, config: VmConfig) -> PciRow | None:
    """The BAR or bridge window called `name` (None when `name` is not shaped like one).

    Raises `unknown_name` (with close matches) for a well-formed name nothing has."""
    match = re.match(RESOURCE_NAME, name)
    if match is None or match.group(3) == "buses":
        return None
    rows = {
        row.name: row
        for rc, assignment in assign_resolved(resolve(config)).items()
        for row in pci_rows(rc, assignment)
    }
    if name in rows:
        return rows[name]
    close = closest(name, rows, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise VmLayoutError("unknown_name", f"{name}: no such BAR or bridge window{hint}")


def row_to_json(row: PciRow) -> dict[str, Any]:
    d = row.decision
    return {
        "name": row.name,
        "kind": row.kind,
        "start": row.start,
        "end": row.end,
        "attributes": row.attributes,
        "decision": None
        if d is None
        else {
            "pool": d.pool,
            "alignment": d.alignment,
            "level": d.level,
            "turn": d.turn,
            "turns": d.turns,
            "fixed": d.fixed,
        },
    }


def pci_table_lines(assignments: Mapping[str, PciAssignment]) -> list[str]:
    """The resolve table's PCI section: BARs and bridge windows under their root complex."""
    if not assignments:
        return []
    # By address, a window before what it holds.
    rows = [
        row
        for name, a in assignments.items()
        for row in sorted(pci_rows(name, a), key=lambda r: (r.start, -r.end, r.kind != "window"))
    ]
    table = [
        (r.name, format_address(r.start), format_address(r.end), readable_size(r.end - r.start),
         r.attributes)
        for r in rows
    ]  # fmt: skip
    title = "PCI assignment (BARs and bridge windows inside their root complex's windows):"
    return ["", title, *range_table(table)]


def pci_json(resolved: ResolvedLayout) -> bytes | None:
    """`emit all`'s `pci.json`: each root complex with devices, its two windows and its
    assignment (a `pci.jsonl` RESULT); None when no root complex lists devices."""
    assignments = assign_resolved(resolved)
    if not assignments:
        return None
    doc = {
        "format": "vmlayout-pci",
        "root_complexes": [
            {
                "name": rc.name,
                "low_mmio": [rc.low_mmio.start, rc.low_mmio.end],
                "high_mmio": [rc.high_mmio.start, rc.high_mmio.end],
                "pci": assignments[rc.name].to_json(),
            }
            for rc in resolved.pcie_root_complexes
            if rc.name in assignments
        ],
    }
    return (json.dumps(doc, indent=1) + "\n").encode()


def pci_bar_regions(resolved: ResolvedLayout) -> list[tuple[str, int, int]]:
    """(name, start, end) of every assigned BAR and VF BAR region, for `map`."""
    return [
        (row.name, row.start, row.end)
        for name, assignment in assign_resolved(resolved).items()
        for row in pci_rows(name, assignment)
        if row.kind != "window"
    ]
