"""Effective memory types from an MTRR state (Intel SDM rules, spec 03 §4) and an MTRR
policy that is exact by construction.

The reference programs variable MTRRs whose bases are not aligned to their masks, so
what they really cover follows the hardware AND rule, not the intent in the comments.
The analyzer evaluates that rule on whole intervals — each valid pair matches a union
of aligned blocks — and reports the true type of every byte, so a layout can be checked
("all RAM WB, all MMIO UC") instead of trusted.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import Any

from vmlayout.errors import VmLayoutError
from vmlayout.firmware.mtrr import (
    IA32_MTRR_DEF_TYPE,
    MTRR_VALID,
    MsrWrite,
    clamp_width,
    compute_variable_mtrrs,
    physbase_msr,
    physmask_msr,
)
from vmlayout.ranges import (
    MAX_ADDRESS,
    MemoryRange,
    format_address,
    format_size,
    readable_size,
    subtract_ranges,
)

UC, WC, WT, WP, WB = 0x00, 0x01, 0x04, 0x05, 0x06
TYPE_NAMES = {UC: "UC", WC: "WC", WT: "WT", WP: "WP", WB: "WB"}
UNDEFINED = "undefined"
ONE_MIB = 0x100000
ALL_WB = 0x0606_0606_0606_0606
LEGACY_AREA = MemoryRange(0xA0000, ONE_MIB)

#: Fixed-range MTRRs: (MSR, first address, bytes per sub-range), spec 03 §3.1.
FIXED_RANGES = (
    (0x250, 0x00000, 0x10000),
    (0x258, 0x80000, 0x4000),
    (0x259, 0xA0000, 0x4000),
    *((0x268 + i, 0xC0000 + i * 0x8000, 0x1000) for i in range(8)),
)
FIXED_MSRS = tuple(msr for msr, _, _ in FIXED_RANGES)
MAX_MASK_BLOCKS = 1 << 12


class Loader(Enum):
    LINUX = "linux"
    UEFI = "uefi"
    PCAT = "pcat"


#: Fixed MTRRs each loader writes as all-WB (spec 03 §3.3); others stay 0 (UC).
LOADER_FIXED_WB = {
    Loader.LINUX: (0x250, 0x258),
    Loader.UEFI: (0x250, 0x258),
    Loader.PCAT: (0x250, 0x258, 0x26C, 0x26D, 0x26E, 0x26F),
}
DEF_TYPE_VALUE = 0xC00  # E=1, FE=1, default UC


def type_name(value: int | str) -> str:
    if isinstance(value, str):
        return value
    return TYPE_NAMES.get(value, f"reserved({value:#x})")


@dataclass(frozen=True, slots=True)
class MtrrState:
    """DEF_TYPE, the fixed-range MTRRs (MSR -> value) and the variable (base, mask) pairs."""

    def_type: int
    fixed: tuple[tuple[int, int], ...]
    variable: tuple[tuple[int, int], ...]

    @staticmethod
    def from_msrs(writes: list[MsrWrite] | tuple[MsrWrite, ...]) -> MtrrState:
        values = {w.msr: w.value for w in writes}
        def_type = values.get(IA32_MTRR_DEF_TYPE, 0)
        fixed = tuple((msr, values.get(msr, 0)) for msr in FIXED_MSRS)
        variable = []
        n = 0
        while physbase_msr(n) in values or physmask_msr(n) in values:
            variable.append((values.get(physbase_msr(n), 0), values.get(physmask_msr(n), 0)))
            n += 1
        return MtrrState(def_type, fixed, tuple(variable))

    def to_msrs(self) -> tuple[MsrWrite, ...]:
        out = [MsrWrite(IA32_MTRR_DEF_TYPE, self.def_type)]
        out += [MsrWrite(msr, value) for msr, value in self.fixed]
        for n, (base, mask) in enumerate(self.variable):
            out += [MsrWrite(physbase_msr(n), base), MsrWrite(physmask_msr(n), mask)]
        return tuple(out)


def loader_state(loader: Loader, variable: list[MsrWrite]) -> MtrrState:
    """The complete initial MTRR state a loader programs, given its variable pairs."""
    fixed_wb = LOADER_FIXED_WB[loader]
    return MtrrState.from_msrs(
        [
            MsrWrite(IA32_MTRR_DEF_TYPE, DEF_TYPE_VALUE),
            *(MsrWrite(msr, ALL_WB if msr in fixed_wb else 0) for msr in FIXED_MSRS),
            *variable,
        ]
    )


def _mask_blocks(base: int, mask: int, width: int) -> list[tuple[int, int]]:
    """The aligned blocks [start, end) a pair matches under the AND rule.

    A mask whose set bits run contiguously up to MAXPHYADDR matches one block. The AND
    rule also gives meaning to masks with clear bits in between (the SDM only discourages
    them): each such hole doubles the number of matched blocks, so they are enumerated,
    up to MAX_MASK_BLOCKS; beyond that an interval list would itself be unreasonably
    large and the pair is rejected (`effective_type` still evaluates it per address).
    """
    space = 1 << width
    m = mask & (space - 1) & ~0xFFF
    if m == 0:
        return [(0, space)]
    low_zero = (m & -m).bit_length() - 1  # bits below the lowest mask bit are free
    holes = [b for b in range(low_zero, width) if not m >> b & 1]
    if len(holes) > MAX_MASK_BLOCKS.bit_length() - 1:
        raise VmLayoutError(
            "unsupported_mtrr",
            f"mask {mask:#x} matches more than {MAX_MASK_BLOCKS} separate blocks",
        )
    fixed_bits = base & m
    size = 1 << low_zero
    blocks = []
    for combo in range(1 << len(holes)):
        start = fixed_bits
        for i, bit in enumerate(holes):
            if combo >> i & 1:
                start |= 1 << bit
        blocks.append((start, start + size))
    return sorted(blocks)


@dataclass(frozen=True, slots=True)
class TypedInterval:
    range: MemoryRange
    type: int | str  # a memory type value, or UNDEFINED

    @property
    def name(self) -> str:
        return type_name(self.type)


def _combine(types: set[int]) -> int | str:
    if len(types) == 1:
        return next(iter(types))
    if UC in types:
        return UC
    if types == {WT, WB}:
        return WT
    return UNDEFINED


def effective_intervals(state: MtrrState, physical_address_width: int) -> list[TypedInterval]:
    """Every byte of [0, 2^width) with its MTRR type, adjacent equal types merged."""
    width = clamp_width(physical_address_width)
    space = 1 << width
    default = state.def_type & 0xFF
    enabled = bool(state.def_type & 0x800)
    fixed_enabled = enabled and bool(state.def_type & 0x400)
    pieces: list[tuple[int, int, int | str]] = []
    if not enabled:
        return [TypedInterval(MemoryRange(0, space), UC)]
    variable_start = 0
    if fixed_enabled:
        fixed = dict(state.fixed)
        for msr, first, step in FIXED_RANGES:
            value = fixed.get(msr, 0)
            for i in range(8):
                start = first + i * step
                pieces.append((start, start + step, value >> (8 * i) & 0xFF))
        variable_start = ONE_MIB
    # Sweep the block boundaries, keeping a count of live blocks per type: linear in the
    # number of blocks instead of testing every block against every interval.
    deltas: dict[int, dict[int, int]] = {}
    for base, mask in state.variable:
        if not mask & MTRR_VALID:
            continue
        for s, e in _mask_blocks(base, mask, width):
            s, e = max(s, variable_start), min(e, space)
            if s < e:
                for point, step in ((s, 1), (e, -1)):
                    per_type = deltas.setdefault(point, {})
                    per_type[base & 0xFF] = per_type.get(base & 0xFF, 0) + step
    live: dict[int, int] = {}
    for start, end in itertools.pairwise(sorted({variable_start, space, *deltas})):
        for mtype, step in deltas.get(start, {}).items():
            live[mtype] = live.get(mtype, 0) + step
        types = {mtype for mtype, n in live.items() if n > 0}
        pieces.append((start, end, _combine(types) if types else default))
    merged: list[TypedInterval] = []
    for start, end, kind in sorted(pieces, key=lambda p: p[0]):
        if merged and merged[-1].type == kind and merged[-1].range.end == start:
            merged[-1] = TypedInterval(MemoryRange(merged[-1].range.start, end), kind)
        else:
            merged.append(TypedInterval(MemoryRange(start, end), kind))
    return merged


def effective_type(state: MtrrState, address: int, physical_address_width: int) -> int | str:
    """The SDM type of one address (reference rules of spec 03 §4.1)."""
    width = clamp_width(physical_address_width)
    if not state.def_type & 0x800:
        return UC
    if state.def_type & 0x400 and address < ONE_MIB:
        for msr, first, step in FIXED_RANGES:
            if first <= address < first + 8 * step:
                return dict(state.fixed).get(msr, 0) >> (8 * ((address - first) // step)) & 0xFF
    space_mask = (1 << width) - 1
    types = set()
    for base, mask in state.variable:
        m = mask & space_mask & ~0xFFF
        if mask & MTRR_VALID and address & m == base & m:
            types.add(base & 0xFF)
    return _combine(types) if types else state.def_type & 0xFF


# --- checking a layout ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expectation:
    name: str
    range: MemoryRange
    type: int


@dataclass(frozen=True, slots=True)
class Violation:
    name: str
    range: MemoryRange
    expected: int
    actual: int | str

    def describe(self) -> str:
        return (
            f"{self.name}: [{format_address(self.range.start)}, "
            f"{format_address(self.range.end)}) ({format_size(self.range.size)}) is "
            f"{type_name(self.actual)}, expected {type_name(self.expected)}"
        )


def layout_expectations(resolved: Any) -> list[Expectation]:
    """RAM must be WB; every MMIO range the layout places must be UC.

    The legacy VGA/option-ROM area [0xA0000, 1 MiB) inside RAM is exempt: every loader
    makes it UC with the fixed-range MTRRs on purpose.
    """
    out = [
        Expectation(f"RAM node {r.vnode}", piece, WB)
        for r in resolved.memory_layout.ram
        for piece in subtract_ranges([r.range], [LEGACY_AREA])
    ]
    chipset = resolved.chipset
    mmio = [
        ("chipset low", chipset.low),
        ("chipset high", chipset.high),
        ("chipset vtl2", chipset.vtl2),
    ]
    for rc in resolved.pcie_root_complexes:
        mmio += [
            (f"{rc.name} ECAM", rc.ecam),
            (f"{rc.name} low MMIO", rc.low_mmio),
            (f"{rc.name} high MMIO", rc.high_mmio),
            (f"{rc.name} CXL HDM", rc.cxl_hdm),
            (f"{rc.name} CXL CHBCR", rc.cxl_chbcr),
        ]
    mmio.append(("virtio-mmio", resolved.virtio_mmio))
    mmio += [(f"IOMMU {i}", r) for i, r in enumerate(resolved.iommu_ranges)]
    out += [Expectation(name, r, UC) for name, r in mmio if not r.is_empty()]
    return out


def check_layout(
    intervals: list[TypedInterval], expectations: list[Expectation]
) -> list[Violation]:
    """Every piece of an expected range whose effective type differs, in address order."""
    found = []
    for exp in expectations:
        for iv in intervals:
            piece = iv.range.intersection(exp.range)
            if piece.is_empty() or iv.type == exp.type:
                continue
            found.append(Violation(exp.name, piece, exp.type, iv.type))
        space_end = intervals[-1].range.end if intervals else 0
        if exp.range.end > space_end:
            outside = MemoryRange(max(exp.range.start, space_end), exp.range.end)
            found.append(Violation(exp.name, outside, exp.type, "beyond MAXPHYADDR"))
    return sorted(found, key=lambda v: (v.range.start, v.name))


# --- the exact policy -----------------------------------------------------------------


Block = tuple[int, int, int]  # (start, size, memory type) of one variable pair


def _target(ram: Sequence[MemoryRange], width: int) -> tuple[MemoryRange, ...]:
    """RAM above 1 MiB (below it the fixed-range MTRRs decide)."""
    out = []
    for r in ram:
        if r.end > 1 << width:
            raise VmLayoutError(
                "mtrr_unrepresentable",
                f"RAM [{r.start:#x}, {r.end:#x}) lies beyond MAXPHYADDR ({width} bits)",
            )
        if r.end > ONE_MIB:
            out.append(MemoryRange(max(r.start, ONE_MIB), r.end))
    return tuple(sorted(out))


def _wb_uc_bytes(target: tuple[MemoryRange, ...], start: int, end: int) -> tuple[int, int]:
    """(bytes that must be WB, bytes that must be UC) in [start, end); below 1 MiB is
    "don't care". `target` is sorted and disjoint."""
    start_c = max(start, ONE_MIB)
    if start_c >= end:
        return 0, 0
    wb = 0
    i = max(bisect.bisect_right(target, MemoryRange(start_c, MAX_ADDRESS)) - 1, 0)
    while i < len(target) and target[i].start < end:
        wb += max(0, min(end, target[i].end) - max(start_c, target[i].start))
        i += 1
    return wb, (end - start_c) - wb


def _fewest_blocks(target: tuple[MemoryRange, ...], width: int) -> tuple[Block, ...]:
    """The smallest exact register set.

    Aligned blocks nest or are disjoint, so any register set is a laminar family and a
    programme over the binary block tree is exact: a block is either left to its
    children, or covered by one WB register (then its children only need UC holes,
    since UC wins). This is the "sum of aligned blocks" versus "larger WB block minus UC
    holes" choice, made optimally at every level.
    """

    @cache
    def best(start: int, size: int, covered: bool) -> tuple[int, tuple[Block, ...]]:
        wb, uc = _wb_uc_bytes(target, start, start + size)
        if (covered and uc == 0) or (not covered and wb == 0):
            return 0, ()
        if covered and wb == 0:
            return 1, ((start, size, UC),)
        if not covered and uc == 0:
            return 1, ((start, size, WB),)
        half = size // 2  # mixed blocks are at least two pages: the layout is page-aligned
        lc, lp = best(start, half, covered)
        rc, rp = best(start + half, half, covered)
        options = [(lc + rc, lp + rp)]
        if not covered:
            lc2, lp2 = best(start, half, True)
            rc2, rp2 = best(start + half, half, True)
            options.append((1 + lc2 + rc2, ((start, size, WB), *lp2, *rp2)))
        return min(options, key=lambda o: o[0])

    plan = best(0, 1 << width, False)[1]
    best.cache_clear()
    return plan


@dataclass(frozen=True, slots=True)
class _Joined:
    """Two plans one after the other, joined without copying either (a plan is built
    by joining sibling plans at every level of the block tree; copying would make that
    quadratic in the number of registers)."""

    first: Plan
    second: Plan


#: A set of blocks: None (empty), one block, or two plans joined.
Plan = Block | _Joined | None
#: One budget's best: (WB RAM bytes, blocks), or None where no acceptable set exists.
Entry = tuple[int, Plan] | None
#: A budget table: entry b is the best using at most b registers. Tables are cut after
#: the first budget from which every entry is the same; entries past the end equal the
#: last one (a subtree needing s registers gains nothing from more), so a table is as
#: long as its subtree needs, not as long as the register count.
Table = tuple[Entry, ...]


def _join(first: Plan, second: Plan) -> Plan:
    if first is None:
        return second
    return first if second is None else _Joined(first, second)


def _blocks(plan: Plan) -> tuple[Block, ...]:
    """A plan's blocks in order (iteratively: plans nest as deep as the block tree)."""
    out: list[Block] = []
    stack = [plan]
    while stack:
        item = stack.pop()
        if isinstance(item, _Joined):
            stack += (item.second, item.first)
        elif item is not None:
            out.append(item)
    return tuple(out)


