"""`vmlayout explain`: why a range sits where it does.

Addresses are a compatibility contract, so when one surprises a user the answer must
come from the same allocation that produced it: we re-run the resolver with a trace and
report the phase, the ordering rule that decided the request's turn, its search window,
and what was placed just before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vmlayout.allocator import PlacedRangeKind, PlacementRecord
from vmlayout.errors import VmLayoutError
from vmlayout.policy import ResolvedLayout, VmConfig, resolve
from vmlayout.ranges import MemoryRange, format_address, format_size

_PHASES = {
    PlacedRangeKind.RESERVED: (
        "Reserved",
        "1 of 6",
        "reserved at a decided address; blocks the range but does not raise the layout top",
    ),
    PlacedRangeKind.FIXED: (
        "Fixed",
        "2 of 6",
        "placed at an address decided by the policy or config",
    ),
    PlacedRangeKind.MMIO32: (
        "Mmio32",
        "3 of 6",
        "32-bit MMIO, placed top-down: the highest aligned free address below 4 GiB",
    ),
    PlacedRangeKind.RAM: (
        "Ram",
        "4 of 6",
        "RAM, placed bottom-up from the end of the previous RAM request, split around holes",
    ),
    PlacedRangeKind.MMIO64: (
        "Mmio64",
        "5 of 6",
        "64-bit MMIO, placed bottom-up from max(end of RAM, 4 GiB)",
    ),
    PlacedRangeKind.POST_MMIO: (
        "PostMmio",
        "6 of 6",
        "placed bottom-up above everything placed before it (the layout top)",
    ),
}

_ORDER_RULES = {
    PlacedRangeKind.MMIO32: "sorted by alignment, then size (largest first), ties in request order",
    PlacedRangeKind.MMIO64: "sorted by alignment, then size (largest first), ties in request order",
    PlacedRangeKind.RAM: "in request order (vnode order), never backfilling earlier fragments",
    PlacedRangeKind.POST_MMIO: "in request order, unsorted",
    PlacedRangeKind.RESERVED: "in request order",
    PlacedRangeKind.FIXED: "in request order",
}

#: Policy rules (spec 02 §5) by tag, so the answer says which config field is behind it.
_POLICY_RULES: tuple[tuple[str, str], ...] = (
    (r"low-ram-gap", "ram_start_address > 0 reserves [0, ram_start_address) (step 1)"),
    (
        r"chipset-low-mmio",
        "chipset_low_mmio_size rounded up to 4 KiB, at least the architectural zone, "
        "ending at 4 GiB (step 2)",
    ),
    (r"chipset-high-mmio", "chipset_high_mmio_size, 2 MiB aligned, Mmio64 (step 3)"),
    (
        r"pcie-seg\d+-ecam",
        "one ECAM block per PCI segment covering its buses at 1 MiB per bus, 1 MiB aligned; "
        "Mmio32 if pcie_ecam_below_4gb else Mmio64 (step 4)",
    ),
    (r"pcie-.+-low-mmio", "root-complex low window: a size -> Mmio32, 2 MiB aligned; "
     "start/end -> fixed (step 5a)"),
    (r"pcie-.+-high-mmio", "root-complex high window: a size -> Mmio64, 1 GiB aligned; "
     "start/end -> fixed (step 5b)"),
    (r"pcie-.+-cxl-hdm", "CXL host-managed device memory, 256 MiB aligned, Mmio64 (step 5c)"),
    (r"pcie-.+-cxl-chbcr", "CXL host bridge component registers, 64 KiB, Mmio64 (step 5c)"),
    (r"virtio-mmio", "virtio_mmio_count slots of 4 KiB in one Mmio32 region (step 6)"),
    (r"(smmu|amd-iommu|intel-vtd)-\d+", "one IOMMU per root complex that has one, "
     "aligned to its size, Mmio32 (step 7)"),
    (r"ram\d+", "node_mem_sizes[vnode]: 2 MiB aligned below 1 GiB, else 1 GiB aligned (step 8)"),
    (r"vtl2-chipset-mmio", "vtl2_chipset_mmio_size, 2 MiB aligned, PostMmio (step 9)"),
    (r"vtl2", "vtl2_layout size and alignment, PostMmio after the VTL2 window (step 10)"),
    (r"vtl2-framebuffer", "vtl2_framebuffer_size, 4 KiB aligned, issued last (step 11)"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Explanation:
    record: PlacementRecord
    previous: PlacementRecord | None
    below: tuple[str, MemoryRange] | None
    above: tuple[str, MemoryRange] | None
    policy_rule: str

    def to_json(self) -> dict[str, Any]:
        phase, _, how = _PHASES[self.record.kind]
        return {
            "name": self.record.tag,
            "kind": self.record.kind.value,
            "ranges": [[r.start, r.end] for r in self.record.ranges],
            "phase": phase,
            "placement": how,
            "size": self.record.size,
            "alignment": self.record.alignment,
            "position": self.record.position,
            "phase_count": self.record.phase_count,
            "order_rule": _ORDER_RULES[self.record.kind],
            "search_region": [self.record.region.start, self.record.region.end],
            "placed_after": None if self.previous is None else self.previous.tag,
            "below": None if self.below is None else self.below[0],
            "above": None if self.above is None else self.above[0],
            "policy_rule": self.policy_rule,
        }

    def to_text(self) -> str:
        r = self.record
        phase, phase_number, how = _PHASES[r.kind]
        extents = ", ".join(_span(x) for x in r.ranges)
        lines = [
            f"{r.tag}: {extents} ({format_size(r.size)})",
            f"  policy:       {self.policy_rule}",
            f"  phase:        {phase} (phase {phase_number}): {how}",
            f"  request:      size {format_size(r.size)}, alignment {format_size(r.alignment)}",
            f"  turn:         {r.position} of {r.phase_count} in its phase, {_ORDER_RULES[r.kind]}",
            f"  search:       [{format_address(r.region.start)}, {format_address(r.region.end)})",
        ]
        if self.previous is None:
            lines.append("  placed after: nothing (first placement)")
        else:
            p = self.previous
            lines.append(
                f"  placed after: {p.tag} ({p.kind.value}, {_span(p.ranges[-1])}), "
                "the placement just before it"
            )
        for label, neighbour in (("below", self.below), ("above", self.above)):
            if neighbour is not None:
                lines.append(f"  {label}:        {neighbour[0]} {_span(neighbour[1])}")
        return "\n".join(lines) + "\n"


def _span(r: MemoryRange) -> str:
    return f"{format_address(r.start)} - {format_address(r.end)}"


def _policy_rule(tag: str) -> str:
    for pattern, rule in _POLICY_RULES:
        if re.fullmatch(pattern, tag):
            return rule
    return "(no policy rule: a request made directly to the allocator)"


def explain(name: str, config: VmConfig) -> Explanation:
    trace: list[PlacementRecord] = []
    resolved: ResolvedLayout = resolve(config, trace)
    matches = [record for record in trace if record.tag == name]
    if not matches:
        names = ", ".join(dict.fromkeys(record.tag for record in trace))
        raise VmLayoutError("unknown_range", f"{name}: no such range; placed ranges are: {names}")
    record = matches[0]
    previous = trace[record.order - 1] if record.order > 0 else None
    first, last = record.ranges[0], record.ranges[-1]
    below = above = None
    for placed in resolved.placed:
        if placed.range.end <= first.start:
            below = (placed.tag, placed.range)
        elif placed.range.start >= last.end and above is None:
            above = (placed.tag, placed.range)
    return Explanation(record, previous, below, above, _policy_rule(name))
