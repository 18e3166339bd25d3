"""Spec 01 §5-§11: the allocator's validation, phases and ordering rules."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmlayout.allocator import LayoutBuilder, PlacedRange, PlacedRangeKind, Placement
from vmlayout.errors import VmLayoutError
from vmlayout.ranges import FOUR_GIB, GIB, MAX_ADDRESS, MIB, MemoryRange

P = 0x1000
R = MemoryRange
K = PlacedRangeKind


def summary(placed: list[PlacedRange]) -> list[tuple[int, int, str, str]]:
    return [(p.range.start, p.range.end, p.kind.value, p.tag) for p in placed]


def test_module_doc_example_places_vmbus_below_fixed_reserved_zone() -> None:
    b = LayoutBuilder()
    b.fixed("reserved", R(0xFE00_0000, FOUR_GIB))
    vmbus = b.request("vmbus", 128 * MIB, MIB, Placement.MMIO32)
    ram = b.ram("ram", 2 * GIB, P)
    result = b.allocate()
    assert ram.ranges == [R(0, 0x8000_0000)]
    assert vmbus.range == R(0xF600_0000, 0xFE00_0000)
    assert summary(result) == [
        (0, 0x8000_0000, "ram", "ram"),
        (0xF600_0000, 0xFE00_0000, "mmio32", "vmbus"),
        (0xFE00_0000, FOUR_GIB, "fixed", "reserved"),
    ]


def test_empty_input_gives_empty_result() -> None:
    assert LayoutBuilder().allocate() == []


def test_fixed_request_is_reported() -> None:
    b = LayoutBuilder()
    b.fixed("fixed", R(0xFC00_0000, 0xFC40_0000))
    assert summary(b.allocate()) == [(0xFC00_0000, 0xFC40_0000, "fixed", "fixed")]


def test_fixed_overlap_is_rejected_naming_both_requests() -> None:
    b = LayoutBuilder()
    b.fixed("first", R(0x1000, 0x3000))
    b.fixed("second", R(0x2000, 0x3000))
    with pytest.raises(VmLayoutError) as caught:
        b.allocate()
    assert caught.value.kind == "fixed_overlap"
    assert str(caught.value) == (
        "fixed/reserved requests first (0x1000-0x3000) and second (0x2000-0x3000) overlap"
    )


def test_zero_size_request_is_invalid_size() -> None:
    b = LayoutBuilder()
    b.request("zero", 0, P, Placement.MMIO32)
    with pytest.raises(VmLayoutError, match=r"zero: invalid size 0x0") as caught:
        b.allocate()
    assert caught.value.kind == "invalid_size"


def test_sub_page_alignment_is_invalid_alignment() -> None:
    b = LayoutBuilder()
    b.request("alignment", P, 0x400, Placement.MMIO32)
    with pytest.raises(VmLayoutError, match="alignment: invalid alignment 0x400") as caught:
        b.allocate()
    assert caught.value.kind == "invalid_alignment"


def test_non_power_of_two_alignment_is_invalid_alignment() -> None:
    b = LayoutBuilder()
    b.ram("ram", P, 0x3000)
    with pytest.raises(VmLayoutError) as caught:
        b.allocate()
    assert caught.value.kind == "invalid_alignment"


def test_reserved_overlapping_fixed_is_rejected() -> None:
    b = LayoutBuilder()
    b.reserve("reserved", R(0x4000_0000, 0x4010_0000))
    b.fixed("fixed", R(0x4000_1000, 0x4010_1000))
    with pytest.raises(VmLayoutError, match=r"requests reserved .* and fixed") as caught:
        b.allocate()
    assert caught.value.kind == "fixed_overlap"


def test_mmio32_is_placed_top_down_below_4_gib() -> None:
    b = LayoutBuilder()
    b.fixed("reserved", R(0xFE00_0000, FOUR_GIB))
    first = b.request("first", MIB, MIB, Placement.MMIO32)
    second = b.request("second", MIB, MIB, Placement.MMIO32)
    b.allocate()
    assert first.range == R(0xFDF0_0000, 0xFE00_0000)
    assert second.range == R(0xFDE0_0000, 0xFDF0_0000)


def test_mmio32_orders_by_alignment_then_size_then_request_order() -> None:
    b = LayoutBuilder()
    small = b.request("small", MIB, MIB, Placement.MMIO32)
    aligned = b.request("aligned", MIB, 256 * MIB, Placement.MMIO32)
    large = b.request("large", 4 * MIB, MIB, Placement.MMIO32)
    b.allocate()
    assert aligned.range == R(0xF000_0000, 0xF010_0000)
    assert large.range == R(0xFFC0_0000, FOUR_GIB)
    assert small.range == R(0xFFB0_0000, 0xFFC0_0000)


def test_ram_starts_at_zero() -> None:
    b = LayoutBuilder()
    ram = b.ram("ram", 2 * GIB, P)
    result = b.allocate()
    assert ram.ranges == [R(0, 0x8000_0000)]
    assert result[0] == PlacedRange("ram", K.RAM, R(0, 0x8000_0000))


def test_ram_splits_around_fixed_ranges_and_mmio32() -> None:
    b = LayoutBuilder()
    b.fixed("fixed", R(0x4000_0000, 0x4010_0000))
    mmio = b.request("mmio32", 2 * GIB, MIB, Placement.MMIO32)
    ram = b.ram("ram", 3 * GIB, P)
    b.allocate()
    assert mmio.range == R(0x8000_0000, FOUR_GIB)
    assert ram.ranges == [
        R(0, 0x4000_0000),
        R(0x4010_0000, 0x8000_0000),
        R(FOUR_GIB, 0x1_4010_0000),
    ]


def test_ram_split_chunks_round_down_to_alignment() -> None:
    b = LayoutBuilder()
    b.fixed("fixed", R(0x4010_0000, 0x4020_0000))
    ram = b.ram("ram", 2 * GIB, GIB)
    b.allocate()
    assert ram.ranges == [R(0, 0x4000_0000), R(0x8000_0000, 0xC000_0000)]


def test_ram_requests_are_placed_in_caller_order() -> None:
    b = LayoutBuilder()
    first = b.ram("first", 2 * GIB, P)
    second = b.ram("second", GIB, P)
    b.allocate()
    assert first.ranges == [R(0, 0x8000_0000)]
    assert second.ranges == [R(0x8000_0000, 0xC000_0000)]


def test_ram_request_does_not_backfill_earlier_fragments() -> None:
    b = LayoutBuilder()
    b.fixed("hole", R(0x4010_0000, 0x4020_0000))
    first = b.ram("first", 2 * GIB, GIB)
    second = b.ram("second", 256 * MIB, P)
    b.allocate()
    assert first.ranges == [R(0, 0x4000_0000), R(0x8000_0000, 0xC000_0000)]
    assert second.ranges == [R(0xC000_0000, 0xD000_0000)]


def test_ram_in_order_keeps_flattened_list_sorted() -> None:
    b = LayoutBuilder()
    b.fixed("pcie_bar", R(0x4010_0000, 0x4020_0000))
    first = b.ram("first", 2 * GIB, P)
    second = b.ram("second", 512 * MIB, P)
    b.allocate()
    assert first.ranges == [R(0, 0x4010_0000), R(0x4020_0000, 0x8010_0000)]
    assert second.ranges == [R(0x8010_0000, 0xA010_0000)]
    flat = first.ranges + second.ranges
    assert flat == sorted(flat)


def test_mmio64_is_placed_bottom_up_above_4_gib() -> None:
    b = LayoutBuilder()
    b.ram("ram", 2 * GIB, P)
    first = b.request("first", MIB, MIB, Placement.MMIO64)
    second = b.request("second", MIB, MIB, Placement.MMIO64)
    b.allocate()
    assert first.range == R(FOUR_GIB, 0x1_0010_0000)
    assert second.range == R(0x1_0010_0000, 0x1_0020_0000)


def test_mmio64_starts_at_end_of_ram_above_4_gib() -> None:
    b = LayoutBuilder()
    ram = b.ram("ram", 6 * GIB, P)
    mmio = b.request("mmio64", MIB, MIB, Placement.MMIO64)
    b.allocate()
    assert ram.ranges == [R(0, 0x1_8000_0000)]
    assert mmio.range == R(0x1_8000_0000, 0x1_8010_0000)


def test_mmio64_skips_fixed_ranges_above_4_gib() -> None:
    b = LayoutBuilder()
    b.ram("ram", 2 * GIB, P)
    b.fixed("fixed", R(FOUR_GIB, 0x1_0010_0000))
    mmio = b.request("mmio64", MIB, MIB, Placement.MMIO64)
    b.allocate()
    assert mmio.range == R(0x1_0010_0000, 0x1_0020_0000)


def test_post_mmio_is_placed_after_all_mmio() -> None:
    b = LayoutBuilder()
    b.ram("ram", 2 * GIB, P)
    mmio = b.request("mmio64", MIB, MIB, Placement.MMIO64)
    post = b.request("post_mmio", MIB, MIB, Placement.POST_MMIO)
    b.allocate()
    assert mmio.range == R(FOUR_GIB, 0x1_0010_0000)
    assert post.range == R(0x1_0010_0000, 0x1_0020_0000)


def test_post_mmio_preserves_request_order_not_alignment() -> None:
    b = LayoutBuilder()
    b.ram("ram", 2 * GIB, P)
    first = b.request("first", MIB, MIB, Placement.POST_MMIO)
    aligned = b.request("aligned", MIB, GIB, Placement.POST_MMIO)
    b.allocate()
    assert first.range == R(0x8000_0000, 0x8010_0000)
    assert aligned.range == R(0xC000_0000, 0xC010_0000)


def test_high_reserved_range_does_not_raise_post_mmio_and_is_trimmed() -> None:
    b = LayoutBuilder()
    b.ram("ram", 2 * GIB, P)
    b.reserve("high_reserved", R(0xFD_0000_0000, 0xFD_4000_0000))
    post = b.request("post_mmio", MIB, MIB, Placement.POST_MMIO)
    result = b.allocate()
    assert post.range == R(0x8000_0000, 0x8010_0000)
    assert summary(result) == [
        (0, 0x8000_0000, "ram", "ram"),
        (0x8000_0000, 0x8010_0000, "post_mmio", "post_mmio"),
    ]


def test_reserved_range_between_allocations_is_reported() -> None:
    b = LayoutBuilder()
    b.ram("ram", 2 * GIB, P)
    b.reserve("reserved", R(0x8000_0000, 0x8010_0000))
    post = b.request("post_mmio", MIB, MIB, Placement.POST_MMIO)
    result = b.allocate()
    assert post.range == R(0x8010_0000, 0x8020_0000)
    assert PlacedRange("reserved", K.RESERVED, R(0x8000_0000, 0x8010_0000)) in result


def test_fixed_hypertransport_hole_is_regular_fixed_placement() -> None:
    b = LayoutBuilder()
    b.ram("ram", 2 * GIB, P)
    b.fixed("amd_hypertransport_hole", R(0xFD_0000_0000, 0xFD_4000_0000))
    result = b.allocate()
    assert result[-1].range == R(0xFD_0000_0000, 0xFD_4000_0000)
    assert result[-1].kind is K.FIXED


def test_fixed_high_range_raises_post_mmio_floor() -> None:
    b = LayoutBuilder()
    b.ram("ram", 2 * GIB, P)
    b.fixed("hole", R(0xFD_0000_0000, 0xFD_4000_0000))
    post = b.request("post", MIB, MIB, Placement.POST_MMIO)
    b.allocate()
    assert post.range == R(0xFD_4000_0000, 0xFD_4010_0000)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda b: b.request("too_big", FOUR_GIB + P, P, Placement.MMIO32),
            "during Mmio32; remaining free space in phase: 0x100000000 bytes",
        ),
        (
            lambda b: (b.fixed("fixed", R(0, MAX_ADDRESS)), b.ram("ram", P, P)),
            "during Ram; remaining free space in phase: 0x0 bytes",
        ),
        (
            lambda b: (
                b.ram("ram", P, P),
                b.fixed("fixed", R(P, MAX_ADDRESS)),
                b.request("mmio64", P, P, Placement.MMIO64),
            ),
            "during Mmio64; remaining free space in phase: 0x0 bytes",
        ),
    ],
    ids=["mmio32", "ram", "mmio64"],
)
def test_exhaustion_reports_phase_and_free_space(setup: object, message: str) -> None:
    b = LayoutBuilder()
    setup(b)  # type: ignore[operator]
    with pytest.raises(VmLayoutError, match=message) as caught:
        b.allocate()
    assert caught.value.kind == "exhausted"


def test_sorted_result_preserves_tags_and_kinds() -> None:
    b = LayoutBuilder()
    b.ram("ram", GIB, P)
    b.request("mmio32", MIB, MIB, Placement.MMIO32)
    b.request("mmio64", MIB, MIB, Placement.MMIO64)
    assert summary(b.allocate()) == [
        (0, 0x4000_0000, "ram", "ram"),
        (0xFFF0_0000, FOUR_GIB, "mmio32", "mmio32"),
        (FOUR_GIB, 0x1_0010_0000, "mmio64", "mmio64"),
    ]


def _deterministic_builder() -> LayoutBuilder:
    b = LayoutBuilder()
    b.ram("ram", 2 * GIB, P)
    b.fixed("reserved", R(0xFE00_0000, FOUR_GIB))
    b.request("vmbus_low", 128 * MIB, MIB, Placement.MMIO32)
    b.request("pcie_ecam", 256 * MIB, 256 * MIB, Placement.MMIO32)
    b.request("pcie_high", GIB, MIB, Placement.MMIO64)
    b.request("virtio", P, P, Placement.MMIO32)
    return b


def test_allocation_is_deterministic() -> None:
    expected = [
        (0, 0x8000_0000, "ram", "ram"),
        (0xE000_0000, 0xF000_0000, "mmio32", "pcie_ecam"),
        (0xF5FF_F000, 0xF600_0000, "mmio32", "virtio"),
        (0xF600_0000, 0xFE00_0000, "mmio32", "vmbus_low"),
        (0xFE00_0000, FOUR_GIB, "fixed", "reserved"),
        (FOUR_GIB, 0x1_4000_0000, "mmio64", "pcie_high"),
    ]
    for _ in range(10):
        assert summary(_deterministic_builder().allocate()) == expected


@pytest.mark.parametrize(
    ("size", "alignment", "fixed", "expected"),
    [
        (
            4 * GIB,
            P,
            R(0x4000_0000, 0x8000_0000),
            [R(0, 0x4000_0000), R(0x8000_0000, 0x1_4000_0000)],
        ),
        (
            2 * GIB,
            GIB,
            R(0x4010_0000, 0x4020_0000),
            [R(0, 0x4000_0000), R(0x8000_0000, 0xC000_0000)],
        ),
        (0x6000_0000, GIB, None, [R(0, 0x6000_0000)]),
    ],
    ids=["fixed-mmio-splits-ram", "gb-aligned-ram-stays-gb-aligned", "1.5g-in-open-space"],
)
def test_design_doc_ram_examples(
    size: int, alignment: int, fixed: MemoryRange | None, expected: list[MemoryRange]
) -> None:
    b = LayoutBuilder()
    ram = b.ram("ram", size, alignment)
    if fixed is not None:
        b.fixed("fixed", fixed)
    b.allocate()
    assert ram.ranges == expected


def test_vtl2_post_mmio_does_not_move_vtl0_ram() -> None:
    def run(with_vtl2: bool) -> tuple[list[MemoryRange], MemoryRange | None]:
        b = LayoutBuilder()
        ram = b.ram("ram", 2 * GIB, P)
        b.fixed("fixed", R(0x4000_0000, 0x8000_0000))
        vtl2 = b.request("vtl2", 2 * MIB, P, Placement.POST_MMIO) if with_vtl2 else None
        b.allocate()
        return ram.ranges, vtl2.range if vtl2 else None

    with_ram, vtl2 = run(True)
    without_ram, _ = run(False)
    assert with_ram == without_ram == [R(0, 0x4000_0000), R(0x8000_0000, 0xC000_0000)]
    assert vtl2 == R(0xC000_0000, 0xC020_0000)


# --- properties -----------------------------------------------------------------------

_sizes = st.integers(1, 64).map(lambda n: n * 0x10_0000)
_aligns = st.sampled_from([P, 0x10000, 2 * MIB, 0x1000_0000, GIB])
_requests = st.lists(
    st.tuples(
        st.sampled_from(["ram", "mmio32", "mmio64", "post_mmio"]),
        st.integers(1, 2048).map(lambda n: n * 2 * MIB),
        _aligns,
    ),
    max_size=12,
)
_fixed = st.lists(st.tuples(st.integers(0, 0x4000), _sizes), max_size=4)


def _build(requests: list[tuple[str, int, int]], fixed: list[tuple[int, int]]) -> LayoutBuilder:
    b = LayoutBuilder()
    for index, (page, size) in enumerate(fixed):
        start = page * 0x10_0000
        b.fixed(f"f{index}", R(start, start + size))
    for index, (kind, size, alignment) in enumerate(requests):
        if kind == "ram":
            b.ram(f"r{index}", size, alignment)
        else:
            b.request(f"r{index}", size, alignment, Placement(kind))
    return b


@settings(max_examples=150, deadline=None)
@given(_requests, _fixed)
def test_placed_ranges_never_overlap_and_honour_alignment(
    requests: list[tuple[str, int, int]], fixed: list[tuple[int, int]]
) -> None:
    try:
        result = _build(requests, fixed).allocate()
    except VmLayoutError as error:
        assert error.kind in {"fixed_overlap", "exhausted"}
        return
    ranges = [p.range for p in result]
    assert ranges == sorted(ranges)
    for a, b in pairwise(ranges):
        assert a.end <= b.start
    wanted = {f"r{i}": (kind, size, al) for i, (kind, size, al) in enumerate(requests)}
    placed_size: dict[str, int] = {}
    for p in result:
        if p.tag in wanted:
            assert p.range.start % wanted[p.tag][2] == 0
            placed_size[p.tag] = placed_size.get(p.tag, 0) + p.range.size
            if p.kind is K.MMIO32:
                assert p.range.end <= FOUR_GIB
            if p.kind is K.MMIO64:
                assert p.range.start >= FOUR_GIB
    assert placed_size == {tag: size for tag, (_, size, _) in wanted.items()}


@settings(max_examples=60, deadline=None)
@given(_requests, _fixed)
def test_identical_input_gives_identical_output(
    requests: list[tuple[str, int, int]], fixed: list[tuple[int, int]]
) -> None:
    def outcome() -> object:
        try:
            return _build(requests, fixed).allocate()
        except VmLayoutError as error:
            return (error.kind, error.message)

    assert outcome() == outcome()
