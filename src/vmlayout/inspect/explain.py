"""`vmlayout explain`: why a range sits where it does.

Addresses are a compatibility contract, so when one surprises a user the answer must
come from the same allocation that produced it: we re-run the resolver with a trace and
report the phase, the ordering rule that decided the request's turn, its search window,
and what was placed just before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vmlayout.allocator import PlacedRangeKind, PlacementRecord, split_extent_name
from vmlayout.errors import VmLayoutError
from vmlayout.inspect.where import Span, where
from vmlayout.policy import ResolvedLayout, VmConfig, resolve
from vmlayout.ranges import MemoryRange, format_address, format_size
from vmlayout.report import resolved_named_ranges
from vmlayout.schema import closest
from vmlayout.zones import ZoneBlock

if TYPE_CHECKING:
    from vmlayout.pci_layout.report import PciRow

#: Phase processing order: a placement can only be affected by earlier phases.
_PHASE_ORDER = (
    PlacedRangeKind.RESERVED,
    PlacedRangeKind.FIXED,
    PlacedRangeKind.MMIO32,
    PlacedRangeKind.RAM,
    PlacedRangeKind.MMIO64,
    PlacedRangeKind.POST_MMIO,
)

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


def config_fields(tag: str, config: VmConfig) -> tuple[str, ...]:
    """The config fields behind one placement request's size, alignment or presence."""
    rcs = config.pcie_root_complexes
    if tag == "low-ram-gap":
        return ("ram_start_address",)
    if tag == "chipset-low-mmio":
        return ("arch", "chipset_low_mmio_size")
    if tag == "chipset-high-mmio":
        return ("chipset_high_mmio_size",)
    if tag in ("vtl2-chipset-mmio", "vtl2-framebuffer"):
        return (tag.replace("-", "_").replace("chipset_mmio", "chipset_mmio_size").replace(
            "framebuffer", "framebuffer_size"),)  # fmt: skip
    if tag == "vtl2":
        return ("vtl2_layout",)
    if tag == "virtio-mmio":
        return ("virtio_mmio_count",)
    if match := re.fullmatch(r"ram(\d+)", tag):
        return (f"node_mem_sizes[{match.group(1)}]",)
    if match := re.fullmatch(r"pcie-seg(\d+)-ecam", tag):
        segment = int(match.group(1))
        fields = ["pcie_ecam_below_4gb"]
        for i, rc in enumerate(rcs):
            if rc.segment == segment:
                fields += [f"pcie_root_complexes[{i}].{k}" for k in ("start_bus", "end_bus")]
        return tuple(fields)
    if re.fullmatch(r"(smmu|amd-iommu|intel-vtd)-\d+", tag):
        return tuple(f"pcie_root_complexes[{i}].iommu" for i, rc in enumerate(rcs) if rc.iommu)
    for i, rc in enumerate(rcs):
        for suffix, key in (
            ("low-mmio", "low_mmio"),
            ("high-mmio", "high_mmio"),
            ("cxl-hdm", "cxl_hdm_size"),
            ("cxl-chbcr", "cxl_hdm_size"),
        ):
            if tag == f"pcie-{rc.name}-{suffix}":
                return (f"pcie_root_complexes[{i}].{key}",)
    return ()


