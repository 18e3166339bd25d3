"""Step 2 of spec 06: bottom-up sizing, then top-down placement (spec 06 §4, §5, §8).

Each level (the root bus, or a bridge's secondary bus) sorts its demands by alignment,
largest first, and first-fits them into two pools measured from 0 (or from the lowest
pinned address rounded down to 1 MiB); a bridge then becomes one demand per pool at its
parent's level. Only the root's two pools are placed in the host bridge's windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

from vmlayout.errors import VmLayoutError
from vmlayout.pci.enumerate import ProbedBar, Scanned
from vmlayout.pci.model import (
    BRIDGE_WINDOW_ALIGN,
    MEM32,
    MEM64,
    U64_MAX,
    AssignmentParams,
    BarAssignment,
    BridgeWindows,
    Decision,
    VfBarAssignment,
)
from vmlayout.ranges import FOUR_GIB, MemoryRange, align_down


def align_up(value: int, alignment: int) -> int:
    """Unbounded (`ranges.align_up` returns None past 2**64): every caller compares the
    result with the end of a gap or window, which refuses an overflow."""
    return (value + alignment - 1) & ~(alignment - 1)


def bar_is_mem64(bar: ProbedBar) -> bool:
    """64-bit prefetchable; a pin below 4 GiB keeps even such a BAR in the 32-bit pool."""
    if bar.pinned is not None and bar.pinned < FOUR_GIB:
        return False
    return bar.is_64bit and bar.prefetchable


@dataclass(frozen=True, slots=True)
class Demand:
    """One thing to place at a level: a BAR, a VF BAR region or a bridge's window."""

    what: str  # "bar", "vf" or "window"
    owner: Scanned
    index: int  # BAR / VF BAR register; unused for windows
    size: int
    alignment: int
    mem64: bool
    fixed: int | None  # a pinned BAR's or a constrained window's address
    child: Level | None = None


@dataclass(frozen=True, slots=True)
class Level:
    """A level's sizing: pool sizes/alignments, sorted demands and their pool offsets."""

    mem32: int
    mem64: int
    align32: int
    align64: int
    demands: tuple[Demand, ...]
    offsets: tuple[int, ...]
    base32: int | None
    base64: int | None


class _Pool:
    """Free space of one pool, measured from its base: bounded gaps between fixed demands,
    then an open-ended tail. A pool with fixed demands starts at the lowest one.

    The tail has no end (not 2**64): a level's sizing may exceed any address space (two
    2**63-byte BARs, a pin near the top), and it is the placement in the real windows
    (`pool_base`) that refuses such a pool as an MMIO exhaustion."""

    def __init__(self, fixed: list[tuple[int, int]]) -> None:
        self.align = BRIDGE_WINDOW_ALIGN
        self.gaps: list[tuple[int, int]] = []
        if not fixed:
            self.base: int | None = None
            self.tail = 0
            return
        fixed = sorted(fixed, key=lambda region: region[0])
        self.base = align_down(fixed[0][0], BRIDGE_WINDOW_ALIGN)
        cursor = self.base
        for address, size in fixed:
            if cursor < address:
                self.gaps.append((cursor, address))
            cursor = max(cursor, address + size)
        self.tail = cursor

    def take(self, size: int, alignment: int) -> int:
        """The lowest free address with that alignment and room for `size` (first fit)."""
        for i, (start, end) in enumerate(self.gaps):
            address = align_up(start, alignment)
            if address <= end and end - address >= size:
                pieces = [(start, address)] if start < address else []
                if address + size < end:
                    pieces.append((address + size, end))
                self.gaps[i : i + 1] = pieces
                return address
        address = align_up(self.tail, alignment)
        if self.tail < address:
            self.gaps.append((self.tail, address))
        self.tail = address + size
        return address


