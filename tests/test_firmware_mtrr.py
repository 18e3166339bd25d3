"""MTRRs: the reference pairs (spec 03 §2.5, §9.1), full loader state (§3), the SDM
effective-type rules (§4), and the exact policy proven by the analyzer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmlayout.config import config_from_dict
from vmlayout.errors import VmLayoutError
from vmlayout.firmware.memtype import (
    UC,
    UNDEFINED,
    WB,
    WT,
    Loader,
    MtrrState,
    check_layout,
    effective_intervals,
    effective_type,
    exact_variable_mtrrs,
    exact_variable_pairs,
    layout_expectations,
    loader_state,
    mtrr_state,
)
from vmlayout.firmware.mtrr import MsrWrite, MtrrVariant, compute_variable_mtrrs, mtrr_mask
from vmlayout.layout import ChipsetMmioRanges, new
from vmlayout.policy import ResolvedLayout, resolve
from vmlayout.ranges import EMPTY, FOUR_GIB, GIB, MIB, TIB, MemoryRange

LOW = MemoryRange(FOUR_GIB - 128 * MIB, FOUR_GIB)
HIGH = MemoryRange(FOUR_GIB, FOUR_GIB + 512 * MIB)


def legacy(ram: int, width: int = 46, high: bool = True, variant: str = "head") -> list[MsrWrite]:
    gaps = [LOW, HIGH] if high else [LOW]
    layout = new(ram, gaps)
    chipset = ChipsetMmioRanges(LOW, HIGH if high else EMPTY, EMPTY)
    return compute_variable_mtrrs(layout, width, chipset, MtrrVariant(variant))


def bases(writes: list[MsrWrite]) -> list[int]:
    return [w.value for w in writes if w.msr % 2 == 0]


# --- §2.2 mtrr_mask reference values ------------------------------------------------


@pytest.mark.parametrize(
    ("max_addr", "mask"),
    [
        (0x7FF_FFFF, 0x3FFF_F800_0800),
        (0xF7FF_FFFF, 0x3FFF_0000_0800),
        ((1 << 43) - 1, 0x3800_0000_0800),
        ((1 << 46) - 1, 0x800),
    ],
)
def test_mtrr_mask_is_the_smallest_power_of_two_block_above_max_addr(
    max_addr: int, mask: int
) -> None:
    assert mtrr_mask(46, max_addr) == mask


# --- §2.5 reference unit tests -------------------------------------------------------


def test_exactly_128_mib_needs_one_pair() -> None:
    assert bases(legacy(128 * MIB)) == [0x6]


@pytest.mark.parametrize("ram", [256 * MIB, 2 * GIB])
def test_more_than_128_mib_adds_the_pair_below_the_low_window(ram: int) -> None:
    assert bases(legacy(ram)) == [0x6, 0x800_0006]


def test_8_gib_with_high_window_uses_five_pairs() -> None:
    assert bases(legacy(8 * GIB)) == [
        0x6,
        0x800_0006,
        0x1_0000_0006,
        0x1_2000_0006,
        0x800_0000_0006,
    ]


def test_8_gib_without_high_window_head_uses_three_pairs() -> None:
    assert bases(legacy(8 * GIB, high=False)) == [0x6, 0x800_0006, 0x1_0000_0006]


def test_8_gib_without_high_window_pr3550_uses_four_pairs() -> None:
    writes = legacy(8 * GIB, high=False, variant="pr3550")
    assert bases(writes)[3] == 0x800_0000_0006 and len(bases(writes)) == 4


def test_narrow_width_40_uses_four_pairs() -> None:
    writes = legacy(8 * GIB, width=40)
    assert len(bases(writes)) == 4 and bases(writes)[3] == 0x1_2000_0006


def test_every_mask_has_the_valid_bit() -> None:
    assert all(w.value & 0x800 for w in legacy(8 * GIB) if w.msr % 2)


# --- §3 loader state -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loader", "wb_fixed"),
    [
        (Loader.LINUX, {0x250, 0x258}),
        (Loader.UEFI, {0x250, 0x258}),
        (Loader.PCAT, {0x250, 0x258, 0x26C, 0x26D, 0x26E, 0x26F}),
    ],
)
def test_each_loader_writes_def_type_0xc00_and_its_fixed_mtrrs(
    loader: Loader, wb_fixed: set[int]
) -> None:
    state = loader_state(loader, [])
    assert state.def_type == 0xC00
    assert {msr for msr, v in state.fixed if v == 0x0606_0606_0606_0606} == wb_fixed
    assert all(v == 0 for msr, v in state.fixed if msr not in wb_fixed)


@pytest.mark.parametrize(
    ("loader", "expected"),
    [
        (Loader.UEFI, [(0, 0xA0000, WB), (0xA0000, 0x100000, UC)]),
        (Loader.PCAT, [(0, 0xA0000, WB), (0xA0000, 0xE0000, UC), (0xE0000, 0x100000, WB)]),
    ],
)
def test_below_1_mib_types_follow_the_loader(loader: Loader, expected: list[Any]) -> None:
    intervals = effective_intervals(loader_state(loader, []), 46)
    below = [
        (i.range.start, min(i.range.end, 0x100000), i.type)
        for i in intervals
        if i.range.start < 0x100000
    ]
    assert below == expected


# --- §4.1 SDM rules ----------------------------------------------------------------------


def state(*pairs: tuple[int, int], def_type: int = 0x800) -> MtrrState:
    """MTRRs enabled, fixed ranges off, default UC: only the variable pairs matter."""
    return MtrrState(def_type, (), tuple(pairs))


def test_no_matching_pair_gives_the_default_type() -> None:
    assert effective_type(state(def_type=0x806), 0x1234_5000, 46) == WB


def test_uc_wins_over_wb() -> None:
    s = state((0x0 | WB, 0x3FFF_0000_0800), (0x0 | UC, 0x3FFF_F000_0800))
    assert effective_type(s, 0x0800_0000, 46) == UC
    assert effective_type(s, 0x1000_0000, 46) == WB


def test_wt_with_wb_gives_wt() -> None:
    s = state((0x0 | WB, 0x3FFF_0000_0800), (0x0 | WT, 0x3FFF_0000_0800))
    assert effective_type(s, 0x20_0000, 46) == WT


def test_other_overlaps_are_undefined() -> None:
    s = state((0x0 | WT, 0x3FFF_0000_0800), (0x0 | 0x1, 0x3FFF_0000_0800))
    assert effective_type(s, 0x20_0000, 46) == UNDEFINED


def test_mtrrs_disabled_means_everything_uc() -> None:
    s = state((0x0 | WB, 0x800), def_type=0x006)
    assert effective_type(s, 0x20_0000, 46) == UC
    assert [(i.range.start, i.type) for i in effective_intervals(s, 46)] == [(0, UC)]


def test_an_unaligned_base_covers_its_aligned_block() -> None:
    """§4.2: pair 1 (base 0x800_0000, 4 GiB mask) matches all of [0, 4 GiB)."""
    s = state((0x800_0006, 0x3FFF_0000_0800))
    intervals = effective_intervals(s, 46)
    assert (intervals[0].range, intervals[0].type) == (MemoryRange(0, FOUR_GIB), WB)


def test_a_mask_with_holes_matches_every_block_it_selects() -> None:
    """Mask bits 32..45 except bit 33: two 4 GiB blocks, at 0 and at 8 GiB."""
    mask = (0x3FFF_0000_0000 & ~(1 << 33)) | 0x800
    intervals = effective_intervals(state((0x6, mask)), 46)
    wb = [i.range for i in intervals if i.type == WB]
    assert wb == [MemoryRange(0, FOUR_GIB), MemoryRange(2 * FOUR_GIB, 3 * FOUR_GIB)]


@given(st.integers(0, (1 << 46) // 4096 - 1))
def test_intervals_agree_with_the_per_address_rule(page: int) -> None:
    s = loader_state(Loader.PCAT, legacy(8 * GIB))
    address = page * 4096
    [interval] = [i for i in effective_intervals(s, 46) if i.range.contains_addr(address)]
    assert interval.type == effective_type(s, address, 46)


# --- §4.2 / §9.1: what the reference set leaves WB ---------------------------------------


def resolved(**config: Any) -> ResolvedLayout:
    return resolve(config_from_dict({"pcie_root_complexes": [], **config}))


def violations(r: ResolvedLayout, policy: str = "reference") -> list[tuple[str, int, int]]:
    s = mtrr_state(r, Loader.UEFI, policy)
    found = check_layout(effective_intervals(s, 46), layout_expectations(r))
    return [(v.name, v.range.start, v.range.end) for v in found]


def test_case_a_leaves_all_of_the_low_window_wb() -> None:
    assert violations(resolved(node_mem_sizes=[2 * GIB])) == [
        ("chipset low", 0xF800_0000, FOUR_GIB)
    ]


def test_case_b_leaves_the_high_window_wb_too() -> None:
    assert violations(resolved(node_mem_sizes=[4 * GIB])) == [
        ("chipset low", 0xF800_0000, FOUR_GIB),
        ("chipset high", 0x1_4000_0000, 0x1_6000_0000),
    ]


def test_case_c_effective_wb_reaches_32_gib() -> None:
    r = resolved(node_mem_sizes=[16 * GIB])
    s = mtrr_state(r, Loader.UEFI)
    wb = [i.range for i in effective_intervals(s, 46) if i.type == WB]
    assert wb[-1] == MemoryRange(0x10_0000, 32 * GIB)


def test_ram_of_128_mib_or_less_leaves_the_low_window_uc() -> None:
    assert violations(resolved(node_mem_sizes=[128 * MIB])) == []


# --- the exact policy ------------------------------------------------------------------------


def test_exact_policy_has_no_violations_for_case_b() -> None:
    r = resolved(node_mem_sizes=[4 * GIB])
    assert violations(r, "exact") == []
    # [1 MiB, 3 GiB) as 2 GiB + 1 GiB blocks ([0, 1 MiB) is the fixed MTRRs' business),
    # [4 GiB, 5 GiB) as one block: three registers.
    assert len(exact_variable_mtrrs(r)) == 2 * 3


def test_exact_policy_over_budget_names_the_registers_it_needs() -> None:
    r = resolved(node_mem_sizes=[3 * GIB + 2 * MIB + 4096])
    with pytest.raises(VmLayoutError) as caught:
        exact_variable_mtrrs(r, count=1)
    assert caught.value.kind == "mtrr_budget_exceeded"
    assert "needs" in caught.value.message and "only 1 available" in caught.value.message


def test_exact_policy_approximation_never_makes_mmio_wb() -> None:
    r = resolved(node_mem_sizes=[3 * GIB + 2 * MIB + 4096])
    writes = exact_variable_mtrrs(r, count=1, approximate=True)
    s = loader_state(Loader.UEFI, writes)
    found = check_layout(effective_intervals(s, 46), layout_expectations(r))
    assert found and all(v.expected == WB for v in found)  # only RAM left UC


CONFIGS = st.fixed_dictionaries(
    {
        "node_mem_sizes": st.lists(
            st.integers(1, 64).map(lambda n: n * 256 * MIB), min_size=1, max_size=3
        ),
        "chipset_high_mmio_size": st.sampled_from([0, 2 * MIB, 512 * MIB, 3 * GIB]),
        "chipset_low_mmio_size": st.sampled_from([0, 64 * MIB, 128 * MIB, GIB]),
        "pcie_root_complexes": st.sampled_from(
            [
                [],
                [
                    {
                        "name": "rc0",
                        "segment": 0,
                        "start_bus": 0,
                        "end_bus": 255,
                        "low_mmio": {"size": 64 * MIB},
                        "high_mmio": {"size": GIB},
                    }
                ],
            ]
        ),
        "virtio_mmio_count": st.sampled_from([0, 4]),
        "physical_address_size": st.sampled_from([36, 40, 46]),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIGS)
def test_whenever_the_exact_policy_succeeds_the_analyzer_finds_nothing(
    config: dict[str, Any],
) -> None:
    try:
        r = resolve(config_from_dict(config))
        writes = exact_variable_mtrrs(r, count=16)
    except VmLayoutError:
        return
    s = loader_state(Loader.UEFI, writes)
    width = r.config.physical_address_size
    assert check_layout(effective_intervals(s, width), layout_expectations(r)) == []
    assert all(w.value & 0x800 for w in writes if w.msr % 2)


# --- §9.1 worked examples: register values of cases A-E -------------------------------

P0 = [(0x200, 0x6), (0x201, 0x3FFF_F800_0800)]
P01 = [*P0, (0x202, 0x800_0006), (0x203, 0x3FFF_0000_0800)]


def reference_pairs(r: ResolvedLayout, variant: str = "head") -> list[tuple[int, int]]:
    writes = compute_variable_mtrrs(
        r.memory_layout, r.config.physical_address_size, r.chipset, MtrrVariant(variant)
    )
    return [(w.msr, w.value) for w in writes]


@pytest.mark.parametrize(
    ("ram", "high", "variant", "expected"),
    [
        (2 * GIB, 512 * MIB, "head", P01),  # A
        (4 * GIB, 512 * MIB, "head", [*P01, (0x204, 0x1_0000_0006), (0x205, 0x3FFE_0000_0800)]),
        (16 * GIB, 512 * MIB, "head", [*P01, (0x204, 0x1_0000_0006), (0x205, 0x3FF8_0000_0800)]),
        (16 * GIB, 0, "head", [*P01, (0x204, 0x1_0000_0006), (0x205, 0x3FF8_0000_0800)]),  # D
        (
            16 * GIB,
            0,
            "pr3550",
            [
                *P01,
                (0x204, 0x1_0000_0006),
                (0x205, 0x3800_0000_0800),
                (0x206, 0x800_0000_0006),
                (0x207, 0x800),
            ],
        ),
        (2 * GIB, 0, "head", P01),  # "same pairs as A"
        (4 * GIB, 0, "head", [*P01, (0x204, 0x1_0000_0006), (0x205, 0x3FFE_0000_0800)]),
        (128 * MIB, 512 * MIB, "head", P0),
    ],
)
def test_registers_of_the_resolved_worked_examples(
    ram: int, high: int, variant: str, expected: list[tuple[int, int]]
) -> None:
    r = resolved(node_mem_sizes=[ram], chipset_high_mmio_size=high)
    assert reference_pairs(r, variant) == expected


def test_registers_of_legacy_case_e() -> None:
    assert [(w.msr, w.value) for w in legacy(8 * GIB)] == [
        *P01,
        (0x204, 0x1_0000_0006),
        (0x205, 0x3FFF_0000_0800),
        (0x206, 0x1_2000_0006),
        (0x207, 0x3800_0000_0800),
        (0x208, 0x800_0000_0006),
        (0x209, 0x800),
    ]


@pytest.mark.parametrize(
    ("ram", "high", "variant", "masks"),
    [
        (4 * GIB, 512 * MIB, "head", [0xFF_F800_0800, 0xFF_0000_0800, 0xFE_0000_0800]),
        (16 * GIB, 512 * MIB, "head", [0xFF_F800_0800, 0xFF_0000_0800, 0xF8_0000_0800]),
        (16 * GIB, 0, "head", [0xFF_F800_0800, 0xFF_0000_0800, 0xF8_0000_0800]),
        (16 * GIB, 0, "pr3550", [0xFF_F800_0800, 0xFF_0000_0800, 0x800]),
    ],
)
def test_width_40_masks(ram: int, high: int, variant: str, masks: list[int]) -> None:
    r = resolved(node_mem_sizes=[ram], chipset_high_mmio_size=high, physical_address_size=40)
    assert [v for msr, v in reference_pairs(r, variant) if msr % 2] == masks


def test_width_40_legacy_pair_3_matches_everything() -> None:
    """§4.2: for w <= 43 pair 3's own mask is 0x800."""
    writes = legacy(8 * GIB, width=40)
    assert (writes[-2].value, writes[-1].value) == (0x1_2000_0006, 0x800)
    s = loader_state(Loader.UEFI, writes)
    assert effective_intervals(s, 40)[-1].range == MemoryRange(0x100000, 1 << 40)