def _at(table: Table, budget: int) -> Entry:
    return table[min(budget, len(table) - 1)]


def _value(entry: Entry) -> int:
    return -1 if entry is None else entry[0]


def _first_equal(table: Table) -> list[int]:
    """Per budget, the smallest budget with the same value (values never fall as the
    budget grows, so that is the first budget reaching it)."""
    first = [0] * len(table)
    for budget in range(1, len(table)):
        same = _value(table[budget]) == _value(table[budget - 1])
        first[budget] = first[budget - 1] if same else budget
    return first


def _merge(left: Table, right: Table, count: int) -> list[Entry]:
    """Best split of each budget between two sibling blocks: for each budget, the first
    split (fewest registers to the left) with the most WB bytes.

    Only splits that can still win are tried. Giving the left more than it can use
    never gains (its entry stops changing, the right's can only lose); giving the right
    more than it can use leaves the right's entry fixed, so among those splits the
    first one reaching the left's best value wins, which `_first_equal` knows. So a
    budget costs at most the shorter table's length, not the budget."""
    last_left, last_right = len(left) - 1, len(right) - 1
    first_left = _first_equal(left)
    out: list[Entry] = []
    for budget in range(min(count, last_left + last_right) + 1):
        best: Entry = None
        low = budget - last_right  # from here down, the right gets its full table
        rest = 0
        if low >= 0:
            a, b = left[first_left[min(low, last_left)]], right[last_right]
            if a is not None and b is not None:
                best = (a[0] + b[0], _join(a[1], b[1]))
            rest = min(low, last_left) + 1
        for k in range(rest, min(budget, last_left) + 1):
            a, b = left[k], right[budget - k]
            if a is not None and b is not None and (best is None or a[0] + b[0] > best[0]):
                best = (a[0] + b[0], _join(a[1], b[1]))
        out.append(best)
    return out


