"""The PCI assignment inside a resolved layout: the glue between the pure assignment
core (`vmlayout.pci`, which knows root complexes only as bus ranges and windows) and the
layout stages: `fit`'s window search, the hint in an exhaustion error, the resolve
table's PCI rows, `explain`, `map` and `pci.json` (`report`), and `inspect DIR`'s PCI
view (`check`). Modules here import the core and the layout, never the other way."""

from __future__ import annotations

from vmlayout.errors import VmLayoutError
from vmlayout.pci import PciAssignment
from vmlayout.pci_layout.fit import fit_config
from vmlayout.pci_layout.resolved import assign_each
from vmlayout.policy import FixedMmio, ResolvedLayout, VmConfig
from vmlayout.ranges import format_size


def assign_resolved(resolved: ResolvedLayout) -> dict[str, PciAssignment]:
    """Root-complex name -> assignment, for root complexes that list devices.

    Errors carry the reference's message behind the root complex's name; an MMIO
    exhaustion also names the window size `vmlayout fit` would choose."""
    return assign_each(resolved, lambda rc, window: fit_hint(resolved.config, rc, window))


def fit_hint(config: VmConfig, rc_name: str, window: str) -> str:
    """`; vmlayout fit would choose low_mmio = 66 MiB` (or why it cannot)."""
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