def level_layout(functions: tuple[Scanned, ...]) -> Level:
    demands: list[Demand] = []
    for f in functions:
        for bar in f.bars:
            demands.append(
                Demand("bar", f, bar.index, bar.size, bar.size, bar_is_mem64(bar), bar.pinned)
            )
        if f.sriov is not None:
            for vf in f.sriov.vf_bars:
                total = min(vf.size * f.sriov.total_vfs, U64_MAX)
                mem64 = vf.is_64bit and vf.prefetchable
                demands.append(Demand("vf", f, vf.index, total, vf.size, mem64, None))
        if f.is_bridge:
            child = level_layout(f.children)
            if child.mem32 > 0:
                size = align_up(child.mem32, BRIDGE_WINDOW_ALIGN)
                demands.append(
                    Demand("window", f, 0, size, child.align32, False, child.base32, child)
                )
            if child.mem64 > 0:
                size = align_up(child.mem64, BRIDGE_WINDOW_ALIGN)
                demands.append(
                    Demand("window", f, 1, size, child.align64, True, child.base64, child)
                )
    demands.sort(key=lambda d: -d.alignment)  # stable: ties keep collection order

    pools = {
        mem64: _Pool(
            [(d.fixed, d.size) for d in demands if d.fixed is not None and d.mem64 is mem64]
        )
        for mem64 in (False, True)
    }
    offsets = []
    for d in demands:
        pool = pools[d.mem64]
        pool.align = max(pool.align, d.alignment)
        address = d.fixed if d.fixed is not None else pool.take(d.size, d.alignment)
        offsets.append(address - (pool.base or 0))

    sizes = {False: 0, True: 0}
    for d, offset in zip(demands, offsets, strict=True):
        sizes[d.mem64] = max(sizes[d.mem64], offset + d.size)
    return Level(
        mem32=align_up(sizes[False], BRIDGE_WINDOW_ALIGN) if sizes[False] else 0,
        mem64=align_up(sizes[True], BRIDGE_WINDOW_ALIGN) if sizes[True] else 0,
        align32=pools[False].align,
        align64=pools[True].align,
        demands=tuple(demands),
        offsets=tuple(offsets),
        base32=pools[False].base,
        base64=pools[True].base,
    )


def mmio_exhaustion(
    required: int, alignment: int, aperture: MemoryRange, name: str
) -> VmLayoutError:
    return VmLayoutError(
        "mmio_exhaustion",
        f"{name} MMIO exhaustion: need {required:#x} bytes (alignment {alignment:#x}), "
        f"have {aperture.size:#x}",
    )


def pool_base(
    constrained: int | None,
    alignment: int,
    required: int,
    aperture: MemoryRange,
    name: str,
    after: int | None,
) -> int:
    """Where a root pool starts (spec 06 §5.6); `available` is the whole window's size."""
    if constrained is not None:
        base = constrained
    elif after is not None:
        base = align_up(after, alignment)
    else:
        base = align_up(aperture.start, alignment)
    if base < aperture.start or required > max(aperture.end - base, 0):
        raise mmio_exhaustion(required, alignment, aperture, name)
    return base


@dataclass(slots=True)
class Placement:
    """Final addresses, keyed by (bdf, register) and bdf; filled top-down."""

    bars: dict[tuple[str, int], tuple[int, Decision]]
    vf_bars: dict[tuple[str, int], tuple[int, Decision]]
    windows: dict[tuple[str, bool], tuple[tuple[int, int], Decision]]


def apply_offsets(level: Level, base: int, mem64: bool, name: str, out: Placement) -> None:
    for turn, (d, offset) in enumerate(zip(level.demands, level.offsets, strict=True), 1):
        if d.mem64 is not mem64:
            continue
        address = base + offset
        decision = Decision(
            MEM64 if mem64 else MEM32,
            d.alignment,
            name,
            turn,
            len(level.demands),
            d.fixed is not None,
        )
        if d.what == "bar":
            out.bars[(d.owner.bdf, d.index)] = (address, decision)
        elif d.what == "vf":
            out.vf_bars[(d.owner.bdf, d.index)] = (address, decision)
        else:
            assert d.child is not None
            out.windows[(d.owner.bdf, mem64)] = ((address, address + d.size - 1), decision)
            apply_offsets(d.child, address, mem64, d.owner.bdf, out)