def _most_wb_ram(target: tuple[MemoryRange, ...], width: int, count: int) -> tuple[Block, ...]:
    """At most `count` registers making the most RAM WB while every non-RAM byte above
    1 MiB stays UC: the same block tree with a register budget per subtree. Under a WB
    block every non-RAM byte must get a UC hole, so a covered subtree without enough
    registers for its holes is infeasible (None) rather than lossy.

    Tables are as long as their subtree needs (see `Table`) and merged trying only the
    splits that can win (`_merge`), so the work is about (mixed blocks) x (registers a
    subtree needs) rather than (mixed blocks) x count squared."""

    @cache
    def free(start: int, size: int) -> Table:
        wb, uc = _wb_uc_bytes(target, start, start + size)
        if wb == 0:
            return ((0, None),)
        if uc == 0:
            return ((0, None), (wb, (start, size, WB)))[: count + 1]
        half = size // 2
        split = tuple(_merge(free(start, half), free(start + half, half), count))
        under = tuple(_merge(covered(start, half), covered(start + half, half), count))
        out: list[Entry] = []
        for budget in range(min(count, max(len(split) - 1, len(under))) + 1):
            current = _at(split, budget)
            option = _at(under, budget - 1) if budget else None
            if option is not None and (current is None or option[0] > current[0]):
                current = (option[0], _join((start, size, WB), option[1]))
            out.append(current)
        return tuple(out)

    @cache
    def covered(start: int, size: int) -> Table:
        wb, uc = _wb_uc_bytes(target, start, start + size)
        if uc == 0:
            return ((wb, None),)
        hole: Table = (None, (0, (start, size, UC)))[: count + 1]
        if wb == 0:
            return hole
        half = size // 2
        split = tuple(_merge(covered(start, half), covered(start + half, half), count))
        out: list[Entry] = []
        for budget in range(min(count, max(len(hole), len(split)) - 1) + 1):
            h, s = _at(hole, budget), _at(split, budget)
            out.append(h if s is None or (h is not None and h[0] > s[0]) else s)
        return tuple(out)

    result = _at(free(0, 1 << width), count)
    free.cache_clear()
    covered.cache_clear()
    assert result is not None  # zero registers (all UC) is always acceptable
    return _blocks(result[1])


