"""Serialisations of a resolved layout: the vector `expect` JSON and the human table."""

from __future__ import annotations

from typing import Any

from vmlayout.allocator import PlacedRange
from vmlayout.policy import ResolvedLayout
from vmlayout.ranges import MemoryRange, format_address, format_size


def _pair(r: MemoryRange) -> list[int]:
    return [r.start, r.end]


def placed_to_json(placed: tuple[PlacedRange, ...] | list[PlacedRange]) -> list[dict[str, Any]]:
    return [
        {"name": p.tag, "kind": p.kind.value, "start": p.range.start, "end": p.range.end}
        for p in placed
    ]


def resolved_to_json(resolved: ResolvedLayout) -> dict[str, Any]:
    """Exactly the `expect` object of resolver vectors."""
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


def resolved_to_table(resolved: ResolvedLayout) -> str:
    """One row per placed range by address, then the chipset windows and totals."""
    vnode_of = {r.range: r.vnode for r in resolved.memory_layout.ram}
    header = ("name", "kind", "start", "end", "size", "vnode")
    rows = [
        (
            p.tag,
            p.kind.value,
            format_address(p.range.start),
            format_address(p.range.end),
            format_size(p.range.size),
            str(vnode_of[p.range]) if p.range in vnode_of else "",
        )
        for p in resolved.placed
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(width) if i in (2, 3, 4) else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths)), *(line(r) for r in rows), ""]
    out.append(f"chipset MMIO ({resolved.arch.value}):")
    for name in ("low", "high", "vtl2"):
        window: MemoryRange = getattr(resolved.chipset, name)
        desc = (
            "(none)"
            if window.is_empty()
            else f"{format_address(window.start)} - {format_address(window.end)}  "
            f"{format_size(window.size)}"
        )
        out.append(f"  {name:<5} {desc}")
    layout = resolved.memory_layout
    out.append("")
    out.append(
        f"RAM {format_size(layout.ram_size)}; end of RAM {format_address(layout.end_of_ram)}; "
        f"end of layout {format_address(layout.end_of_layout)}; "
        f"layout top {format_address(resolved.layout_top)}"
    )
    return "\n".join(out) + "\n"