def validate_pins(functions: tuple[Scanned, ...], params: AssignmentParams) -> None:
    """Pinned BARs are aligned, disjoint within a pool and inside their window (§8)."""
    pins: list[tuple[Scanned, ProbedBar]] = []

    def collect(level: tuple[Scanned, ...]) -> None:
        for f in level:
            pins.extend((f, bar) for bar in f.bars if bar.pinned is not None)
            collect(f.children)

    collect(functions)
    for f, bar in pins:
        assert bar.pinned is not None
        if bar.pinned % bar.size:
            raise VmLayoutError(
                "pinned_bar_misaligned",
                f"pinned BAR {f.bdf} index {bar.index} at {bar.pinned:#x} is not aligned "
                f"to {bar.size:#x}",
            )
    for mem64 in (False, True):
        pool = sorted(
            ((bar.pinned or 0, bar.size) for _, bar in pins if bar_is_mem64(bar) is mem64),
            key=lambda p: p[0],
        )
        for (a, a_size), (b, b_size) in pairwise(pool):
            a_end = min(a + a_size, U64_MAX)
            if a_end > b:
                raise VmLayoutError(
                    "pinned_bar_overlap",
                    f"pinned BAR regions overlap: {a:#x}..{a_end:#x} and "
                    f"{b:#x}..{min(b + b_size, U64_MAX):#x}",
                )
    for f, bar in pins:
        address = bar.pinned or 0
        if bar_is_mem64(bar) and not params.high_mmio.is_empty():
            aperture, name = params.high_mmio, "high_mmio"
        else:
            aperture, name = params.low_mmio, "low_mmio"
        if not (address >= aperture.start and min(address + bar.size, U64_MAX) <= aperture.end):
            raise VmLayoutError(
                "pinned_bar_out_of_aperture",
                f"pinned BAR {f.bdf} index {bar.index} at {address:#x}+{bar.size:#x} "
                f"outside {name} aperture",
            )


@dataclass(frozen=True, slots=True)
class RootPlacement:
    level: Level
    placement: Placement
    mem32_base: int | None
    mem64_base: int | None


def place(functions: tuple[Scanned, ...], params: AssignmentParams) -> RootPlacement:
    validate_pins(functions, params)
    root = level_layout(functions)
    out = Placement({}, {}, {})
    mem32_end = None
    base32 = base64 = None
    if root.mem32 > 0:
        base32 = pool_base(root.base32, root.align32, root.mem32, params.low_mmio, "low_mmio", None)
        apply_offsets(root, base32, False, "root", out)
        mem32_end = base32 + root.mem32
    if root.mem64 > 0:
        high_empty = params.high_mmio.is_empty()
        aperture = params.low_mmio if high_empty else params.high_mmio
        after = mem32_end if high_empty else None
        # The reference names the 64-bit pool `high_mmio` even when it fell back to low.
        base64 = pool_base(root.base64, root.align64, root.mem64, aperture, "high_mmio", after)
        apply_offsets(root, base64, True, "root", out)
    return RootPlacement(root, out, base32, base64)


def bar_rows(
    functions: tuple[Scanned, ...], placement: Placement
) -> tuple[list[BarAssignment], list[VfBarAssignment], list[BridgeWindows]]:
    """The DFS-ordered result lists (a bridge before its subtree)."""
    bars: list[BarAssignment] = []
    vfs: list[VfBarAssignment] = []
    windows: list[BridgeWindows] = []

    def walk(level: tuple[Scanned, ...]) -> None:
        for f in level:
            for bar in f.bars:
                address, decision = placement.bars[(f.bdf, bar.index)]
                bars.append(
                    BarAssignment(
                        f.bdf,
                        bar.index,
                        address,
                        bar.size,
                        bar.is_64bit,
                        bar.prefetchable,
                        decision,
                    )
                )
            if f.sriov is not None:
                for vf in f.sriov.vf_bars:
                    address, decision = placement.vf_bars[(f.bdf, vf.index)]
                    vfs.append(
                        VfBarAssignment(
                            f.bdf,
                            vf.index,
                            address,
                            vf.size,
                            f.sriov.total_vfs,
                            min(vf.size * f.sriov.total_vfs, U64_MAX),
                            vf.is_64bit,
                            vf.prefetchable,
                            decision,
                        )
                    )
            if f.is_bridge:
                mem = placement.windows.get((f.bdf, False))
                pref = placement.windows.get((f.bdf, True))
                windows.append(
                    BridgeWindows(
                        f.bdf,
                        None if mem is None else mem[0],
                        None if pref is None else pref[0],
                        None if mem is None else mem[1],
                        None if pref is None else pref[1],
                    )
                )
            walk(f.children)

    walk(functions)
    return bars, vfs, windows