# --- §9.1 worked examples: effective types ---------------------------------------------

BELOW_1_MIB = [(0, 0xA0000, WB), (0xA0000, 0x100000, UC)]
TOP = 1 << 46


def effective(state: MtrrState) -> list[tuple[int, int, int | str]]:
    return [(i.range.start, i.range.end, i.type) for i in effective_intervals(state, 46)]


@pytest.mark.parametrize(
    ("ram", "high", "variant", "wb_end"),
    [
        (2 * GIB, 512 * MIB, "head", FOUR_GIB),  # A
        (4 * GIB, 512 * MIB, "head", 8 * GIB),  # B
        (16 * GIB, 512 * MIB, "head", 32 * GIB),  # C
        (16 * GIB, 0, "head", 32 * GIB),  # D HEAD
        (16 * GIB, 0, "pr3550", TOP),  # D PR: every address >= 1 MiB
    ],
)
def test_effective_types_of_cases_a_to_d(ram: int, high: int, variant: str, wb_end: int) -> None:
    r = resolved(node_mem_sizes=[ram], chipset_high_mmio_size=high)
    writes = compute_variable_mtrrs(r.memory_layout, 46, r.chipset, MtrrVariant(variant))
    tail = [(wb_end, TOP, UC)] if wb_end < TOP else []
    assert effective(loader_state(Loader.UEFI, writes)) == [
        *BELOW_1_MIB,
        (0x100000, wb_end, WB),
        *tail,
    ]


