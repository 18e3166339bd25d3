"""Variable MTRRs exactly as the reference VMM computes them (spec 03 §2-§3).

The register values are reproduced bit for bit, including the reference's unaligned
bases whose real coverage is far wider than intended; judging that coverage is the
memory-type analyzer's job, not this module's.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from vmlayout.layout import ChipsetMmioRanges, MemoryLayout

MTRR_TYPE_WB = 0x6
MTRR_VALID = 0x800
PCAT_SIZE = 128 << 20
SPLIT = 1 << 43  # the reference's "magic 8 TB boundary" for old Linux kernels

IA32_MTRRCAP = 0x0FE
IA32_MTRR_PHYSBASE0 = 0x200
IA32_MTRR_DEF_TYPE = 0x2FF


class MtrrVariant(Enum):
    HEAD = "head"
    PR3550 = "pr3550"


@dataclass(frozen=True, slots=True)
class MsrWrite:
    msr: int
    value: int


def physbase_msr(n: int) -> int:
    return IA32_MTRR_PHYSBASE0 + 2 * n


def physmask_msr(n: int) -> int:
    return IA32_MTRR_PHYSBASE0 + 2 * n + 1


def clamp_width(physical_address_width: int) -> int:
    return min(max(physical_address_width, 36), 52)


def mtrr_mask(width: int, max_addr: int) -> int:
    """Valid bit plus the mask of the smallest power-of-two block above `max_addr`."""
    k = max(12, max_addr.bit_length())
    if k >= width:
        return MTRR_VALID
    return MTRR_VALID | (((1 << width) - 1) & ~((1 << k) - 1))


def compute_variable_mtrrs(
    layout: MemoryLayout,
    physical_address_width: int,
    chipset: ChipsetMmioRanges,
    variant: MtrrVariant = MtrrVariant.HEAD,
) -> list[MsrWrite]:
    """PhysBase/PhysMask pairs in the order the reference writes them."""
    w = clamp_width(physical_address_width)
    end = layout.end_of_ram
    low, high = chipset.low, chipset.high
    pairs: list[tuple[int, int]] = [(0 | MTRR_TYPE_WB, mtrr_mask(w, PCAT_SIZE - 1))]
    if end > PCAT_SIZE:
        pairs.append((PCAT_SIZE | MTRR_TYPE_WB, mtrr_mask(w, low.start - 1)))
    if end > low.end:
        base2 = low.end | MTRR_TYPE_WB
        if not high.is_empty():
            pairs.append((base2, mtrr_mask(w, high.start - 1)))
        elif variant is MtrrVariant.HEAD:
            pairs.append((base2, mtrr_mask(w, min(1 << min(w, 43), end) - 1)))
            if end > SPLIT:
                pairs.append((SPLIT | MTRR_TYPE_WB, mtrr_mask(w, end - 1)))
        else:
            pairs.append((base2, mtrr_mask(w, (1 << min(w, 43)) - 1)))
            if w > 43:
                pairs.append((SPLIT | MTRR_TYPE_WB, mtrr_mask(w, (1 << w) - 1)))
    if not high.is_empty() and end > high.end:
        pairs.append((high.end | MTRR_TYPE_WB, mtrr_mask(w, (1 << min(w, 43)) - 1)))
        if w > 43:
            pairs.append((SPLIT | MTRR_TYPE_WB, mtrr_mask(w, (1 << w) - 1)))
    out = []
    for n, (base, mask) in enumerate(pairs):
        out += [MsrWrite(physbase_msr(n), base), MsrWrite(physmask_msr(n), mask)]
    return out
