"""`vmlayout where ADDRESS`: what a guest reaches at a physical address.

A guest that faults on an address needs three answers at once: which range of the
layout holds it (under the name `resolve` prints) or which gap it falls in and why the
allocator left that gap; which architectural device sits there (`vmlayout.zones`); and,
for a PCI BAR, the chain of windows it is decoded through (BAR, bridge windows, root
complex window), so a stray access can be traced to the device and the bridge. The
answer is computed from the same resolution (with a placement trace) that `resolve`
prints, never from a second model of the layout.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vmlayout.allocator import PlacedRangeKind, PlacementRecord, extent_name
from vmlayout.errors import VmLayoutError
from vmlayout.inspect.diff import pci_ranges
from vmlayout.policy import ResolvedLayout, VmConfig, resolve
from vmlayout.ranges import U64_LIMIT, align_down, align_up, format_address, format_size
from vmlayout.report import named_ranges, resolved_to_json
from vmlayout.zones import ZoneBlock, config_zones, zones_at

_BOTTOM_UP = (PlacedRangeKind.RAM, PlacedRangeKind.MMIO64, PlacedRangeKind.POST_MMIO)


@dataclass(frozen=True, slots=True)
class Span:
    """A named `[start, end)`: a layout range, a zone, a BAR or a window."""

    name: str
    start: int
    end: int
    kind: str = ""

    def contains(self, address: int) -> bool:
        return self.start <= address < self.end

    def to_json(self, with_kind: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if with_kind:
            out["kind"] = self.kind
        out.update(start=self.start, end=self.end)
        return out


@dataclass(frozen=True, slots=True)
class Gap:
    """Free space between two ranges (`after` ends at `start`, `before` starts at
    `end`; None at either end of the address space) and, when the allocator's trace
    tells, why nothing was placed there."""

    start: int
    end: int
    after: str | None
    before: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "after": self.after, "before": self.before}


@dataclass(frozen=True, slots=True)
class WhereResult:
    """What lives at `address` (the library's `vmlayout.where` result; `to_json` is
    `where --format json`)."""

    address: int
    range: Span | None
    gap: Gap | None
    zone: Span | None
    #: Everything holding the address, innermost first (a BAR, its bridge windows, the
    #: root-complex window; a zone, the reserved zone, the chipset window).
    chain: tuple[Span, ...]
    #: What the innermost zone is (e.g. "GICv3 redistributor of VP 3").
    zone_what: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "range": None if self.range is None else self.range.to_json(with_kind=True),
            "gap": None if self.gap is None else self.gap.to_json(),
            "zone": None if self.zone is None else self.zone.to_json(),
            "chain": [s.to_json() for s in self.chain],
        }

    def to_text(self) -> str:
        lines = [f"address {format_address(self.address)}"]
        if self.range is not None:
            r = self.range
            lines.append(f"  range: {r.name} ({r.kind}) {_span(r)}")
        if self.gap is not None:
            g = self.gap
            between = f"between {g.after or '(start of the address space)'} and "
            between += g.before or "(end of the address space)"
            lines.append(f"  gap:   {_span(Span('', g.start, g.end))}, {between}")
            lines.append(f"  why:   {g.reason}")
        if self.zone is not None:
            lines.append(f"  zone:  {self.zone.name} {_span(self.zone)}: {self.zone_what}")
        if self.chain:
            lines.append("  chain: " + " -> ".join(s.name for s in self.chain))
            lines += [f"         {s.name:<24} {_span(s)}" for s in self.chain]
        return "\n".join(lines) + "\n"


def _config_space(ecam: tuple[str, int, int, int], address: int) -> Span | None:
    """The 4 KiB of PCIe configuration space an ECAM address reaches (`rc0 03:00.0
    config space`): 1 MiB per bus, 32 KiB per device, 4 KiB per function."""
    from vmlayout.pci.model import bdf_text

    rc, start, end, first_bus = ecam
    if not start <= address < end:
        return None
    offset = address - start
    bdf = bdf_text(first_bus + (offset >> 20), (offset >> 15) & 0x1F, (offset >> 12) & 0x7)
    page = start + (offset & ~0xFFF)
    return Span(f"{rc} {bdf} config space", page, page + 0x1000, "pci-config")


def _bus_depth(s: Span) -> int:
    """A PCI row's bus number (`rc0 01:00.0 mem` -> 1): buses are numbered depth
    first, so of two bridge windows with the same extent the higher bus is nested in
    the lower one."""
    if s.kind not in ("pci-bar", "pci-vf-bar", "pci-window"):
        return 0
    return int(s.name.split(" ")[-2].split(":")[0], 16)


def _span(s: Span) -> str:
    if s.end == U64_LIMIT:
        return f"{format_address(s.start)} - 2^64 (the rest of the address space)"
    return f"{format_address(s.start)} - {format_address(s.end)} ({format_size(s.end - s.start)})"


def parse_address(text: str) -> int:
    """`0xFEE0_0000`, `4276092928`, `0o…`: a guest physical address below 2^64."""
    try:
        value = int(text.strip(), 0)
    except ValueError:
        raise VmLayoutError(
            "invalid_argument", f"ADDRESS: {text!r} is not an address (e.g. 0xfee0_0000)"
        ) from None
    if value < 0:
        raise VmLayoutError("invalid_argument", f"ADDRESS: {text} is negative")
    if value >= U64_LIMIT:
        raise VmLayoutError("invalid_argument", f"ADDRESS: {text} is not below 2^64")
    return value


def looks_like_address(text: str) -> bool:
    """True for text `parse_address` reads: no range name is a number."""
    try:
        int(text.strip(), 0)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class AddressMap:
    """The spans of one resolved layout, sorted once so each lookup is a bisection."""

    layout: tuple[Span, ...]
    pci: tuple[Span, ...]
    blocks: tuple[ZoneBlock, ...]
    names_at_end: Mapping[int, str]
    names_at_start: Mapping[int, str]
    starts: tuple[int, ...]
    #: covered_end[i]: the highest end among layout[0..i] (ranges may nest).
    covered_end: tuple[int, ...]
    width: int
    trace: tuple[PlacementRecord, ...]
    trace_index: tuple[dict[int, list[int]], list[tuple[int, int]]]
    #: (root complex, ECAM start, end, its first bus) of every root complex.
    ecams: tuple[tuple[str, int, int, int], ...] = ()

    @classmethod
    def of(
        cls,
        resolved: ResolvedLayout,
        blocks: tuple[ZoneBlock, ...],
        trace: tuple[PlacementRecord, ...] = (),
    ) -> AddressMap:
        data = resolved_to_json(resolved)  # PCI assignments included (errors raise)
        layout = tuple(Span(n.name, n.range.start, n.range.end, n.kind) for n in named_ranges(data))
        pci = tuple(Span(name, s.start, s.end, f"pci-{kind}") for name, kind, s in pci_ranges(data))
        at_end: dict[int, str] = {}
        at_start: dict[int, str] = {}
        for s in sorted(layout, key=lambda s: s.end - s.start):  # the widest name wins
            at_end[s.end] = s.name
            at_start[s.start] = s.name
        covered, high = [], 0
        for s in layout:
            high = max(high, s.end)
            covered.append(high)
        return cls(
            layout,
            pci,
            blocks,
            at_end,
            at_start,
            tuple(s.start for s in layout),
            tuple(covered),
            resolved.config.physical_address_size,
            trace,
            _trace_index(trace),
            tuple(
                (rc.name, rc.ecam.start, rc.ecam.end, rc.start_bus)
                for rc in resolved.pcie_root_complexes
                if not rc.ecam.is_empty()
            ),
        )

    def lookup(self, address: int) -> WhereResult:
        i = bisect.bisect_right(self.starts, address)
        # Only ranges starting at or below the address can hold it; they nest, so scan
        # back from the bisection point while the covered end still reaches it.
        holding = []
        j = i - 1
        while j >= 0 and self.covered_end[j] > address:
            if self.layout[j].contains(address):
                holding.append(self.layout[j])
            j -= 1
        zones = zones_at(address, self.blocks)
        zone_spans = [Span(z.name, z.start, z.end, "zone") for z in zones]
        bars = [s for s in self.pci if s.contains(address)]
        bars += [config for e in self.ecams if (config := _config_space(e, address))]
        rank = {"pci-config": 0, "pci-bar": 0, "pci-vf-bar": 0, "pci-window": 1, "zone": 2}
        chain = sorted(
            [*bars, *zone_spans, *holding],
            key=lambda s: (s.end - s.start, rank.get(s.kind, 3), -_bus_depth(s)),
        )
        innermost = min(holding, key=lambda s: s.end - s.start) if holding else None
        gap = None if holding else self._gap(address, i)
        return WhereResult(
            address,
            innermost,
            gap,
            zone_spans[0] if zone_spans else None,
            tuple(chain),
            zones[0].what if zones else "",
        )

    def _candidates(self, start: int, end: int) -> list[PlacementRecord]:
        """The placements that can explain a gap: those with an extent touching it,
        and the RAM request placed next above it (one that skipped it). Looked up, not
        scanned, so listing every gap stays O(n log n)."""
        touching, ram = self.trace_index
        found = [self.trace[i] for i in [*touching.get(start, ()), *touching.get(end, ())]]
        i = bisect.bisect_left(ram, (end, -1))
        if i < len(ram):
            found.append(self.trace[ram[i][1]])
        return found

    def gaps(self) -> list[Gap]:
        """Every gap between two ranges of the layout, by address (not the open space
        above the layout), each with its reason."""
        out = []
        for i in range(1, len(self.starts)):
            if self.starts[i] > self.covered_end[i - 1]:
                out.append(self._gap(self.covered_end[i - 1], i))
        if self.starts and self.starts[0] > 0:
            out.insert(0, self._gap(0, 0))
        return out

    def _gap(self, address: int, i: int) -> Gap:
        start = self.covered_end[i - 1] if i else 0
        end = self.starts[i] if i < len(self.starts) else U64_LIMIT
        after = self.names_at_end.get(start) if i else None
        before = self.names_at_start.get(end) if i < len(self.starts) else None
        return Gap(start, end, after, before, self._reason(address, start, end, after, before))

    def _reason(
        self, address: int, start: int, end: int, after: str | None, before: str | None
    ) -> str:
        if before is None:
            width = 1 << self.width
            where = "beyond" if address >= width else "inside"
            return (
                f"above the layout: nothing is placed above {after}; the address is {where} "
                f"the {self.width}-bit address width (it ends at {format_address(width)})"
            )
        for record in self._candidates(start, end):
            reason = _alignment_reason(record, start, end)
            if reason:
                return reason
        return (
            "free: no request needed it (each phase places from its own floor; "
            "32-bit MMIO top-down from 4 GiB, RAM and 64-bit MMIO bottom-up)"
        )


def _trace_index(
    trace: tuple[PlacementRecord, ...],
) -> tuple[dict[int, list[int]], list[tuple[int, int]]]:
    """(address -> records with an extent starting or ending there, sorted (start,
    record) of every RAM extent)."""
    touching: dict[int, list[int]] = {}
    ram: list[tuple[int, int]] = []
    for i, record in enumerate(trace):
        for extent in record.ranges:
            for point in (extent.start, extent.end):
                touching.setdefault(point, []).append(i)
            if record.kind is PlacedRangeKind.RAM:
                ram.append((extent.start, i))
    ram.sort()
    return touching, ram


def _alignment_reason(record: PlacementRecord, start: int, end: int) -> str:
    """Why `record`'s placement left `[start, end)` free, or "" if it did not."""
    size, align = end - start, format_size(record.alignment)
    names = [extent_name(record.tag, i) for i in range(len(record.ranges))]
    if record.kind is PlacedRangeKind.RAM and record.region.start <= start:
        # RAM takes whole aligned pieces from its floor up: a gap holding no aligned
        # piece is skipped, and the request continues above it.
        first = align_up(max(start, record.region.start), record.alignment)
        later = [i for i, x in enumerate(record.ranges) if x.start >= end]
        if later and first is not None and end - first < record.alignment:
            nxt = later[0]
            return (
                f"alignment: {record.tag} is placed in {align}-aligned pieces and the "
                f"{format_size(size)} free here holds none, so it goes above it: "
                f"{names[nxt]} at {format_address(record.ranges[nxt].start)}"
            )
    for index, extent in enumerate(record.ranges):
        name = names[index]
        if record.kind in _BOTTOM_UP and extent.start == end:
            floor = max(start, record.region.start)
            if record.region.start > start and align_up(floor, record.alignment) == end:
                return (
                    f"phase floor: {name} ({record.kind.value}) is placed from "
                    f"{format_address(record.region.start)}, its phase's floor"
                    + (f", rounded up to {align}" if floor != end else "")
                )
            if floor < end and align_up(floor, record.alignment) == end:
                return (
                    f"alignment: {name} ({record.kind.value}) needs {align} alignment, so it "
                    f"starts at the next boundary, {format_address(end)}"
                )
        if (
            record.kind is PlacedRangeKind.MMIO32
            and extent.end == start
            and align_down(end - extent.size, record.alignment) == extent.start
        ):
            return (
                f"alignment: {name} (mmio32, placed top-down) must start at a {align} "
                f"boundary, so it ends {format_size(size)} below the next range"
            )
    return ""