@dataclass(frozen=True, slots=True)
class Explanation:
    record: PlacementRecord
    previous: PlacementRecord | None
    below: tuple[str, MemoryRange] | None
    above: tuple[str, MemoryRange] | None
    policy_rule: str
    #: The name asked for and, for one extent of a split request or a root complex's
    #: ECAM share, that range alone.
    name: str = ""
    part: MemoryRange | None = None
    #: Placements that ran before this one in its own phase, and the whole phase
    #: before it (what its start depends on).
    earlier_in_phase: tuple[PlacementRecord, ...] = ()
    previous_phase: tuple[PlacementRecord, ...] = ()
    #: Config fields the address depends on: its own, then those of every placement
    #: processed before it.
    own_fields: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    #: The search window clipped to the address width.
    search: MemoryRange | None = None

    @property
    def window(self) -> MemoryRange:
        return self.search if self.search is not None else self.record.region

    def to_json(self) -> dict[str, Any]:
        phase, _, how = _PHASES[self.record.kind]

        def chain(records: tuple[PlacementRecord, ...]) -> list[dict[str, Any]]:
            return [
                {
                    "name": r.tag,
                    "kind": r.kind.value,
                    "size": r.size,
                    "alignment": r.alignment,
                    "ranges": [[x.start, x.end] for x in r.ranges],
                }
                for r in records
            ]

        return {
            "name": self.name or self.record.tag,
            "request": self.record.tag,
            "range": None if self.part is None else [self.part.start, self.part.end],
            "kind": self.record.kind.value,
            "ranges": [[r.start, r.end] for r in self.record.ranges],
            "phase": phase,
            "placement": how,
            "size": self.record.size,
            "alignment": self.record.alignment,
            "position": self.record.position,
            "phase_count": self.record.phase_count,
            "order_rule": _ORDER_RULES[self.record.kind],
            "search_region": [self.window.start, self.window.end],
            "placed_after": None if self.previous is None else self.previous.tag,
            "earlier_in_phase": chain(self.earlier_in_phase),
            "previous_phase": chain(self.previous_phase),
            "config_fields": list(self.own_fields),
            "depends_on": list(self.depends_on),
            "below": None if self.below is None else self.below[0],
            "above": None if self.above is None else self.above[0],
            "policy_rule": self.policy_rule,
        }

    def to_text(self) -> str:
        r = self.record
        phase, phase_number, how = _PHASES[r.kind]
        extents = ", ".join(_span(x) for x in r.ranges)
        title = f"{r.tag}: {extents} ({format_size(r.size)})"
        if self.part is not None and self.name != r.tag:
            title = (
                f"{self.name}: {_span(self.part)} ({format_size(self.part.size)}), "
                f"part of request {r.tag}: {extents}"
            )
        lines = [
            title,
            f"  policy:       {self.policy_rule}",
            f"  phase:        {phase} (phase {phase_number}): {how}",
            f"  request:      size {format_size(r.size)}, alignment {format_size(r.alignment)}",
            f"  turn:         {r.position} of {r.phase_count} in its phase, {_ORDER_RULES[r.kind]}",
            f"  search:       [{format_address(self.window.start)}, "
            f"{format_address(self.window.end)})",
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
        for label, records in (
            ("earlier in its phase", self.earlier_in_phase),
            ("phase before", self.previous_phase),
        ):
            if records:
                lines.append(f"  {label}:")
                lines += [
                    f"    {x.tag:<22} size {format_size(x.size):<9} align "
                    f"{format_size(x.alignment):<8} {', '.join(_span(y) for y in x.ranges)}"
                    for x in records
                ]
        if self.own_fields:
            lines.append(f"  config:       {', '.join(self.own_fields)}")
        if self.depends_on:
            lines.append(f"  depends on:   {', '.join(self.depends_on)}")
        return "\n".join(lines) + "\n"


def _span(r: MemoryRange) -> str:
    return f"{format_address(r.start)} - {format_address(r.end)}"


def _policy_rule(tag: str) -> str:
    for pattern, rule in _POLICY_RULES:
        if re.fullmatch(pattern, tag):
            return rule
    return "(no policy rule: a request made directly to the allocator)"


def _lookup(
    name: str, resolved: ResolvedLayout, trace: list[PlacementRecord]
) -> tuple[PlacementRecord, MemoryRange | None]:
    """The placement behind a range name (see `vmlayout.report.named_ranges`) and, for
    an extent or ECAM share, the range itself."""
    named = {n.name: n for n in resolved_named_ranges(resolved)}
    by_tag = {record.tag: record for record in trace}
    tag, _ = split_extent_name(name)
    if name in by_tag:
        record = by_tag[name]
        return record, named[name].range if name in named and len(record.ranges) > 1 else None
    if name in named and tag in by_tag:
        return by_tag[tag], named[name].range
    for rc in resolved.pcie_root_complexes:
        if name == f"pcie-{rc.name}-ecam" and f"pcie-seg{rc.segment}-ecam" in by_tag:
            return by_tag[f"pcie-seg{rc.segment}-ecam"], rc.ecam
    names = [*named, *(t for t in by_tag if t not in named)]
    close = closest(name, names)
    hint = f"did you mean {close[0]}? " if close else ""
    raise VmLayoutError(
        "unknown_range", f"{name}: no such range; {hint}ranges are: {', '.join(names)}"
    )


def explain(name: str, config: VmConfig) -> Explanation:
    trace: list[PlacementRecord] = []
    resolved: ResolvedLayout = resolve(config, trace)
    if any(rc.devices for rc in config.pcie_root_complexes):
        from vmlayout.pci_layout import assign_resolved

        assign_resolved(resolved)  # an assignment error fails every name (docs/pci.md)
    record, part = _lookup(name, resolved, trace)
    previous = trace[record.order - 1] if record.order > 0 else None
    first, last = (part, part) if part is not None else (record.ranges[0], record.ranges[-1])
    below = above = None
    # Neighbours under the names `resolve` prints (`ram0-extent1`, not `ram0`).
    for named in resolved_named_ranges(resolved):
        if named.range.end <= first.start:
            if below is None or named.range.end >= below[1].end:
                below = (named.name, named.range)
        elif named.range.start >= last.end and above is None:
            above = (named.name, named.range)
    phase_index = _PHASE_ORDER.index(record.kind)
    earlier = tuple(r for r in trace if r.kind is record.kind and r.order < record.order)
    previous_phase: tuple[PlacementRecord, ...] = ()
    for kind in reversed(_PHASE_ORDER[:phase_index]):
        previous_phase = tuple(r for r in trace if r.kind is kind)
        if previous_phase:
            break
    own = config_fields(record.tag, config)
    depends = dict.fromkeys(f for r in trace[: record.order] for f in config_fields(r.tag, config))
    limit = 1 << config.physical_address_size
    region = record.region
    search = MemoryRange(min(region.start, limit), min(region.end, limit))
    return Explanation(
        record,
        previous,
        below,
        above,
        _policy_rule(record.tag),
        name=name,
        part=part,
        earlier_in_phase=earlier,
        previous_phase=previous_phase,
        own_fields=own,
        depends_on=tuple(f for f in depends if f not in own),
        search=search,
    )


#: A BAR or bridge-window name as a user types it: any case, the root complex's name
#: (optional: the segment and bus pick it), a BDF as `3:0.0`, `03:00.0` or lspci's
#: `0000:03:00.0` (segment first), then `BAR1`, `VF-BAR0`, `mem` or `pref`.
_PCI_NAME = re.compile(
    r"^\s*(?:(?P<rc>\S+)\s+)?(?:(?P<segment>[0-9a-f]{1,4}):)?(?P<bus>[0-9a-f]{1,2}):"
    r"(?P<device>[0-9a-f]{1,2})\.(?P<function>[0-9]{1,3})\s+"
    r"(?P<what>bar\d|vf-bar\d|mem|pref)\s*$",
    re.IGNORECASE,
)


def canonical_pci_name(name: str, config: VmConfig) -> str | None:
    """The name `resolve` prints for a BAR or window written loosely (see `_PCI_NAME`),
    or None when `name` is not shaped like one. The root complex is matched without
    regard to case; a segment, when given, must be that root complex's; without a root
    complex, the one whose segment and buses hold the BDF is meant."""
    match = _PCI_NAME.match(name)
    if match is None:
        return None
    from vmlayout.pci.model import BAR, MEM, PREF, VF_BAR, bdf_text, resource_name

    bus, device = (int(match[k], 16) for k in ("bus", "device"))
    segment = None if match["segment"] is None else int(match["segment"], 16)
    wanted = match["rc"]
    if wanted is None:
        rc_name = _root_complex_of(name, config, segment, bus)
    else:
        rcs = [rc for rc in config.pcie_root_complexes if rc.name.lower() == wanted.lower()]
        rc = next(iter([r for r in rcs if r.name == wanted] or rcs), None)  # exact case first
        rc_name = wanted if rc is None else rc.name
        if rc is not None and segment is not None and rc.segment != segment:
            raise VmLayoutError(
                "unknown_name",
                f"{name}: root complex {rc.name} is on segment {rc.segment:04x}, not {segment:04x}",
            )
    bdf = bdf_text(bus, device, int(match["function"]))
    what = match["what"].lower()
    if what.startswith(("bar", "vf-bar")):
        kind, index = what.rstrip("0123456789"), int(what[-1])
        return resource_name(rc_name, bdf, BAR if kind == "bar" else VF_BAR, index)
    return resource_name(rc_name, bdf, MEM if what == "mem" else PREF)


def _root_complex_of(name: str, config: VmConfig, segment: int | None, bus: int) -> str:
    """The root complex with devices whose segment (when given) and bus range hold `bus`."""
    holding = [
        rc.name
        for rc in config.pcie_root_complexes
        if rc.devices
        and (segment is None or rc.segment == segment)
        and rc.start_bus <= bus <= rc.end_bus
    ]
    if len(holding) == 1:
        return holding[0]
    where = f"segment {segment:04x} bus {bus:02x}" if segment is not None else f"bus {bus:02x}"
    if not holding:
        raise VmLayoutError("unknown_name", f"{name}: no root complex with devices has {where}")
    raise VmLayoutError(
        "unknown_name",
        f"{name}: {where} is on several root complexes ({', '.join(holding)}); name one, "
        f"e.g. {holding[0]} {name.strip()}",
    )


@dataclass(frozen=True, slots=True)
class PciExplanation:
    """Why a BAR or bridge window sits where it does (its pool, alignment and turn)
    and the chain it is decoded through: itself, the bridge windows holding it, its
    root complex's window (`explain --format json`'s object)."""

    row: PciRow
    chain: tuple[Span, ...]

    def to_json(self) -> dict[str, Any]:
        from vmlayout.pci_layout.report import row_to_json

        return {**row_to_json(self.row), "chain": [s.to_json() for s in self.chain]}

    def to_text(self) -> str:
        from vmlayout.pci_layout.report import explain_row

        links = " -> ".join(s.name for s in self.chain)
        return f"{explain_row(self.row)}  chain:     {links}\n"


def explain_pci_name(
    name: str, config: VmConfig, blocks: tuple[ZoneBlock, ...] | None = None
) -> PciExplanation | None:
    """The explanation of the BAR or window `name` (any spelling `canonical_pci_name`
    reads), or None when `name` is not shaped like one."""
    from vmlayout.pci_layout.report import explain_pci

    canonical = canonical_pci_name(name, config)
    row = None if canonical is None else explain_pci(canonical, config)
    if row is None:
        return None
    found = where(row.start, config, blocks).chain
    return PciExplanation(row, tuple(s for s in found if s.start <= row.start and s.end >= row.end))
