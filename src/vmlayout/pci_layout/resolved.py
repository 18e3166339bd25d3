"""The PCI assignment of a resolved layout: each root complex's devices in its windows."""

from __future__ import annotations

from collections.abc import Callable

from vmlayout.errors import VmLayoutError
from vmlayout.pci import AssignmentParams, PciAssignment, assign_functions
from vmlayout.policy import ResolvedLayout


def assign_each(
    resolved: ResolvedLayout, hint: Callable[[str, str], str] | None = None
) -> dict[str, PciAssignment]:
    """Root-complex name -> assignment, for root complexes that list devices.

    Errors carry the reference's message behind the root complex's name; an MMIO
    exhaustion also gets `hint(rc name, window)` (`vmlayout.pci_layout.assign_resolved`
    passes what `fit` would choose; `fit` itself passes none)."""
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
            if hint is not None and error.kind == "mmio_exhaustion":
                window = "high_mmio" if error.message.startswith("high_mmio") else "low_mmio"
                message += hint(rc.name, window)
            raise VmLayoutError(error.kind, message) from None
    return out