def where(
    address: int,
    config: VmConfig,
    blocks: tuple[ZoneBlock, ...] | None = None,
) -> WhereResult:
    """What lives at `address` in `config`'s layout; `blocks` are the architectural
    zones (default: those of the config's architecture, platform and processors)."""
    trace: list[PlacementRecord] = []
    resolved = resolve(config, trace)
    if blocks is None:
        blocks = config_zones(config)
    return AddressMap.of(resolved, blocks, tuple(trace)).lookup(address)


def layout_gaps(config: VmConfig) -> list[Gap]:
    """Every gap between the ranges of `config`'s layout with its reason (what
    `resolve --gaps` lists)."""
    trace: list[PlacementRecord] = []
    resolved = resolve(config, trace)
    return AddressMap.of(resolved, (), tuple(trace)).gaps()


def gaps_to_json(gaps: list[Gap], blocks: tuple[ZoneBlock, ...]) -> dict[str, Any]:
    return {
        "gaps": [{**g.to_json(), "reason": g.reason} for g in gaps],
        "zones": [{"name": b.label(), "start": b.start, "end": b.end} for b in blocks],
    }


def gaps_to_lines(gaps: list[Gap], blocks: tuple[ZoneBlock, ...]) -> list[str]:
    """The `resolve --gaps` table section: gaps, then zones (a per-VP block as one row)."""
    lines = ["", "gaps between ranges (free guest physical space):"]
    if not gaps:
        lines.append("  (none)")
    for g in gaps:
        lines.append(
            f"  {_span(Span('', g.start, g.end))} after {g.after or '(nothing)'}, "
            f"before {g.before}: {g.reason}"
        )
    lines += ["", "architectural zones (fixed-address devices):"]
    rows = [
        (b.label(), format_address(b.start), format_address(b.end), format_size(b.end - b.start),
         b.what.format(n="n"))
        for b in sorted(blocks, key=lambda b: (b.start, -b.end))
    ]  # fmt: skip
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(4)]
    for name, start, end, size, what in rows:
        lines.append(
            f"  {name:<{widths[0]}}  {start:>{widths[1]}} - {end:>{widths[2]}}  "
            f"{size:>{widths[3]}}  {what}"
        )
    return lines
