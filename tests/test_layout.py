"""Spec 01 §10 and §12: MemoryLayout construction, validation and accessors."""

from __future__ import annotations

import pytest

from vmlayout.errors import VmLayoutError
from vmlayout.layout import (
    AddressType,
    MemoryRangeWithNode,
    from_ranges,
    from_resolved_ranges,
    new,
    new_with_numa,
)
from vmlayout.ranges import MemoryRange as R

GB = 0x4000_0000
MB = 0x10_0000
TB = 0x100_0000_0000
MMIO = [R(0x4000_0000, 0x8000_0000), R(0xC000_0000, 0x1_0000_0000)]
UNSORTED = [R(0xC000_0000, 0x1_0000_0000), R(0x4000_0000, 0x8000_0000)]
RAM_1A = [
    MemoryRangeWithNode(R(0, 0x4000_0000), 0),
    MemoryRangeWithNode(R(0x8000_0000, 0xC000_0000), 0),
    MemoryRangeWithNode(R(0x1_0000_0000, 0x100_8000_0000), 0),
]


def N(start: int, end: int, vnode: int = 0) -> MemoryRangeWithNode:
    return MemoryRangeWithNode(R(start, end), vnode)


def test_new_lays_ram_around_mmio_gaps() -> None:
    layout = new(TB, MMIO)
    assert list(layout.ram) == RAM_1A
    assert list(layout.mmio) == MMIO
    assert layout.ram_size == TB
    assert layout.end_of_ram == 0x100_8000_0000
    assert layout.end_of_layout == 0x100_8000_0000


def test_new_from_ranges_matches_new() -> None:
    layout = from_ranges(RAM_1A, MMIO)
    assert list(layout.ram) == RAM_1A
    assert layout.ram_size == TB
    assert layout.end_of_layout == 0x100_8000_0000


def test_unaligned_ram_size_is_bad_size() -> None:
    with pytest.raises(VmLayoutError, match="invalid memory size"):
        new(TB + 1, [])


@pytest.mark.parametrize(
    "build",
    [
        lambda: new(TB, UNSORTED),
        lambda: from_ranges([], UNSORTED),
        lambda: from_ranges([N(0, 0x4000_0000)], UNSORTED),
        lambda: from_ranges([N(0, 0x4010_0000)], MMIO),
        lambda: new(TB, MMIO, [R(0x4000_0000, 0x4010_0000)], []),
        lambda: new(TB, MMIO, [], [R(0x4000_0000, 0x4010_0000)]),
        lambda: new(TB, [], [R(0x4000_0000, 0x4010_0000)], [R(0x4000_0000, 0x4010_0000)]),
        lambda: from_resolved_ranges(
            [N(0, 0x8000_0000)], [R(0x4000_0000, 0x8000_0000)], [], [], None
        ),
    ],
    ids=[
        "unsorted-mmio",
        "no-ram",
        "ram-with-unsorted-mmio",
        "ram-overlaps-mmio",
        "ecam-overlaps-mmio",
        "pci-mmio-overlaps-mmio",
        "ecam-overlaps-pci-mmio",
        "resolved-ram-overlaps-mmio",
    ],
)
def test_overlapping_or_unsorted_ranges_are_bad_memory_ranges(build: object) -> None:
    with pytest.raises(VmLayoutError, match="invalid memory or MMIO ranges") as caught:
        build()  # type: ignore[operator]
    assert caught.value.kind == "invalid_layout"


def test_resolved_ranges_constructor_and_probe() -> None:
    layout = from_resolved_ranges(
        [N(0, 0x4000_0000, 0), N(0x8000_0000, 0xC000_0000, 1)],
        [R(0x4000_0000, 0x8000_0000)],
        [R(0x1_0000_0000, 0x1_0010_0000)],
        [R(0x1_4000_0000, 0x1_8000_0000)],
        None,
    )
    assert layout.ram == (N(0, 0x4000_0000, 0), N(0x8000_0000, 0xC000_0000, 1))
    assert layout.mmio == (R(0x4000_0000, 0x8000_0000),)
    assert layout.probe_address(0x1_0000_0000) is AddressType.PCI_ECAM
    assert layout.probe_address(0x1_4000_0000) is AddressType.PCI_MMIO