#: `--mtrr-approximate` searches the block tree of layouts whose exact set needs at most
#: this many registers. The search costs about a third of a millisecond per register of
#: the exact set (a few seconds at the limit); real layouts need tens, and no CPU has
#: more than 255 variable MTRRs, so beyond this the approximation would leave most RAM
#: UC anyway.
MAX_APPROXIMATE_PLAN = 8192


def exact_variable_pairs(
    ram: Sequence[MemoryRange],
    physical_address_width: int,
    count: int = 8,
    approximate: bool = False,
) -> list[MsrWrite]:
    """Fewest power-of-two aligned WB/UC pairs making `ram` WB and everything else UC
    (default type UC; below 1 MiB is left to the fixed-range MTRRs).

    More registers than `count` is an error naming how many are needed, unless
    `approximate` asks for the set covering the most RAM that never makes non-RAM WB.
    """
    width = clamp_width(physical_address_width)
    target = _target(ram, width)
    plan = _fewest_blocks(target, width)
    if len(plan) > count:
        if not approximate:
            raise VmLayoutError(
                "mtrr_budget_exceeded",
                f"an exact MTRR set for this layout needs {len(plan)} variable registers, "
                f"only {count} available (raise --mtrr-count, or ask for --mtrr-approximate)",
            )
        if len(plan) > MAX_APPROXIMATE_PLAN:
            raise VmLayoutError(
                "mtrr_budget_exceeded",
                f"an exact MTRR set for this layout needs {len(plan)} variable registers; "
                f"--mtrr-approximate searches layouts needing at most {MAX_APPROXIMATE_PLAN}",
            )
        plan = _most_wb_ram(target, width, count)
    mask_bits = (1 << width) - 1
    out: list[MsrWrite] = []
    for n, (start, size, kind) in enumerate(sorted(plan, key=lambda p: (p[2] == UC, p[0]))):
        out += [
            MsrWrite(physbase_msr(n), start | kind),
            MsrWrite(physmask_msr(n), (mask_bits & ~(size - 1)) | MTRR_VALID),
        ]
    return out


