"""The pure guest-physical allocator (spec 01 §3-§9).

It knows only ranges, sizes, alignments and four placement phases; chipsets, PCIe and
VTLs belong to the policy layer. Addresses it produces are a compatibility contract, so
every ordering rule below is deliberate.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from itertools import pairwise

from vmlayout.errors import VmLayoutError
from vmlayout.ranges import (
    EMPTY,
    FOUR_GIB,
    MAX_ADDRESS,
    PAGE_SIZE,
    MemoryRange,
    align_down,
    align_up,
    is_power_of_two,
)


class Placement(Enum):
    MMIO32 = "mmio32"
    MMIO64 = "mmio64"
    POST_MMIO = "post_mmio"


class PlacedRangeKind(Enum):
    RESERVED = "reserved"
    FIXED = "fixed"
    MMIO32 = "mmio32"
    RAM = "ram"
    MMIO64 = "mmio64"
    POST_MMIO = "post_mmio"


_PHASE_NAMES = {
    PlacedRangeKind.MMIO32: "Mmio32",
    PlacedRangeKind.RAM: "Ram",
    PlacedRangeKind.MMIO64: "Mmio64",
    PlacedRangeKind.POST_MMIO: "PostMmio",
}


@dataclass(frozen=True, slots=True)
class PlacedRange:
    tag: str
    kind: PlacedRangeKind
    range: MemoryRange


#: The one naming scheme for ranges (resolve, diff, explain, map, corpus): the
#: allocator's placement tags; the second and later extents of a split RAM request get
#: `<tag>-extent<N>` (N from 1), so the first extent keeps its plain name whether or not
#: the request is split and every name is stable across configs that do not re-split.
EXTENT_SUFFIX = "-extent"


def extent_name(tag: str, index: int) -> str:
    return tag if index == 0 else f"{tag}{EXTENT_SUFFIX}{index}"


def split_extent_name(name: str) -> tuple[str, int]:
    """(request tag, extent index) of a range name; index 0 for an unsplit name."""
    tag, sep, index = name.rpartition(EXTENT_SUFFIX)
    if sep and tag and index.isdigit() and not index.startswith("0"):
        return tag, int(index)
    return name, 0


def placement_names(placed: Sequence[PlacedRange]) -> list[str]:
    """Each placement's name under the one scheme (`extent_name`), in `placed` order."""
    counts: dict[str, int] = {}
    names = []
    for p in placed:
        index = counts.get(p.tag, 0)
        counts[p.tag] = index + 1
        names.append(extent_name(p.tag, index))
    return names


@dataclass(frozen=True, slots=True)
class WidthExcess:
    """Why placements do not fit an address width: what the refusal names (issue 19).

    `minimum_bits` is the smallest width that holds the layout; `highest` the placement
    that reaches highest (RAM, a window, ECAM, by its name); `ram_end` where RAM alone
    ends, which says whether any window size could help."""

    bits: int
    top: int
    minimum_bits: int
    highest: str
    highest_range: MemoryRange
    ram_end: int

    def detail(self, source: str) -> str:
        """`; the limit is <source>; at least 41 bits hold the layout; …`."""
        from vmlayout.ranges import format_address

        ram = f"RAM alone ends at {format_address(self.ram_end)}"
        if self.ram_end > 1 << self.bits:
            ram = f"RAM alone already ends above 2^{self.bits}, at {format_address(self.ram_end)}"
        return (
            f"; the limit is {source}; at least {self.minimum_bits} bits hold the layout; "
            f"highest is {self.highest} [{format_address(self.highest_range.start)}, "
            f"{format_address(self.highest_range.end)}); {ram}"
        )


