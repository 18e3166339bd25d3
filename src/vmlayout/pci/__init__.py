"""PCI resource assignment inside each root complex, exactly as the reference (spec 06).

A pure core that knows nothing of the layout stages (policy, config, resolver): a root
complex's device description, bus range and two windows in, bus numbers, BAR addresses
and bridge windows out (or one precise error). Errors of the bus walk come before pin
errors, which come before window exhaustion. Running it on a resolved layout, `fit`,
the tables and `pci.json` are `vmlayout.pci_layout`, a later stage.
"""

from __future__ import annotations

from collections.abc import Sequence

from vmlayout.devices import PciFunction
from vmlayout.pci.assign import bar_rows, place
from vmlayout.pci.enumerate import Scanned, enumerate_functions
from vmlayout.pci.model import (
    AssignmentParams,
    BarAssignment,
    BridgeWindows,
    BusAssignment,
    Decision,
    PciAssignment,
    VfBarAssignment,
    bdf_text,
)

__all__ = [
    "AssignmentParams",
    "BarAssignment",
    "BridgeWindows",
    "BusAssignment",
    "Decision",
    "PciAssignment",
    "VfBarAssignment",
    "assign_functions",
    "bdf_text",
]


def assign_functions(functions: Sequence[PciFunction], params: AssignmentParams) -> PciAssignment:
    """Number the buses and place every BAR of one root complex (spec 06)."""
    scanned, state = enumerate_functions(functions, params)
    root = place(scanned, params)
    bars, vfs, windows = bar_rows(scanned, root.placement)
    buses: list[BusAssignment] = []

    def walk(level: tuple[Scanned, ...]) -> None:
        for f in level:
            if f.is_bridge:
                assert f.secondary is not None and f.subordinate is not None
                buses.append(BusAssignment(f.bdf, f.bus, f.secondary, f.subordinate))
            walk(f.children)

    walk(scanned)
    return PciAssignment(
        buses=tuple(buses),
        bars=tuple(bars),
        vf_bars=tuple(vfs),
        bridge_windows=tuple(windows),
        ari_forwarding_enabled=tuple(state.ari_forwarding_enabled),
        ari_capable_hierarchy=tuple(state.ari_capable_hierarchy),
        unscanned=tuple(state.unscanned),
        mem32_size=root.level.mem32,
        mem32_alignment=root.level.align32,
        mem64_size=root.level.mem64,
        mem64_alignment=root.level.align64,
    )