def test_effective_types_of_legacy_case_e_cover_everything() -> None:
    assert effective(loader_state(Loader.UEFI, legacy(8 * GIB))) == [
        *BELOW_1_MIB,
        (0x100000, TOP, WB),
    ]


def test_pair_2_of_a_high_window_at_4_gib_covers_exactly_4_to_8_gib() -> None:
    """§4.2 exception: k = 32, so bit 32 of the base lies inside the mask."""
    pair2 = (0x1_0000_0006, 0x3FFF_0000_0800)
    assert pair2 in pairs(legacy(8 * GIB))
    assert effective(state(pair2)) == [
        (0, FOUR_GIB, UC),
        (FOUR_GIB, 8 * GIB, WB),
        (8 * GIB, TOP, UC),
    ]


def test_pr3550_pair_3_matches_every_address() -> None:
    assert effective(state((0x800_0000_0006, 0x800))) == [(0, TOP, WB)]


def test_case_d_head_leaves_mmio_below_32_gib_wb() -> None:
    """§9.1: with no high window, anything placed in [17 GiB, 32 GiB) (ECAM, MMIO64) is WB;
    the low window is WB as always; nothing at or above 32 GiB is."""
    rc0 = {"name": "rc0", "low_mmio": {"size": 64 * MIB}, "high_mmio": {"size": GIB}}
    r = resolved(node_mem_sizes=[16 * GIB], chipset_high_mmio_size=0, pcie_root_complexes=[rc0])
    expected = [("chipset low", 0xF800_0000, FOUR_GIB)]
    rc = r.pcie_root_complexes[0]
    for name, window in (("ECAM", rc.ecam), ("low MMIO", rc.low_mmio), ("high MMIO", rc.high_mmio)):
        piece = window.intersection(MemoryRange(0, 32 * GIB))
        if not piece.is_empty():
            expected.append((f"rc0 {name}", piece.start, piece.end))
    assert len(expected) > 1  # the root complex lands above RAM, below 32 GiB
    assert sorted(violations(r)) == sorted(expected)


