"""MTRRs that explain themselves: each variable pair decoded as the hardware reads it
(Intel SDM AND rule), and the lint a reader would otherwise do by hand."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vmlayout.firmware.memtype import (
    DEF_TYPE_VALUE,
    UC,
    WB,
    WT,
    MtrrState,
    decode_variable_pairs,
    lint_mtrr_state,
)
from vmlayout.firmware.mtrr import MTRR_VALID
from vmlayout.ranges import GIB, MIB, MemoryRange, readable_size

WIDTH = 46
MASK_BITS = (1 << WIDTH) - 1


def pair(start: int, size: int, kind: int) -> tuple[int, int]:
    return start | kind, (MASK_BITS & ~(size - 1)) | MTRR_VALID


def state(*pairs: tuple[int, int]) -> MtrrState:
    """MTRRs enabled, fixed-range MTRRs off (the variable pairs decide every byte)."""
    return MtrrState(DEF_TYPE_VALUE & ~0x400, (), pairs)


def test_an_aligned_pair_covers_its_block_and_is_not_linted() -> None:
    s = state(pair(4 * GIB, 4 * GIB, WB))
    (decoded,) = decode_variable_pairs(s, WIDTH)
    assert decoded.covers == (MemoryRange(4 * GIB, 8 * GIB),)
    assert (decoded.type_name, decoded.ignored_base_bits) == ("WB", 0)
    assert lint_mtrr_state(s, WIDTH) == []


def test_the_reference_unaligned_base_covers_the_whole_mask_block() -> None:
    """Spec 03: PHYSBASE1 = 0x800_0006 with a 4 GiB mask matches [0, 4 GiB)."""
    s = state((0x800_0006, (MASK_BITS & ~(4 * GIB - 1)) | MTRR_VALID))
    (decoded,) = decode_variable_pairs(s, WIDTH)
    assert decoded.covers == (MemoryRange(0, 4 * GIB),)
    assert decoded.ignored_base_bits == 0x800_0000
    (finding,) = lint_mtrr_state(s, WIDTH)
    assert "base bits 0x800_0000 are ignored; it covers [0x0, 0x1_0000_0000)" in finding


def test_overlaps_the_sdm_leaves_undefined_are_linted_defined_ones_are_not() -> None:
    wb = pair(0, 4 * GIB, WB)
    assert lint_mtrr_state(state(wb, pair(0, 2 * GIB, UC)), WIDTH) == []  # UC wins
    assert lint_mtrr_state(state(wb, pair(0, 2 * GIB, WT)), WIDTH) == []  # WT wins
    (finding,) = lint_mtrr_state(state(wb, pair(0, 2 * GIB, 0x01)), WIDTH)  # WB + WC
    assert finding.startswith("[0x0, 0x8000_0000) 2 GiB: overlapping pairs")


def test_a_mask_with_a_hole_is_linted_with_its_block_count() -> None:
    mask = (MASK_BITS & ~(GIB - 1) & ~(1 << 32)) | MTRR_VALID  # bit 32 clear: two blocks
    s = state((0 | WB, mask))
    (decoded,) = decode_variable_pairs(s, WIDTH)
    assert decoded.covers == (MemoryRange(0, GIB), MemoryRange(4 * GIB, 5 * GIB))
    assert any(
        "not contiguous" in f and "2 separate blocks" in f for f in lint_mtrr_state(s, WIDTH)
    )


def test_a_disabled_pair_is_decoded_as_disabled() -> None:
    (decoded,) = decode_variable_pairs(state((WB, MASK_BITS & ~(GIB - 1))), WIDTH)
    assert not decoded.valid and "disabled" in decoded.describe()


def test_sizes_read_as_the_largest_exact_unit_and_a_round_size() -> None:
    assert readable_size(262143 * MIB) == "262143 MiB (256 GiB - 1 MiB)"
    assert readable_size(3 * GIB) == "3 GiB"
    assert readable_size(1025 * MIB) == "1025 MiB (1 GiB + 1 MiB)"


@given(st.integers(min_value=12, max_value=WIDTH - 1), st.integers(min_value=0, max_value=1 << 20))
def test_a_pair_covers_exactly_the_addresses_the_and_rule_matches(log_size: int, seed: int) -> None:
    size = 1 << log_size
    base = (seed * size) & MASK_BITS & ~0xFFF
    s = state(pair(base, size, WB))
    (decoded,) = decode_variable_pairs(s, WIDTH)
    (block,) = decoded.covers
    assert block.size == size and block.start % size == 0 and block.contains_addr(base)
