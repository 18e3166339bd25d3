"""The resolved `MemoryLayout` (spec 01 §10) and the explicit `ChipsetMmioRanges` value.

`ChipsetMmioRanges` exists so that no consumer has to guess which entry of an MMIO
list is which window; the MMIO list is kept only because the reference reports it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import pairwise

from vmlayout.errors import VmLayoutError
from vmlayout.ranges import EMPTY, FOUR_GIB, MAX_ADDRESS, PAGE_SIZE, MemoryRange, subtract_ranges


@dataclass(frozen=True, slots=True, order=True)
class MemoryRangeWithNode:
    range: MemoryRange
    vnode: int

    def __str__(self) -> str:
        return f"{self.range}({self.vnode})"


@dataclass(frozen=True, slots=True)
class ChipsetMmioRanges:
    """The chipset windows every firmware view describes.

    `low` always ends at 4 GiB; `high` is empty (but keeps its start, normally 4 GiB)
    when there is no high window; `vtl2` is `EMPTY` without a VTL2 window. Test for
    absence with `is_empty()`, never by comparing with `EMPTY`.
    """

    low: MemoryRange
    high: MemoryRange
    vtl2: MemoryRange = EMPTY


class AddressType(Enum):
    RAM = "ram"
    MMIO = "mmio"
    PCI_ECAM = "pci_ecam"
    PCI_MMIO = "pci_mmio"


def _range_key(r: MemoryRange) -> tuple[int, int]:
    return (r.start, r.end)


def _bad_ranges(what: str) -> VmLayoutError:
    return VmLayoutError("invalid_layout", f"invalid memory or MMIO ranges: {what}")


def validate_ranges(ranges: Sequence[MemoryRange], what: str) -> None:
    """Non-empty, sorted and disjoint (touching is fine)."""
    for item in ranges:
        if item.is_empty():
            raise _bad_ranges(f"{what}: empty range {item}")
    for first, second in pairwise(ranges):
        # first.end > second.start covers both "unsorted" and "overlapping" for
        # non-empty ranges; plain int compares keep the resolver fast.
        if first.end > second.start:
            raise _bad_ranges(f"{what}: {first} and {second} are unsorted or overlap")


@dataclass(frozen=True, slots=True)
class MemoryLayout:
    """Immutable; construct through the `new*` / `from_*` functions, which validate."""

    ram: tuple[MemoryRangeWithNode, ...]
    mmio: tuple[MemoryRange, ...]
    pci_ecam: tuple[MemoryRange, ...] = ()
    pci_mmio: tuple[MemoryRange, ...] = ()
    vtl2_range: MemoryRange | None = None

    @property
    def ram_size(self) -> int:
        return sum(r.range.size for r in self.ram)

    @property
    def end_of_ram(self) -> int:
        return self.ram[-1].range.end

    @property
    def end_of_layout(self) -> int:
        """Excludes the VTL2 range, as the reference does."""
        mmio_end = max((m.end for m in self.mmio if not m.is_empty()), default=0)
        ecam_end = self.pci_ecam[-1].end if self.pci_ecam else 0
        pci_end = self.pci_mmio[-1].end if self.pci_mmio else 0
        return max(mmio_end, self.end_of_ram, ecam_end, pci_end)

    def max_ram_below_4gb(self) -> int | None:
        """End of the last RAM range ending strictly below 4 GiB (reference quirk: `<`)."""
        for item in reversed(self.ram):
            if item.range.end < FOUR_GIB:
                return item.range.end
        return None

    def probe_address(self, address: int) -> AddressType | None:
        for item in self.ram:
            if item.range.contains_addr(address):
                return AddressType.RAM
        for kind, ranges in (
            (AddressType.MMIO, self.mmio),
            (AddressType.PCI_ECAM, self.pci_ecam),
            (AddressType.PCI_MMIO, self.pci_mmio),
        ):
            if any(r.contains_addr(address) for r in ranges):
                return kind
        return None


def _build(
    ram: Sequence[MemoryRangeWithNode],
    mmio: Sequence[MemoryRange],
    pci_ecam: Sequence[MemoryRange],
    pci_mmio: Sequence[MemoryRange],
    vtl2_range: MemoryRange | None,
) -> MemoryLayout:
    everything = [r.range for r in ram] + list(mmio)
    if vtl2_range is not None:
        everything.append(vtl2_range)
    everything += list(pci_ecam) + list(pci_mmio)
    validate_ranges(sorted((r for r in everything if r.start != r.end), key=_range_key), "layout")
    if not ram:
        raise _bad_ranges("no RAM")
    end_of_ram = ram[-1].range.end
    if vtl2_range is not None and vtl2_range.start < end_of_ram:
        raise VmLayoutError(
            "invalid_layout",
            f"vtl2 range is below end of ram: {vtl2_range} starts below {end_of_ram:#x}",
        )
    return MemoryLayout(tuple(ram), tuple(mmio), tuple(pci_ecam), tuple(pci_mmio), vtl2_range)


def new_with_numa(
    numa_mem_sizes: Sequence[int],
    mmio_gaps: Sequence[MemoryRange],
    pci_ecam_gaps: Sequence[MemoryRange] = (),
    pci_mmio_gaps: Sequence[MemoryRange] = (),
    vtl2_range: MemoryRange | None = None,
) -> MemoryLayout:
    """Legacy constructor: lay RAM around the given gaps, node after node, unaligned."""
    if not numa_mem_sizes:
        raise VmLayoutError("invalid_layout", "empty NUMA memory sizes")
    for index, size in enumerate(numa_mem_sizes):
        if size == 0 or size % PAGE_SIZE:
            raise VmLayoutError(
                "invalid_layout", f"invalid NUMA node memory size: node {index} size {size:#x}"
            )
    total = sum(numa_mem_sizes)
    if total >= 1 << 64:
        raise VmLayoutError("invalid_layout", "invalid memory size: total overflows u64")
    validate_ranges(mmio_gaps, "mmio gaps")
    validate_ranges(pci_ecam_gaps, "pci ecam gaps")
    validate_ranges(pci_mmio_gaps, "pci mmio gaps")
    combined = sorted([*mmio_gaps, *pci_ecam_gaps, *pci_mmio_gaps])
    validate_ranges(combined, "gaps")
    ram: list[MemoryRangeWithNode] = []
    remaining = total
    node = 0
    node_remaining = numa_mem_sizes[0]
    for available in subtract_ranges([MemoryRange(0, MAX_ADDRESS)], combined):
        chunk = min(remaining, available.size)
        offset = 0
        while offset < chunk:
            if node_remaining == 0:
                node += 1
                node_remaining = numa_mem_sizes[node]
            piece = min(chunk - offset, node_remaining)
            start = available.start + offset
            ram.append(MemoryRangeWithNode(MemoryRange(start, start + piece), node))
            offset += piece
            node_remaining -= piece
        remaining -= chunk
        if remaining == 0:
            break
    return _build(ram, mmio_gaps, pci_ecam_gaps, pci_mmio_gaps, vtl2_range)


def new(
    ram_size: int,
    mmio_gaps: Sequence[MemoryRange],
    pci_ecam_gaps: Sequence[MemoryRange] = (),
    pci_mmio_gaps: Sequence[MemoryRange] = (),
    vtl2_range: MemoryRange | None = None,
) -> MemoryLayout:
    if ram_size == 0 or ram_size % PAGE_SIZE:
        raise VmLayoutError("invalid_layout", f"invalid memory size {ram_size:#x}")
    return new_with_numa([ram_size], mmio_gaps, pci_ecam_gaps, pci_mmio_gaps, vtl2_range)


def from_ranges(memory: Sequence[MemoryRangeWithNode], gaps: Sequence[MemoryRange]) -> MemoryLayout:
    validate_ranges([m.range for m in memory], "ram")
    validate_ranges(gaps, "mmio gaps")
    return _build(memory, gaps, [], [], None)


def from_resolved_ranges(
    ram: Sequence[MemoryRangeWithNode],
    mmio_gaps: Sequence[MemoryRange],
    pci_ecam_gaps: Sequence[MemoryRange],
    pci_mmio_gaps: Sequence[MemoryRange],
    vtl2_range: MemoryRange | None,
) -> MemoryLayout:
    """The resolver's constructor: empty MMIO placeholders are kept in position."""
    validate_ranges([m.range for m in ram], "ram")
    validate_ranges([m for m in mmio_gaps if not m.is_empty()], "mmio gaps")
    validate_ranges(pci_ecam_gaps, "pci ecam gaps")
    validate_ranges(pci_mmio_gaps, "pci mmio gaps")
    return _build(ram, mmio_gaps, pci_ecam_gaps, pci_mmio_gaps, vtl2_range)


def ranges_of(items: Iterable[MemoryRangeWithNode]) -> list[MemoryRange]:
    return [item.range for item in items]