# --- exact policy: hand-derived sets ------------------------------------------------------

RAM_3_5_PLUS = [MemoryRange(0, 3 * GIB + 512 * MIB), MemoryRange(FOUR_GIB, FOUR_GIB + 512 * MIB)]


def pairs(writes: list[MsrWrite]) -> list[tuple[int, int]]:
    return [(b.value, m.value) for b, m in zip(writes[::2], writes[1::2], strict=True)]


def test_exact_policy_uses_a_uc_hole_when_it_saves_a_register() -> None:
    """[1 MiB, 3.5 GiB) is WB [0, 4 GiB) minus UC [3.5 GiB, 4 GiB) (two registers, versus
    three as a sum of blocks); [4 GiB, 4.5 GiB) is one more."""
    assert pairs(exact_variable_pairs(RAM_3_5_PLUS, 46)) == [
        (0x0 | WB, 0x3FFF_0000_0800),
        (FOUR_GIB | WB, 0x3FFF_E000_0800),
        ((3 * GIB + 512 * MIB) | UC, 0x3FFF_E000_0800),
    ]


def test_exact_policy_approximation_keeps_the_uc_hole_and_drops_the_smaller_block() -> None:
    """Two registers: WB [0, 4 GiB) minus UC [3.5 GiB, 4 GiB) keeps 3.5 GiB WB, more than
    any two WB blocks could; only [4 GiB, 4.5 GiB) is left UC."""
    with pytest.raises(VmLayoutError, match="needs 3 variable registers, only 2"):
        exact_variable_pairs(RAM_3_5_PLUS, 46, count=2)
    writes = exact_variable_pairs(RAM_3_5_PLUS, 46, count=2, approximate=True)
    assert pairs(writes) == [
        (0x0 | WB, 0x3FFF_0000_0800),
        ((3 * GIB + 512 * MIB) | UC, 0x3FFF_E000_0800),
    ]


