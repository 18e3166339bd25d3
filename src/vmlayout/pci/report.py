"""Names and rows for assigned BARs and bridge windows (resolve table, explain, map).

Every BAR or window is named `<rc> <bdf> BAR<i>`, `<rc> <bdf> VF-BAR<i>` or
`<rc> <bdf> mem|pref` (a bridge's non-prefetchable / prefetchable window), e.g.
`rc0 01:00.0 BAR1`; `end` is exclusive like every other range of vmlayout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vmlayout.pci.model import Decision, PciAssignment


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
                f"{rc} {b.bdf} BAR{b.index}",
                "bar",
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
                f"{rc} {v.bdf} VF-BAR{v.index}",
                "vf-bar",
                v.address,
                v.address + v.total_size,
                f"{_bar_attributes(v.is_64bit, v.prefetchable)} x{v.total_vfs} VFs",
                v.decision,
                v.decision.pool == "mem64",
            )
        )
    for w in assignment.bridge_windows:
        for label, window, decision in (
            ("mem", w.mem, w.mem_decision),
            ("pref", w.pref, w.pref_decision),
        ):
            if window is not None:
                rows.append(
                    PciRow(
                        f"{rc} {w.bdf} {label}",
                        "window",
                        window[0],
                        window[1] + 1,
                        "bridge window" + (" pref" if label == "pref" else ""),
                        decision,
                        label == "pref",
                    )
                )
    return rows


def explain_row(row: PciRow) -> str:
    """Why a BAR or window sits where it does: pool, alignment, turn, fixed or not."""
    from vmlayout.ranges import format_address, format_size, readable_size

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


PCI_NAME = r"^(\S+) ([0-9a-f]{2}:[0-9a-f]{2}\.\d+) (BAR\d|VF-BAR\d|mem|pref)$"


def explain_pci(name: str, config: Any) -> PciRow | None:
    """The BAR or bridge window called `name` (None when `name` is not shaped like one).

    Raises `unknown_name` (with close matches) for a well-formed name nothing has."""
    import difflib
    import re

    from vmlayout.errors import VmLayoutError
    from vmlayout.pci.layout import assign_resolved
    from vmlayout.policy import resolve

    if re.match(PCI_NAME, name) is None:
        return None
    rows = {
        row.name: row
        for rc, assignment in assign_resolved(resolve(config)).items()
        for row in pci_rows(rc, assignment)
    }
    if name in rows:
        return rows[name]
    close = difflib.get_close_matches(name, list(rows), n=3)
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