def exact_variable_mtrrs(
    resolved: Any, count: int = 8, approximate: bool = False
) -> list[MsrWrite]:
    """`exact_variable_pairs` for a resolved layout's RAM and address width."""
    return exact_variable_pairs(
        [r.range for r in resolved.memory_layout.ram],
        resolved.config.physical_address_size,
        count,
        approximate,
    )


def reference_state(resolved: Any, loader: Loader) -> MtrrState:
    variable = compute_variable_mtrrs(
        resolved.memory_layout, resolved.config.physical_address_size, resolved.chipset
    )
    return loader_state(loader, variable)


def mtrr_state(
    resolved: Any,
    loader: Loader = Loader.UEFI,
    policy: str = "reference",
    count: int = 8,
    approximate: bool = False,
) -> MtrrState:
    """The complete initial MTRR state for a policy: the loader's DEF_TYPE and fixed
    MTRRs, then the variable pairs ("reference": as OpenVMM computes them)."""
    if resolved.arch.value != "x86_64":
        raise VmLayoutError("unsupported_arch", "arch: MTRRs exist only on x86_64")
    if policy == "reference":
        return reference_state(resolved, loader)
    if policy == "exact":
        return loader_state(loader, exact_variable_mtrrs(resolved, count, approximate))
    raise VmLayoutError("invalid_argument", f"--mtrr-policy: unknown policy {policy!r}")


