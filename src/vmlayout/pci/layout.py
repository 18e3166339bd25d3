"""Assignment of every root complex with devices inside its resolved windows."""

from __future__ import annotations

from collections.abc import Mapping

from vmlayout.errors import VmLayoutError
from vmlayout.pci import AssignmentParams, PciAssignment, assign_functions
from vmlayout.policy import ResolvedLayout, VmConfig


def assign_resolved(resolved: ResolvedLayout, *, hint: bool = True) -> dict[str, PciAssignment]:
    """Root-complex name -> assignment, for root complexes that list devices.

    Errors carry the reference's message behind the root complex's name; with `hint`, an
    MMIO exhaustion also names the window size `vmlayout fit` would choose (`fit` itself
    passes `hint=False`: computing the hint would run `fit` again)."""
    config = resolved.config
    out: dict[str, PciAssignment] = {}
    for rc, ranges in zip(config.pcie_root_complexes, resolved.pcie_root_complexes, strict=True):
        if not rc.devices:
            continue
        params = AssignmentParams(
            rc.start_bus, rc.end_bus, ranges.low_mmio, ranges.high_mmio, rc.preserve_bars
        )
        try:
            out[rc.name] = assign_functions(rc.devices, params)
        except VmLayoutError as error:
            message = f"{rc.name}: {error.message}"
            if hint and error.kind == "mmio_exhaustion":
                window = "high_mmio" if error.message.startswith("high_mmio") else "low_mmio"
                message += fit_hint(config, rc.name, window)
            raise VmLayoutError(error.kind, message) from None
    return out


def fit_hint(config: VmConfig, rc_name: str, window: str) -> str:
    """`; vmlayout fit would choose low_mmio = 66 MiB` (or why it cannot)."""
    from vmlayout.pci.fit import fit_config
    from vmlayout.policy import FixedMmio
    from vmlayout.ranges import format_size

    rc = next(rc for rc in config.pcie_root_complexes if rc.name == rc_name)
    if isinstance(rc.low_mmio if window == "low_mmio" else rc.high_mmio, FixedMmio):
        return " (the window is fixed; vmlayout fit resizes only dynamic windows)"
    try:
        result = fit_config(config)
    except VmLayoutError as error:
        return f" (vmlayout fit finds no size either: {error.message})"
    (chosen,) = [w for w in result.windows if w.rc == rc_name and w.window == window]
    others = [
        f"{w.rc} {w.window} = {format_size(w.after)}"
        for w in result.windows
        if w.after != w.before and w is not chosen
    ]
    chipset = ""
    if result.chipset_low_after != result.chipset_low_before:
        chipset = f"chipset_low_mmio_size = {format_size(result.chipset_low_after)}"
    size = f"{window} = {format_size(chosen.after)}"
    changes = ", ".join(others + ([chipset] if chipset else []))
    if chosen.after != chosen.before or not changes:
        return f"; `vmlayout fit` would choose {size}" + (f" and {chipset}" if chipset else "")
    # The window is big enough where the fitted layout puts it: name what moves it there.
    return f"; `vmlayout fit` keeps {size} and changes {changes}"


def pci_table_lines(assignments: Mapping[str, PciAssignment]) -> list[str]:
    """The resolve table's PCI section: BARs and bridge windows under their root complex."""
    from vmlayout.pci.report import pci_rows, range_table
    from vmlayout.ranges import format_address, readable_size

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
    import json

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
    from vmlayout.pci.report import pci_rows

    return [
        (row.name, row.start, row.end)
        for name, assignment in assign_resolved(resolved).items()
        for row in pci_rows(name, assignment)
        if row.kind != "window"
    ]