def test_exact_policy_approximation_with_one_register_takes_the_largest_ram_block() -> None:
    writes = exact_variable_pairs(RAM_3_5_PLUS, 46, count=1, approximate=True)
    assert pairs(writes) == [(0x0 | WB, 0x3FFF_8000_0800)]  # [0, 2 GiB)


def test_exact_policy_rejects_ram_beyond_maxphyaddr() -> None:
    with pytest.raises(VmLayoutError) as caught:
        exact_variable_pairs([MemoryRange(0, 128 * GIB)], 36)
    assert caught.value.kind == "mtrr_unrepresentable"


def test_exact_policy_for_a_4_tib_layout_fits_in_a_few_registers() -> None:
    r = resolved(node_mem_sizes=[4 * TIB])
    assert violations(r, "exact") == []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIGS, st.integers(1, 4))
def test_approximation_never_makes_non_ram_wb(config: dict[str, Any], count: int) -> None:
    try:
        r = resolve(config_from_dict(config))
        exact = exact_variable_mtrrs(r, count=64)
    except VmLayoutError:
        return
    writes = exact_variable_mtrrs(r, count=count, approximate=True)
    assert len(writes) <= 2 * count
    width = r.config.physical_address_size
    found = check_layout(
        effective_intervals(loader_state(Loader.UEFI, writes), width), layout_expectations(r)
    )
    assert all(v.expected == WB for v in found)
    if len(exact) <= 2 * count:  # within budget the approximation is the exact set
        assert found == []