# --- explaining a state ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VariablePair:
    """One PHYSBASE/PHYSMASK pair as the hardware reads it."""

    index: int
    base: int
    mask: int
    valid: bool
    type: int
    #: What the pair really covers under the AND rule, within the address width.
    covers: tuple[MemoryRange, ...]
    #: Base bits below the mask's lowest bit (ignored by the hardware): the base is not
    #: aligned to the block size the mask selects.
    ignored_base_bits: int
    #: The mask's bits are not one contiguous run up to MAXPHYADDR.
    discontiguous: bool

    @property
    def type_name(self) -> str:
        return type_name(self.type)

    def describe(self) -> str:
        if not self.valid:
            return f"pair {self.index}: disabled (PHYSMASK{self.index} V=0)"
        spans = ", ".join(
            f"[{format_address(r.start)}, {format_address(r.end)}) {readable_size(r.size)}"
            for r in self.covers[:4]
        )
        more = f" and {len(self.covers) - 4} more blocks" if len(self.covers) > 4 else ""
        return f"pair {self.index}: {self.type_name} {spans}{more}"


def decode_variable_pairs(state: MtrrState, physical_address_width: int) -> list[VariablePair]:
    """Every variable pair decoded to its type and covered ranges (the AND rule)."""
    width = clamp_width(physical_address_width)
    space = 1 << width
    out = []
    for index, (base, mask) in enumerate(state.variable):
        m = mask & (space - 1) & ~0xFFF
        low = (m & -m) if m else space
        ignored = base & (low - 1) & ~0xFFF & (space - 1)
        top_run = ((space - 1) & ~(low - 1)) & ~0xFFF
        try:
            blocks = tuple(
                MemoryRange(s, min(e, space)) for s, e in _mask_blocks(base, mask, width)
            )
        except VmLayoutError:
            blocks = ()
        out.append(
            VariablePair(
                index=index,
                base=base,
                mask=mask,
                valid=bool(mask & MTRR_VALID),
                type=base & 0xFF,
                covers=blocks,
                ignored_base_bits=ignored,
                discontiguous=bool(m) and m != top_run,
            )
        )
    return out