def width_excess(placed: Sequence[PlacedRange], bits: int) -> WidthExcess | None:
    """None when every non-reserved placement ends at or below 2**bits."""
    names = placement_names(placed)
    used = [
        (p, n) for p, n in zip(placed, names, strict=True) if p.kind is not PlacedRangeKind.RESERVED
    ]
    if not used:
        return None
    highest, name = max(used, key=lambda item: item[0].range.end)
    top = highest.range.end
    if top <= 1 << bits:
        return None
    ram_end = max((p.range.end for p, _ in used if p.kind is PlacedRangeKind.RAM), default=0)
    return WidthExcess(bits, top, (top - 1).bit_length(), name, highest.range, ram_end)


@dataclass(frozen=True, slots=True)
class PlacementRecord:
    """How one request was placed, for `vmlayout explain`: phase, search window and the
    request's position in its phase's processing order (after any sorting)."""

    order: int
    tag: str
    kind: PlacedRangeKind
    ranges: tuple[MemoryRange, ...]
    size: int
    alignment: int
    position: int
    phase_count: int
    region: MemoryRange


@dataclass(slots=True)
class RangeSlot:
    """Filled in by `allocate()`; stays EMPTY until its request is placed."""

    range: MemoryRange = EMPTY


@dataclass(slots=True)
class RamSlot:
    """Replaced by the placed extents of a splittable RAM request."""

    ranges: list[MemoryRange] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Request:
    tag: str
    size: int
    alignment: int
    slot: RangeSlot | RamSlot


def _invalid_size(tag: str, size: int) -> VmLayoutError:
    return VmLayoutError(
        "invalid_size", f"{tag}: invalid size {size:#x} (must be > 0 and a multiple of 0x1000)"
    )


def _check_request(request: _Request) -> None:
    if request.size <= 0 or request.size % PAGE_SIZE:
        raise _invalid_size(request.tag, request.size)
    if request.alignment < PAGE_SIZE or not is_power_of_two(request.alignment):
        raise VmLayoutError(
            "invalid_alignment",
            f"{request.tag}: invalid alignment {request.alignment:#x} "
            "(must be >= 0x1000 and a power of 2)",
        )


class _FreeList:
    """Sorted disjoint free ranges, kept as parallel start/end lists for bisect."""

    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.starts = [0]
        self.ends = [MAX_ADDRESS]

    def take(self, start: int, end: int) -> None:
        index = bisect.bisect_right(self.starts, start) - 1
        free_start, free_end = self.starts[index], self.ends[index]
        assert index >= 0 and free_start <= start and end <= free_end, "range not free"
        starts, ends = [], []
        if free_start < start:
            starts.append(free_start)
            ends.append(start)
        if end < free_end:
            starts.append(end)
            ends.append(free_end)
        self.starts[index : index + 1] = starts
        self.ends[index : index + 1] = ends

    def clamped(self, lo: int, hi: int, descending: bool = False) -> Iterator[tuple[int, int]]:
        """Free ranges clipped to `[lo, hi)`, lazily, so a first fit stops early."""
        first = max(bisect.bisect_right(self.starts, lo) - 1, 0)
        last = bisect.bisect_left(self.starts, hi)
        indices = range(last - 1, first - 1, -1) if descending else range(first, last)
        for index in indices:
            s, e = max(self.starts[index], lo), min(self.ends[index], hi)
            if s < e:
                yield s, e

    def free_space(self, lo: int, hi: int) -> int:
        return sum(e - s for s, e in self.clamped(lo, hi))


def _highest_fit(free: _FreeList, size: int, alignment: int, lo: int, hi: int) -> int | None:
    for s, e in free.clamped(lo, hi, descending=True):
        if e - s < size:
            continue
        candidate = align_down(e - size, alignment)
        if candidate >= s:
            return candidate
    return None


def _lowest_fit(free: _FreeList, size: int, alignment: int, lo: int, hi: int) -> int | None:
    for s, e in free.clamped(lo, hi):
        candidate = align_up(s, alignment)
        if candidate is None or candidate + size >= 1 << 64:
            continue
        if candidate + size <= e:
            return candidate
    return None