def test_vtl2_range_in_a_hole_below_end_of_ram_is_rejected() -> None:
    with pytest.raises(VmLayoutError, match="vtl2 range is below end of ram"):
        from_resolved_ranges(
            [N(0, 0x4000_0000), N(0xC000_0000, 0x1_0000_0000)],
            [R(0x4000_0000, 0x8000_0000)],
            [],
            [],
            R(0x8000_0000, 0x8010_0000),
        )


def test_pci_ranges_are_excluded_from_ram_and_probed() -> None:
    layout = new(
        TB,
        [R(0xC000_0000, 0x1_0000_0000)],
        [R(0x1FF_C000_0000, 0x200_0000_0000)],
        [R(0x8000_0000, 0xC000_0000), R(0x1_4000_0000, 0x1_8000_0000)],
    )
    assert list(layout.ram) == [
        N(0, 0x8000_0000),
        N(0x1_0000_0000, 0x1_4000_0000),
        N(0x1_8000_0000, 0x100_C000_0000),
    ]
    assert layout.end_of_layout == 0x200_0000_0000
    for address in (0x8000_0000, 0x8010_0000, 0x1_4000_0000, 0x1_4010_0000):
        assert layout.probe_address(address) is AddressType.PCI_MMIO
    assert layout.probe_address(0x1FF_C000_0000) is AddressType.PCI_ECAM


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (0, AddressType.RAM),
        (256, AddressType.RAM),
        (0x8000_0000, AddressType.RAM),
        (0x1_0000_0000, AddressType.RAM),
        (0x100_0000_0000, AddressType.RAM),
        (0x100_0000_0001, AddressType.RAM),
        (0x4000_0000, AddressType.MMIO),
        (0x4000_007B, AddressType.MMIO),
        (0xC000_0000, AddressType.MMIO),
        (0x100_8000_0000, None),
        (0x100_C000_0000, None),
        (0x400_0000_0000, None),
    ],
)
def test_probe_address(address: int, expected: AddressType | None) -> None:
    assert from_ranges(RAM_1A, MMIO).probe_address(address) is expected


def test_numa_two_nodes_even_split() -> None:
    layout = new_with_numa([2 * GB, 2 * GB], [R(0x8000_0000, 0xC000_0000)])
    assert list(layout.ram) == [N(0, 0x8000_0000, 0), N(0xC000_0000, 0x1_4000_0000, 1)]
    assert layout.ram_size == 0x1_0000_0000


def test_numa_node_boundary_can_fall_mid_chunk() -> None:
    layout = new_with_numa([2 * GB, 2 * GB], [R(0xC000_0000, 0x1_0000_0000)])
    assert list(layout.ram) == [
        N(0, 0x8000_0000, 0),
        N(0x8000_0000, 0xC000_0000, 1),
        N(0x1_0000_0000, 0x1_4000_0000, 1),
    ]


def test_numa_three_nodes() -> None:
    layout = new_with_numa([GB, GB, GB], [])
    assert list(layout.ram) == [
        N(0, 0x4000_0000, 0),
        N(0x4000_0000, 0x8000_0000, 1),
        N(0x8000_0000, 0xC000_0000, 2),
    ]


def test_numa_single_node_matches_new() -> None:
    assert new(TB, MMIO).ram == new_with_numa([TB], MMIO).ram


@pytest.mark.parametrize(
    ("sizes", "message"),
    [([], "empty NUMA"), ([GB + 1], "NUMA node"), ([0], "NUMA node"), ([GB, 0], "NUMA node")],
)
def test_numa_bad_inputs(sizes: list[int], message: str) -> None:
    with pytest.raises(VmLayoutError, match=message):
        new_with_numa(sizes, [])


def test_max_ram_below_4gb_is_strictly_below() -> None:
    assert new(TB, MMIO).max_ram_below_4gb() == 0xC000_0000
    assert from_ranges([N(0, 0x1_0000_0000)], []).max_ram_below_4gb() is None


def test_end_of_layout_ignores_empty_mmio_placeholder() -> None:
    layout = from_resolved_ranges(
        [N(0, 0x8000_0000)],
        [R(0xF800_0000, 0x1_0000_0000), R(0x1_0000_0000, 0x1_0000_0000)],
        [],
        [],
        None,
    )
    assert layout.end_of_layout == 0x1_0000_0000
    assert layout.mmio[1] == R(0x1_0000_0000, 0x1_0000_0000)