def lint_mtrr_state(state: MtrrState, physical_address_width: int) -> list[str]:
    """Findings a reader of raw MSR values would have to work out by hand: bases not
    aligned to their mask (the hardware ignores the low bits, so the pair covers more
    than its base suggests), masks with holes, reserved types, and addresses where
    overlapping pairs combine to a type the SDM leaves undefined."""
    findings = []
    for pair in decode_variable_pairs(state, physical_address_width):
        if not pair.valid:
            continue
        name = f"PHYSBASE{pair.index} {format_address(pair.base)}"
        if pair.ignored_base_bits:
            block = pair.covers[0] if pair.covers else None
            where = (
                f"; it covers [{format_address(block.start)}, {format_address(block.end)})"
                if block is not None
                else ""
            )
            findings.append(
                f"{name} is not aligned to PHYSMASK{pair.index} {format_address(pair.mask)}: "
                f"base bits {format_address(pair.ignored_base_bits)} are ignored{where}, "
                f"not a block starting at {format_address(pair.base & ~0xFFF)}"
            )
        if pair.discontiguous:
            findings.append(
                f"PHYSMASK{pair.index} {format_address(pair.mask)} is not contiguous: the pair "
                f"matches {len(pair.covers) or 'too many'} separate blocks"
            )
        if pair.type not in TYPE_NAMES:
            findings.append(f"{name}: memory type {pair.type:#x} is reserved")
    for interval in effective_intervals(state, physical_address_width):
        if interval.type == UNDEFINED:
            findings.append(
                f"[{format_address(interval.range.start)}, {format_address(interval.range.end)})"
                f" {readable_size(interval.range.size)}: overlapping pairs of types the SDM "
                "does not combine (only UC with anything, and WT with WB, are defined)"
            )
    return findings


def msr_name(msr: int) -> str:
    """The SDM's name of an MTRR MSR (`DEF_TYPE`, `FIX64K_00000`, `PHYSBASE0` ...)."""
    if msr == 0x2FF:
        return "DEF_TYPE"
    for fixed, first, step in FIXED_RANGES:
        if fixed == msr:
            return f"FIX{step // 1024}K_{first:05X}"
    n, is_mask = divmod(msr - 0x200, 2)
    return f"PHYS{'MASK' if is_mask else 'BASE'}{n}"
