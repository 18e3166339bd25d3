"""Inputs and results of PCI resource assignment in one root complex (spec 06)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vmlayout.ranges import EMPTY, MemoryRange

#: Bridge windows are 1 MiB granular, so every pool is at least 1 MiB aligned.
BRIDGE_WINDOW_ALIGN = 1 << 20
U64_MAX = (1 << 64) - 1

MEM32 = "mem32"
MEM64 = "mem64"


@dataclass(frozen=True, slots=True)
class AssignmentParams:
    """One host bridge: its bus range (inclusive) and its resolved windows."""

    start_bus: int
    end_bus: int
    low_mmio: MemoryRange = EMPTY
    high_mmio: MemoryRange = EMPTY
    preserve_bars: bool = False


def bdf_text(bus: int, device: int, function: int) -> str:
    """`BB:DD.F` as the reference prints it (F decimal, so ARI functions read `00.12`)."""
    return f"{bus:02x}:{device:02x}.{function}"


#: What `resource_name` names: a BAR, a VF BAR region, a bridge's non-prefetchable or
#: prefetchable window, a bridge's bus numbers.
BAR, VF_BAR, MEM, PREF, BUSES = "bar", "vf-bar", "mem", "pref", "buses"
_LABELS = {BAR: "BAR{}", VF_BAR: "VF-BAR{}", MEM: "mem", PREF: "pref", BUSES: "buses"}

#: A name `resource_name` writes, as a pattern: root complex, BDF, resource.
RESOURCE_NAME = r"^(\S+) ([0-9a-f]{2}:[0-9a-f]{2}\.\d+) (BAR\d|VF-BAR\d|mem|pref|buses)$"


def resource_name(rc: str | None, bdf: str, resource: str, index: int = 0) -> str:
    """The one name of a PCI resource, as every table, diff, explain, map and inspect
    prints it: `rc0 03:00.0 BAR1`, `rc0 03:00.0 VF-BAR0`, `rc0 00:00.0 mem|pref`,
    `rc0 00:00.0 buses` (`rc` None: without the root complex, inside one's own rows)."""
    label = _LABELS[resource].format(index)
    return f"{bdf} {label}" if rc is None else f"{rc} {bdf} {label}"


@dataclass(frozen=True, slots=True)
class Decision:
    """How one address was chosen, for `explain`: its pool and the level it competed in.

    `level` is the bridge whose window holds it (`root` for the root bus); `turn` is its
    1-based position in that level's alignment-descending order, of `turns`."""

    pool: str
    alignment: int
    level: str
    turn: int
    turns: int
    fixed: bool


@dataclass(frozen=True, slots=True)
class BarAssignment:
    bdf: str
    index: int
    address: int
    size: int
    is_64bit: bool
    prefetchable: bool
    decision: Decision


@dataclass(frozen=True, slots=True)
class VfBarAssignment:
    bdf: str
    index: int
    address: int
    size: int
    total_vfs: int
    total_size: int
    is_64bit: bool
    prefetchable: bool
    decision: Decision


@dataclass(frozen=True, slots=True)
class BusAssignment:
    bdf: str
    primary: int
    secondary: int
    subordinate: int


@dataclass(frozen=True, slots=True)
class BridgeWindows:
    """Inclusive `(base, limit)` windows as the bridge registers hold them."""

    bdf: str
    mem: tuple[int, int] | None
    pref: tuple[int, int] | None
    mem_decision: Decision | None = None
    pref_decision: Decision | None = None


@dataclass(frozen=True, slots=True)
class PciAssignment:
    """Everything the reference programs, each list in its depth-first scan order."""

    buses: tuple[BusAssignment, ...] = ()
    bars: tuple[BarAssignment, ...] = ()
    vf_bars: tuple[VfBarAssignment, ...] = ()
    bridge_windows: tuple[BridgeWindows, ...] = ()
    ari_forwarding_enabled: tuple[str, ...] = ()
    ari_capable_hierarchy: tuple[str, ...] = ()
    unscanned: tuple[str, ...] = ()
    #: Pool sizes and alignments at the root, for `fit` and `explain`.
    mem32_size: int = 0
    mem32_alignment: int = BRIDGE_WINDOW_ALIGN
    mem64_size: int = 0
    mem64_alignment: int = BRIDGE_WINDOW_ALIGN

    def to_json(self) -> dict[str, Any]:
        """Exactly a `pci.jsonl` RESULT."""

        def window(w: tuple[int, int] | None) -> list[int] | None:
            return None if w is None else [w[0], w[1]]

        return {
            "ari_capable_hierarchy": list(self.ari_capable_hierarchy),
            "ari_forwarding_enabled": list(self.ari_forwarding_enabled),
            "bars": [
                {"address": b.address, "bdf": b.bdf, "index": b.index, "size": b.size}
                for b in self.bars
            ],
            "bridge_windows": [
                {"bdf": w.bdf, "mem": window(w.mem), "pref": window(w.pref)}
                for w in self.bridge_windows
            ],
            "buses": [
                {
                    "bdf": b.bdf,
                    "primary": b.primary,
                    "secondary": b.secondary,
                    "subordinate": b.subordinate,
                }
                for b in self.buses
            ],
            "unscanned": list(self.unscanned),
            "vf_bars": [
                {
                    "address": v.address,
                    "bdf": v.bdf,
                    "index": v.index,
                    "size": v.size,
                    "total_size": v.total_size,
                    "total_vfs": v.total_vfs,
                }
                for v in self.vf_bars
            ],
        }