def _lowest_splittable_fit(
    free: _FreeList, size: int, alignment: int, lo: int, hi: int
) -> list[MemoryRange] | None:
    remaining = size
    out: list[MemoryRange] = []
    for s, e in free.clamped(lo, hi):
        candidate = align_up(s, alignment)
        if candidate is None or candidate >= e:
            continue
        available = e - candidate
        take = remaining if available >= remaining else align_down(available, alignment)
        if take == 0:
            continue
        out.append(MemoryRange(candidate, candidate + take))
        remaining -= take
        if remaining == 0:
            return out
    return None


class LayoutBuilder:
    """Collects requests; `allocate()` validates and places them all at once."""

    def __init__(self) -> None:
        self._reserved: list[tuple[str, MemoryRange]] = []
        self._fixed: list[tuple[str, MemoryRange]] = []
        self._mmio32: list[_Request] = []
        self._ram: list[_Request] = []
        self._mmio64: list[_Request] = []
        self._post_mmio: list[_Request] = []

    def reserve(self, tag: str, range_: MemoryRange) -> None:
        self._reserved.append((tag, range_))

    def fixed(self, tag: str, range_: MemoryRange) -> None:
        self._fixed.append((tag, range_))

    def request(self, tag: str, size: int, alignment: int, placement: Placement) -> RangeSlot:
        slot = RangeSlot()
        if placement is Placement.MMIO32:
            target = self._mmio32
        elif placement is Placement.MMIO64:
            target = self._mmio64
        else:
            target = self._post_mmio
        target.append(_Request(tag, size, alignment, slot))
        return slot

    def ram(self, tag: str, size: int, alignment: int) -> RamSlot:
        slot = RamSlot()
        self._ram.append(_Request(tag, size, alignment, slot))
        return slot

    def _validate(self) -> None:
        for tag, range_ in self._reserved + self._fixed:
            if range_.size == 0:
                raise _invalid_size(tag, 0)
        pinned = sorted(self._reserved + self._fixed, key=lambda item: item[1].start)
        for (tag_a, range_a), (tag_b, range_b) in pairwise(pinned):
            if range_a.overlaps(range_b):
                raise VmLayoutError(
                    "fixed_overlap",
                    f"fixed/reserved requests {tag_a} ({range_a}) and {tag_b} ({range_b}) overlap",
                )
        for request in self._mmio32 + self._ram + self._mmio64 + self._post_mmio:
            _check_request(request)

    def allocate(self, trace: list[PlacementRecord] | None = None) -> list[PlacedRange]:
        """Place everything, phase by phase; returns placed ranges sorted by address.

        With `trace`, one `PlacementRecord` per request is appended in placement order.
        """
        self._validate()
        free = _FreeList()
        placed: list[PlacedRange] = []
        ram_end = 0
        top = 0  # layout top: max end of every non-reserved placement

        def take(tag: str, kind: PlacedRangeKind, range_: MemoryRange) -> None:
            nonlocal ram_end, top
            free.take(range_.start, range_.end)
            placed.append(PlacedRange(tag, kind, range_))
            if kind is PlacedRangeKind.RAM:
                ram_end = max(ram_end, range_.end)
            if kind is not PlacedRangeKind.RESERVED:
                top = max(top, range_.end)

        def exhausted(request: _Request, kind: PlacedRangeKind, lo: int, hi: int) -> VmLayoutError:
            return VmLayoutError(
                "exhausted",
                f"{request.tag}: cannot allocate {request.size:#x} bytes with alignment "
                f"{request.alignment:#x} during {_PHASE_NAMES[kind]}; remaining free space "
                f"in phase: {free.free_space(lo, hi):#x} bytes",
            )

        def record(
            tag: str,
            kind: PlacedRangeKind,
            ranges: tuple[MemoryRange, ...],
            alignment: int,
            position: tuple[int, int],
            region: tuple[int, int],
        ) -> None:
            if trace is not None:
                size = sum(r.size for r in ranges)
                trace.append(
                    PlacementRecord(
                        len(trace),
                        tag,
                        kind,
                        ranges,
                        size,
                        alignment,
                        position[0],
                        position[1],
                        MemoryRange(*region),
                    )
                )

        def place_single(
            request: _Request,
            kind: PlacedRangeKind,
            start: int | None,
            region: tuple[int, int],
            position: tuple[int, int],
        ) -> None:
            if start is None:
                raise exhausted(request, kind, *region)
            range_ = MemoryRange(start, start + request.size)
            assert isinstance(request.slot, RangeSlot)
            request.slot.range = range_
            take(request.tag, kind, range_)
            record(request.tag, kind, (range_,), request.alignment, position, region)

        def request_end(request: _Request) -> int:
            assert isinstance(request.slot, RangeSlot)
            return request.slot.range.end

        def by_alignment_then_size(requests: list[_Request]) -> list[_Request]:
            return sorted(requests, key=lambda r: (r.alignment, r.size), reverse=True)

        for kind, pinned_list in (
            (PlacedRangeKind.RESERVED, self._reserved),
            (PlacedRangeKind.FIXED, self._fixed),
        ):
            for index, (tag, range_) in enumerate(pinned_list):
                take(tag, kind, range_)
                record(
                    tag,
                    kind,
                    (range_,),
                    PAGE_SIZE,
                    (index + 1, len(pinned_list)),
                    (range_.start, range_.end),
                )

        # Free space only shrinks within a phase, so once a request of some (size,
        # alignment) is placed, no later request with the same key can fit on the far
        # side of it: the search resumes there. Sorting groups equal keys together, which
        # turns a long run of identical requests from quadratic into linear.
        # sorted(reverse=True) keeps equal keys in insertion order (stable).
        key, cursor = None, FOUR_GIB
        for index, request in enumerate(by_alignment_then_size(self._mmio32)):
            if (request.size, request.alignment) != key:
                key, cursor = (request.size, request.alignment), FOUR_GIB
            start = _highest_fit(free, request.size, request.alignment, 0, cursor)
            place_single(
                request,
                PlacedRangeKind.MMIO32,
                start,
                (0, FOUR_GIB),
                (index + 1, len(self._mmio32)),
            )
            cursor = request_end(request)

        for index, request in enumerate(self._ram):
            floor = ram_end
            extents = _lowest_splittable_fit(
                free, request.size, request.alignment, floor, MAX_ADDRESS
            )
            if extents is None:
                raise exhausted(request, PlacedRangeKind.RAM, floor, MAX_ADDRESS)
            assert isinstance(request.slot, RamSlot)
            request.slot.ranges = extents
            for extent in extents:
                take(request.tag, PlacedRangeKind.RAM, extent)
            record(
                request.tag,
                PlacedRangeKind.RAM,
                tuple(extents),
                request.alignment,
                (index + 1, len(self._ram)),
                (floor, MAX_ADDRESS),
            )

        floor = max(ram_end, FOUR_GIB)
        key, cursor = None, floor
        for index, request in enumerate(by_alignment_then_size(self._mmio64)):
            if (request.size, request.alignment) != key:
                key, cursor = (request.size, request.alignment), floor
            start = _lowest_fit(free, request.size, request.alignment, cursor, MAX_ADDRESS)
            place_single(
                request,
                PlacedRangeKind.MMIO64,
                start,
                (floor, MAX_ADDRESS),
                (index + 1, len(self._mmio64)),
            )
            cursor = request_end(request)

        for index, request in enumerate(self._post_mmio):
            floor = top
            start = _lowest_fit(free, request.size, request.alignment, floor, MAX_ADDRESS)
            place_single(
                request,
                PlacedRangeKind.POST_MMIO,
                start,
                (floor, MAX_ADDRESS),
                (index + 1, len(self._post_mmio)),
            )

        placed.sort(key=lambda p: (p.range.start, p.range.end))
        while placed and placed[-1].kind is PlacedRangeKind.RESERVED:
            placed.pop()
        return placed
