"""Serialisations of a resolved layout: the vector `expect` JSON and the human table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vmlayout.allocator import PlacedRange, extent_name
from vmlayout.policy import ResolvedLayout
from vmlayout.ranges import MemoryRange, format_address, format_size


def _pair(r: MemoryRange) -> list[int]:
    return [r.start, r.end]


def placed_to_json(placed: tuple[PlacedRange, ...] | list[PlacedRange]) -> list[dict[str, Any]]:
    return [
        {"name": p.tag, "kind": p.kind.value, "start": p.range.start, "end": p.range.end}
        for p in placed
    ]


def _assignments(resolved: ResolvedLayout) -> dict[str, Any]:
    """The assignment stage loads only when some root complex lists devices."""
    if not any(rc.devices for rc in resolved.config.pcie_root_complexes):
        return {}
    from vmlayout.pci_layout import assign_resolved

    return assign_resolved(resolved)


def resolved_to_json(resolved: ResolvedLayout) -> dict[str, Any]:
    """Exactly the `expect` object of resolver vectors; a root complex that lists devices
    also gets `pci`, exactly a `pci.jsonl` RESULT (assignment errors raise)."""
    return _layout_json(resolved, _assignments(resolved))


def _layout_json(resolved: ResolvedLayout, pci: Mapping[str, Any]) -> dict[str, Any]:
    layout = resolved.memory_layout
    return {
        "ram": [{"start": r.range.start, "end": r.range.end, "vnode": r.vnode} for r in layout.ram],
        "chipset": {
            "low": _pair(resolved.chipset.low),
            "high": _pair(resolved.chipset.high),
            "vtl2": _pair(resolved.chipset.vtl2),
        },
        "pcie_root_complexes": [
            {
                "name": rc.name,
                "ecam": _pair(rc.ecam),
                "low_mmio": _pair(rc.low_mmio),
                "high_mmio": _pair(rc.high_mmio),
                "cxl_hdm": _pair(rc.cxl_hdm),
                "cxl_chbcr": _pair(rc.cxl_chbcr),
                **({"pci": pci[rc.name].to_json()} if rc.name in pci else {}),
            }
            for rc in resolved.pcie_root_complexes
        ],
        "virtio_mmio": _pair(resolved.virtio_mmio),
        "iommu": {
            "kind": resolved.iommu_kind.value if resolved.iommu_kind else "none",
            "ranges": [_pair(r) for r in resolved.iommu_ranges],
        },
        "vtl2": None if layout.vtl2_range is None else _pair(layout.vtl2_range),
        "vtl2_framebuffer_base": resolved.vtl2_framebuffer_base,
        "mmio": [_pair(r) for r in layout.mmio],
        "pci_ecam": [_pair(r) for r in layout.pci_ecam],
        "pci_mmio": [_pair(r) for r in layout.pci_mmio],
        "ram_size": layout.ram_size,
        "end_of_ram": layout.end_of_ram,
        "end_of_layout": layout.end_of_layout,
        "placed": placed_to_json(resolved.placed),
    }


@dataclass(frozen=True, slots=True)
class NamedRange:
    """One range under its one name. `window` is the firmware role the same range also
    plays (`chipset low`, `chipset high`, `chipset vtl2`, `<rc> ECAM`), so a range that
    is both a placement and a chipset/root-complex window is one row, not two."""

    name: str
    kind: str
    range: MemoryRange
    vnode: int | None = None
    window: str = ""


def _pair_of(value: Any) -> MemoryRange:
    start, end = value
    return MemoryRange(int(start), int(end))


def named_ranges(layout: Mapping[str, Any]) -> tuple[NamedRange, ...]:
    """Every non-empty range of a layout in its `resolve --format json` form, by address.

    Chipset windows take the name of the placement that made them; a root complex's ECAM
    share is its own row (`pcie-<rc>-ecam`) only when it is not the whole segment block.
    If a saved layout's window disagrees with its placement, the window wins (it is what
    the firmware describes)."""
    vnode_of = {(int(r["start"]), int(r["end"])): int(r["vnode"]) for r in layout["ram"]}
    rows: dict[str, NamedRange] = {}
    counts: dict[str, int] = {}
    for placed in layout["placed"]:
        tag = str(placed["name"])
        index = counts.get(tag, 0)
        counts[tag] = index + 1
        r = MemoryRange(int(placed["start"]), int(placed["end"]))
        if r.is_empty():
            continue
        name = extent_name(tag, index)
        kind = str(placed.get("kind", ""))
        rows[name] = NamedRange(name, kind, r, vnode_of.get((r.start, r.end)))
    windows: list[tuple[str, str, MemoryRange]] = [
        (f"chipset-{key}-mmio" if key != "vtl2" else "vtl2-chipset-mmio", f"chipset {key}",
         _pair_of(layout["chipset"][key]))
        for key in ("low", "high", "vtl2")
    ]  # fmt: skip
    # One dict of the segments' ECAM blocks, so each root complex's lookup is O(1)
    # (a scan of every row per root complex took 34 s at 3,000 root complexes).
    ecam_blocks: dict[MemoryRange, str] = {}
    for n, row in rows.items():
        if n.endswith("-ecam"):
            ecam_blocks.setdefault(row.range, n)
    for rc in layout["pcie_root_complexes"]:
        ecam = _pair_of(rc["ecam"])
        block = ecam_blocks.get(ecam)
        windows.append((block or f"pcie-{rc['name']}-ecam", f"{rc['name']} ECAM", ecam))
    for name, role, r in windows:
        if r.is_empty():
            continue
        old = rows.get(name)
        kind = old.kind if old is not None else "window"
        rows[name] = NamedRange(name, kind, r, None, role)
    return tuple(sorted(rows.values(), key=lambda n: (n.range.start, n.range.end, n.name)))


def resolved_named_ranges(resolved: ResolvedLayout) -> tuple[NamedRange, ...]:
    """`named_ranges` of a resolved layout; the names need no PCI assignment, so none runs."""
    return named_ranges(_layout_json(resolved, {}))


def range_names(resolved: ResolvedLayout) -> list[str]:
    """Every name `explain` and `diff` accept for this layout, by address."""
    return [n.name for n in resolved_named_ranges(resolved)]


TableRow = tuple[str, str, str, str, str, str]


def table_rows(named: Iterable[NamedRange]) -> list[TableRow]:
    """Rows of the resolve table; further row sources append to this list."""
    return [
        (
            n.name,
            n.kind,
            format_address(n.range.start),
            format_address(n.range.end),
            format_size(n.range.size),
            "" if n.vnode is None else str(n.vnode),
        )
        for n in named
    ]


def resolved_to_table(resolved: ResolvedLayout) -> str:
    """One row per range by address (each under its one name), the placement that is each
    chipset window, then totals."""
    pci = _assignments(resolved)  # once, for the ranges and the PCI section
    named = named_ranges(_layout_json(resolved, pci))
    header = ("name", "kind", "start", "end", "size", "vnode")
    rows = table_rows(named)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(width) if i in (2, 3, 4) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths)), *(line(r) for r in rows), ""]
    role_of = {n.window: n.name for n in named if n.window}
    roles = []
    for key in ("low", "high", "vtl2"):
        window: MemoryRange = getattr(resolved.chipset, key)
        roles.append(f"{key} = {'(none)' if window.is_empty() else role_of[f'chipset {key}']}")
    out.append(f"chipset MMIO windows ({resolved.arch.value}): {', '.join(roles)}")
    if pci:
        from vmlayout.pci_layout.report import pci_table_lines

        out += pci_table_lines(pci)
    layout = resolved.memory_layout
    out.append("")
    out.append(
        f"RAM {format_size(layout.ram_size)}; end of RAM {format_address(layout.end_of_ram)}; "
        f"end of layout {format_address(layout.end_of_layout)}; "
        f"layout top {format_address(resolved.layout_top)}"
    )
    return "\n".join(out) + "\n"
