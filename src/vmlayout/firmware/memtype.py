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
from vmlayout.ranges import MAX_ADDRESS, PAGE_SIZE, MemoryRange, subtract_ranges

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
    """The aligned blocks [start, end) a pair matches under the AND rule."""
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
    blocks: list[tuple[int, int, int]] = []
    for base, mask in state.variable:
        if mask & MTRR_VALID:
            blocks += [(s, e, base & 0xFF) for s, e in _mask_blocks(base, mask, width)]
    points = {variable_start, space}
    for s, e, _ in blocks:
        points.update(p for p in (s, e) if variable_start < p < space)
    ordered = sorted(points)
    for start, end in itertools.pairwise(ordered):
        types = {t for s, e, t in blocks if s <= start and end <= e}
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
        from vmlayout.ranges import format_address, format_size

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


def _target(resolved: Any, width: int) -> tuple[MemoryRange, ...]:
    """RAM above 1 MiB (below it the fixed-range MTRRs decide)."""
    space = 1 << width
    out = []
    for r in resolved.memory_layout.ram:
        start, end = max(r.range.start, ONE_MIB), min(r.range.end, space)
        if start < end:
            out.append(MemoryRange(start, end))
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


def exact_variable_mtrrs(
    resolved: Any, count: int = 8, approximate: bool = False
) -> list[MsrWrite]:
    """Fewest power-of-two aligned WB/UC pairs making RAM WB and everything else UC.

    Aligned blocks nest or are disjoint, so any register set is a laminar family and
    a dynamic programme over the binary block tree is exact: a block is either left to
    its children, or covered by one WB register (then children only need UC holes;
    UC wins). Below 1 MiB is "don't care" because the fixed-range MTRRs take over.
    With `approximate`, a register budget too small for the exact set yields the set
    covering the most RAM without ever making non-RAM WB.
    """
    width = clamp_width(resolved.config.physical_address_size)
    target = _target(resolved, width)
    if target and target[-1].end > 1 << width:
        raise VmLayoutError("mtrr_unrepresentable", "RAM lies beyond MAXPHYADDR")

    def classify(start: int, end: int) -> tuple[int, int]:
        return _wb_uc_bytes(target, start, end)

    Plan = tuple[int, tuple[tuple[int, int, int], ...]]  # (cost, ((start, size, type), ...))

    @cache
    def best(start: int, size: int, covered: bool) -> Plan:
        wb, uc = classify(start, start + size)
        if covered and uc == 0:
            return 0, ()
        if not covered and wb == 0:
            return 0, ()
        if covered and wb == 0:
            return 1, ((start, size, UC),)
        if not covered and uc == 0:
            return 1, ((start, size, WB),)
        half = size // 2
        if half < PAGE_SIZE:  # cannot happen for page-aligned layouts
            raise VmLayoutError("mtrr_unrepresentable", f"{start:#x}: below page granularity")
        lc, lp = best(start, half, covered)
        rc, rp = best(start + half, half, covered)
        options = [(lc + rc, lp + rp)]
        if not covered:
            lc2, lp2 = best(start, half, True)
            rc2, rp2 = best(start + half, half, True)
            options.append((1 + lc2 + rc2, ((start, size, WB), *lp2, *rp2)))
        return min(options, key=lambda o: o[0])

    cost, plan = best(0, 1 << width, False)
    best.cache_clear()
    if cost > count:
        if not approximate:
            raise VmLayoutError(
                "mtrr_budget_exceeded",
                f"an exact MTRR set for this layout needs {cost} variable registers, "
                f"only {count} available (raise --mtrr-count, or ask for --mtrr-approximate)",
            )
        plan = _approximate(target, width, count)
    mask_bits = (1 << width) - 1
    out: list[MsrWrite] = []
    for n, (start, size, kind) in enumerate(sorted(plan, key=lambda p: (p[2] == UC, p[0]))):
        out += [
            MsrWrite(physbase_msr(n), start | kind),
            MsrWrite(physmask_msr(n), (mask_bits & ~(size - 1)) | MTRR_VALID),
        ]
    return out


def _approximate(
    target: tuple[MemoryRange, ...], width: int, count: int
) -> tuple[tuple[int, int, int], ...]:
    """Most WB RAM bytes with at most `count` registers, never WB outside RAM: a
    budgeted version of the tree programme (UC registers are not worth a slot here —
    a WB block may only cover RAM or below-1-MiB space)."""

    def wb_uc(start: int, end: int) -> tuple[int, int]:
        return _wb_uc_bytes(target, start, end)

    Result = list[tuple[int, tuple[tuple[int, int, int], ...]]]  # index = registers used

    @cache
    def gain(start: int, size: int) -> tuple[tuple[int, tuple[tuple[int, int, int], ...]], ...]:
        wb, uc = wb_uc(start, start + size)
        table: Result = [(0, ())] * (count + 1)
        if wb == 0:
            return tuple(table)
        if uc == 0:
            return tuple([(0, ())] + [(wb, ((start, size, WB),))] * count)
        if size // 2 < PAGE_SIZE:
            return tuple(table)
        left = gain(start, size // 2)
        right = gain(start + size // 2, size // 2)
        for budget in range(count + 1):
            for k in range(budget + 1):
                value = left[k][0] + right[budget - k][0]
                if value > table[budget][0]:
                    table[budget] = (value, left[k][1] + right[budget - k][1])
        return tuple(table)

    result = gain(0, 1 << width)[count][1]
    gain.cache_clear()
    return result


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
