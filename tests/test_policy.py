"""Spec 02: resolver policy unit tests (§9), worked examples (§10) and invariants."""

from __future__ import annotations

import dataclasses
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmlayout.allocator import PlacedRangeKind, PlacementRecord
from vmlayout.config import config_from_dict
from vmlayout.errors import VmLayoutError
from vmlayout.layout import AddressType, MemoryRangeWithNode
from vmlayout.policy import (
    Arch,
    DynamicMmio,
    FixedMmio,
    IommuKind,
    ResolvedLayout,
    RootComplexConfig,
    VmConfig,
    Vtl2Layout,
    resolve,
)
from vmlayout.ranges import EMPTY, FOUR_GIB, GIB, MIB
from vmlayout.ranges import MemoryRange as R

X86, ARM = Arch.X86_64, Arch.AARCH64
BOTH = pytest.mark.parametrize("arch", [X86, ARM], ids=["x86_64", "aarch64"])
LOW = {X86: R(0xF800_0000, FOUR_GIB), ARM: R(0xE000_0000, FOUR_GIB)}


def cfg(arch: Arch = X86, nodes: tuple[int, ...] = (2 * GIB,), **kw: Any) -> VmConfig:
    """The reference tests' defaults: arch low default, high 512 MiB, width 46."""
    fields: dict[str, Any] = {
        "chipset_low_mmio_size": arch.default_low_mmio_size,
        "chipset_high_mmio_size": 512 * MIB,
    }
    fields.update(kw)
    return VmConfig(arch=arch, node_mem_sizes=nodes, **fields)


def rc(name: str = "rc0", **kw: Any) -> RootComplexConfig:
    base: dict[str, Any] = {
        "segment": 0,
        "start_bus": 0,
        "end_bus": 0,
        "low_mmio": DynamicMmio(64 * MIB),
        "high_mmio": DynamicMmio(GIB),
    }
    base.update(kw)
    return RootComplexConfig(name=name, **base)


def ram(r: ResolvedLayout) -> list[tuple[int, int, int]]:
    return [(m.range.start, m.range.end, m.vnode) for m in r.memory_layout.ram]


@BOTH
def test_basic_ram_placement(arch: Arch) -> None:
    r = resolve(cfg(arch))
    assert ram(r) == [(0, 0x8000_0000, 0)]
    assert r.chipset.low == LOW[arch]
    assert r.chipset.high == R(FOUR_GIB, 0x1_2000_0000)


@BOTH
def test_ram_splits_around_arch_reserved_zone_with_gb_alignment(arch: Arch) -> None:
    r = resolve(cfg(arch, (4 * GIB,)))
    assert ram(r) == [(0, 0xC000_0000, 0), (FOUR_GIB, 0x1_4000_0000, 0)]
    assert r.chipset.high == R(0x1_4000_0000, 0x1_6000_0000)
    zone = arch.reserved_zone
    assert not any(m.range.overlaps(zone) for m in r.memory_layout.ram)


@BOTH
def test_numa_preserves_node_ordering(arch: Arch) -> None:
    r = resolve(cfg(arch, (2 * GIB, 2 * GIB)))
    assert ram(r) == [
        (0, 0x8000_0000, 0),
        (0x8000_0000, 0xC000_0000, 1),
        (FOUR_GIB, 0x1_4000_0000, 1),
    ]
    assert r.chipset.high == R(0x1_4000_0000, 0x1_6000_0000)


@BOTH
def test_chipset_mmio_is_resolved(arch: Arch) -> None:
    r = resolve(cfg(arch))
    assert r.chipset.low.size == arch.default_low_mmio_size
    assert r.chipset.low.end == FOUR_GIB and r.chipset.low.contains(arch.reserved_zone)
    assert r.chipset.high == R(FOUR_GIB, 0x1_2000_0000)
    assert r.chipset.vtl2 == EMPTY


@BOTH
def test_pcie_dynamic_intents_are_resolved(arch: Arch) -> None:
    r = resolve(cfg(arch, pcie_root_complexes=(rc(),)))
    (rc0,) = r.pcie_root_complexes
    assert (
        rc0.low_mmio == {X86: R(0xF400_0000, 0xF800_0000), ARM: R(0xDC00_0000, 0xE000_0000)}[arch]
    )
    assert rc0.high_mmio == R(FOUR_GIB, 0x1_4000_0000)
    assert r.chipset.high == R(0x1_4000_0000, 0x1_6000_0000)
    assert rc0.ecam == R(0x1_6000_0000, 0x1_6010_0000)
    assert r.layout_top == 0x1_6010_0000
    layout = r.memory_layout
    assert layout.probe_address(rc0.ecam.start) is AddressType.PCI_ECAM
    assert layout.probe_address(rc0.low_mmio.start) is AddressType.PCI_MMIO
    assert layout.probe_address(rc0.high_mmio.start) is AddressType.PCI_MMIO


@BOTH
def test_pcie_ecam_can_be_placed_below_4gb(arch: Arch) -> None:
    r = resolve(cfg(arch, (512 * MIB,), pcie_root_complexes=(rc(),), pcie_ecam_below_4gb=True))
    (rc0,) = r.pcie_root_complexes
    assert ram(r) == [(0, 0x2000_0000, 0)]
    if arch is X86:
        assert rc0.low_mmio == R(0xF400_0000, 0xF800_0000)
        assert rc0.ecam == R(0xF3F0_0000, 0xF400_0000)
    else:
        assert rc0.low_mmio == R(0xDC00_0000, 0xE000_0000)
        assert rc0.ecam == R(0xDBF0_0000, 0xDC00_0000)
    assert rc0.high_mmio == R(FOUR_GIB, 0x1_4000_0000)
    assert r.chipset.high == R(0x1_4000_0000, 0x1_6000_0000)


@BOTH
def test_shared_segment_gets_contiguous_ecam(arch: Arch) -> None:
    rcs = (
        rc("rc0", end_bus=15, low_mmio=DynamicMmio(32 * MIB)),
        rc("rc1", start_bus=16, end_bus=31, low_mmio=DynamicMmio(32 * MIB)),
    )
    r = resolve(cfg(arch, pcie_root_complexes=rcs))
    rc0, rc1 = r.pcie_root_complexes
    base = 0xF800_0000 if arch is X86 else 0xE000_0000
    assert rc0.low_mmio == R(base - 32 * MIB, base)
    assert rc1.low_mmio == R(base - 64 * MIB, base - 32 * MIB)
    assert rc0.high_mmio == R(FOUR_GIB, 0x1_4000_0000)
    assert rc1.high_mmio == R(0x1_4000_0000, 0x1_8000_0000)
    assert r.chipset.high == R(0x1_8000_0000, 0x1_A000_0000)
    assert r.memory_layout.pci_ecam == (R(0x1_A000_0000, 0x1_A200_0000),)
    assert rc0.ecam == R(0x1_A000_0000, 0x1_A100_0000)
    assert rc1.ecam == R(0x1_A100_0000, 0x1_A200_0000)
    assert rc0.ecam_bus0_base == rc1.ecam_bus0_base == 0x1_A000_0000


def test_full_bus_range_ecam_does_not_overflow() -> None:
    r = resolve(cfg(pcie_root_complexes=(rc(end_bus=255),)))
    (rc0,) = r.pcie_root_complexes
    assert rc0.ecam == R(0x1_6000_0000, 0x1_7000_0000)
    assert rc0.low_mmio == R(0xF400_0000, 0xF800_0000)


def test_sub_gb_numa_nodes_use_two_mb_alignment() -> None:
    r = resolve(cfg(nodes=(512 * MIB, 512 * MIB)))
    assert ram(r) == [(0, 0x2000_0000, 0), (0x2000_0000, 0x4000_0000, 1)]
    assert r.chipset.high == R(FOUR_GIB, 0x1_2000_0000)


def test_vtl2_is_allocated_after_all_mmio() -> None:
    r = resolve(cfg(nodes=(4 * GIB,), vtl2_layout=Vtl2Layout(2 * MIB, 0x1000)))
    assert r.memory_layout.vtl2_range == R(0x1_6000_0000, 0x1_6020_0000)


def test_vtl2_does_not_change_ram_placement() -> None:
    with_vtl2 = resolve(cfg(vtl2_layout=Vtl2Layout(2 * MIB, 0x1000)))
    assert ram(with_vtl2) == ram(resolve(cfg())) == [(0, 0x8000_0000, 0)]
    assert with_vtl2.memory_layout.vtl2_range == R(0x1_2000_0000, 0x1_2020_0000)


def test_deterministic_for_same_inputs() -> None:
    a, b = resolve(cfg(nodes=(2 * GIB, 3 * GIB))), resolve(cfg(nodes=(2 * GIB, 3 * GIB)))
    assert a == b
    assert ram(a) == [
        (0, 0x8000_0000, 0),
        (0x8000_0000, 0xC000_0000, 1),
        (FOUR_GIB, 0x1_8000_0000, 1),
    ]
    assert a.chipset.high == R(0x1_8000_0000, 0x1_A000_0000)
    assert a.memory_layout.end_of_layout == 0x1_A000_0000


def test_host_width_validation_happens_after_allocation() -> None:
    with pytest.raises(VmLayoutError) as caught:
        resolve(cfg(nodes=(4 * GIB,), physical_address_size=32))
    assert caught.value.kind == "address_width_exceeded"
    assert "memory layout ends at 0x160000000, which exceeds the address width of 32 bits" in str(
        caught.value
    )


def test_layout_ending_exactly_at_the_width_limit_is_accepted() -> None:
    # 2 GiB RAM and no high window: the layout tops out at exactly 2^32.
    r = resolve(cfg(chipset_high_mmio_size=0, physical_address_size=32))
    assert r.layout_top == FOUR_GIB


@BOTH
def test_virtio_mmio_slots_are_allocated_in_mmio32(arch: Arch) -> None:
    r = resolve(cfg(arch, virtio_mmio_count=3))
    end = LOW[arch].start
    assert r.virtio_mmio == R(end - 0x3000, end)


def test_virtio_mmio_does_not_move_ram_and_zero_gives_empty() -> None:
    r = resolve(cfg(virtio_mmio_count=2))
    assert r.virtio_mmio == R(0xF7FF_E000, 0xF800_0000)
    assert ram(r) == ram(resolve(cfg()))
    assert resolve(cfg()).virtio_mmio == EMPTY


def test_vtl2_chipset_mmio_is_post_mmio() -> None:
    r = resolve(cfg(vtl2_chipset_mmio_size=GIB))
    assert r.chipset.vtl2 == R(0x1_2000_0000, 0x1_6000_0000)
    assert r.chipset.high == R(FOUR_GIB, 0x1_2000_0000)
    assert r.memory_layout.mmio == (r.chipset.low, r.chipset.high, r.chipset.vtl2)
    assert r.memory_layout.end_of_layout == 0x1_6000_0000
    assert ram(r) == ram(resolve(cfg()))


@BOTH
def test_disabled_chipset_mmio_still_reports_arch_reserved(arch: Arch) -> None:
    r = resolve(dataclasses.replace(cfg(arch), chipset_low_mmio_size=0, chipset_high_mmio_size=0))
    assert r.chipset.low == arch.reserved_zone
    assert r.chipset.high == R(FOUR_GIB, FOUR_GIB) and r.chipset.high.is_empty()
    assert r.memory_layout.mmio == (r.chipset.low, r.chipset.high)
    assert r.layout_top == FOUR_GIB


@BOTH
def test_asymmetric_chipset_mmio_is_accepted(arch: Arch) -> None:
    no_high = resolve(dataclasses.replace(cfg(arch), chipset_high_mmio_size=0))
    assert no_high.chipset.low == LOW[arch] and no_high.chipset.high.is_empty()
    no_low = resolve(dataclasses.replace(cfg(arch), chipset_low_mmio_size=0))
    assert no_low.chipset.low == arch.reserved_zone
    assert no_low.chipset.high == R(FOUR_GIB, 0x1_2000_0000)


def test_fixed_low_mmio_above_4gb_is_rejected() -> None:
    bad = rc(low_mmio=FixedMmio(0x1_4000_0000, 0x1_8000_0000))
    with pytest.raises(VmLayoutError) as caught:
        resolve(cfg(pcie_root_complexes=(bad,)))
    assert caught.value.kind == "fixed_low_mmio_above_4gb"
    assert str(caught.value) == (
        "pcie-rc0-low-mmio: fixed low MMIO range 0x1_4000_0000-0x1_8000_0000 "
        "must end at or below 4 GiB"
    )


def test_vtl2_framebuffer_allocation_and_absence() -> None:
    r = resolve(cfg(vtl2_framebuffer_size=8 * MIB))
    assert r.vtl2_framebuffer_base == 0x1_2000_0000
    assert resolve(cfg()).vtl2_framebuffer_base is None


def test_ecam_below_256_mib_is_rejected() -> None:
    # Low window fills 32-bit space down to 256 MiB + ECAM: ECAM lands below the floor.
    config = dataclasses.replace(
        cfg(nodes=(64 * MIB,), pcie_root_complexes=(rc(end_bus=15),), pcie_ecam_below_4gb=True),
        chipset_low_mmio_size=FOUR_GIB - 0x1000_0000 - 64 * MIB,
    )
    with pytest.raises(VmLayoutError, match='PCIe root complex "rc0": ECAM at 0x') as caught:
        resolve(config)
    assert caught.value.kind == "ecam_below_minimum"


def test_ram_start_address_reserves_low_memory() -> None:
    r = resolve(cfg(ARM, ram_start_address=GIB))
    assert ram(r)[0][0] == GIB
    assert r.placed[0].kind is PlacedRangeKind.RESERVED and r.placed[0].tag == "low-ram-gap"


@pytest.mark.parametrize(
    ("nodes", "kind"),
    [
        ((), "no_numa_nodes"),
        ((0, 0), "zero_ram"),
        ((GIB, 0x1001), "node_size_unaligned"),
        (((1 << 63), (1 << 63)), "ram_size_overflow"),
    ],
)
def test_node_size_validation(nodes: tuple[int, ...], kind: str) -> None:
    with pytest.raises(VmLayoutError) as caught:
        resolve(cfg(nodes=nodes))
    assert caught.value.kind == kind


def test_memoryless_nodes_are_allowed() -> None:
    assert ram(resolve(cfg(nodes=(0, 2 * GIB)))) == [(0, 0x8000_0000, 1)]


# --- worked examples (§10) -----------------------------------------------------------


def placed(r: ResolvedLayout) -> list[tuple[int, int, str]]:
    return [(p.range.start, p.range.end, p.tag) for p in r.placed]


def test_example_c_small_numa_nodes_full_map() -> None:
    r = resolve(cfg(nodes=(512 * MIB, 512 * MIB)))
    assert placed(r) == [
        (0, 0x2000_0000, "ram0"),
        (0x2000_0000, 0x4000_0000, "ram1"),
        (0xF800_0000, FOUR_GIB, "chipset-low-mmio"),
        (FOUR_GIB, 0x1_2000_0000, "chipset-high-mmio"),
    ]
    assert r.memory_layout.mmio == (R(0xF800_0000, FOUR_GIB), R(FOUR_GIB, 0x1_2000_0000))
    assert resolve(cfg(ARM, (512 * MIB, 512 * MIB))).chipset.low == R(0xE000_0000, FOUR_GIB)


def test_example_d_vtl2_does_not_move_vtl0() -> None:
    r = resolve(
        cfg(
            vtl2_chipset_mmio_size=GIB,
            vtl2_layout=Vtl2Layout(2 * MIB, 0x1000),
            vtl2_framebuffer_size=8 * MIB,
        )
    )
    assert placed(r) == [
        (0, 0x8000_0000, "ram0"),
        (0xF800_0000, FOUR_GIB, "chipset-low-mmio"),
        (FOUR_GIB, 0x1_2000_0000, "chipset-high-mmio"),
        (0x1_2000_0000, 0x1_6000_0000, "vtl2-chipset-mmio"),
        (0x1_6000_0000, 0x1_6020_0000, "vtl2"),
        (0x1_6020_0000, 0x1_60A0_0000, "vtl2-framebuffer"),
    ]
    assert r.vtl2_framebuffer_base == 0x1_6020_0000
    assert r.memory_layout.end_of_layout == 0x1_6000_0000
    assert r.layout_top == 0x1_60A0_0000
    plain = resolve(cfg())
    assert (plain.chipset.low, plain.chipset.high) == (r.chipset.low, r.chipset.high)


def test_example_e_pcie_virtio_iommu_full_map() -> None:
    r = resolve(
        cfg(
            nodes=(4 * GIB,), pcie_root_complexes=(rc(iommu=IommuKind.AMD_VI),), virtio_mmio_count=2
        )
    )
    assert placed(r) == [
        (0, 0xC000_0000, "ram0"),
        (0xF3FF_A000, 0xF3FF_C000, "virtio-mmio"),
        (0xF3FF_C000, 0xF400_0000, "amd-iommu-0"),
        (0xF400_0000, 0xF800_0000, "pcie-rc0-low-mmio"),
        (0xF800_0000, FOUR_GIB, "chipset-low-mmio"),
        (FOUR_GIB, 0x1_4000_0000, "ram0"),
        (0x1_4000_0000, 0x1_8000_0000, "pcie-rc0-high-mmio"),
        (0x1_8000_0000, 0x1_A000_0000, "chipset-high-mmio"),
        (0x1_A000_0000, 0x1_A010_0000, "pcie-seg0-ecam"),
    ]
    assert r.iommu_kind is IommuKind.AMD_VI
    assert r.iommu_ranges == (R(0xF3FF_C000, 0xF400_0000),)


# --- properties over random configs -----------------------------------------------------

_size_mib = st.integers(0, 4096).map(lambda n: n * MIB)


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    arch = draw(st.sampled_from(["x86_64", "aarch64"]))
    iommu = draw(
        st.sampled_from([None, "smmu"] if arch == "aarch64" else [None, "amd_vi", "intel_vtd"])
    )
    rcs = []
    bus = 0
    for index in range(draw(st.integers(0, 3))):
        width = draw(st.integers(1, 64))
        if bus + width > 256:
            break
        rcs.append(
            {
                "name": f"rc{index}",
                "segment": draw(st.integers(0, 1)),
                "start_bus": bus,
                "end_bus": bus + width - 1,
                "low_mmio": {"size": draw(st.integers(1, 64)) * 2 * MIB},
                "high_mmio": {"size": draw(st.integers(1, 16)) * GIB},
                "cxl": draw(st.sampled_from([None, {"hdm_size": 256 * MIB}])),
                "iommu": draw(st.sampled_from([None, iommu])),
            }
        )
        bus += width
    vtl2 = draw(st.sampled_from([None, {"size": 64 * MIB, "alignment": 2 * MIB}]))
    return {
        "arch": arch,
        "node_mem_sizes": draw(st.lists(_size_mib, min_size=1, max_size=4)),
        "chipset_low_mmio_size": draw(st.integers(0, 1024)) * MIB,
        "chipset_high_mmio_size": draw(st.sampled_from([0, 2 * MIB, 512 * MIB, 64 * GIB])),
        "vtl2_chipset_mmio_size": draw(st.sampled_from([0, GIB])),
        "pcie_root_complexes": rcs,
        "virtio_mmio_count": draw(st.integers(0, 40)),
        "pcie_ecam_below_4gb": draw(st.booleans()),
        "vtl2_layout": vtl2,
        "ram_start_address": draw(st.sampled_from([0, GIB])),
        "vtl2_framebuffer_size": draw(st.sampled_from([0, 8 * MIB])),
        "physical_address_size": draw(st.integers(36, 52)),
    }


def _try_resolve(
    data: dict[str, Any], trace: list[PlacementRecord] | None = None
) -> ResolvedLayout | None:
    try:
        return resolve(config_from_dict(data), trace)
    except VmLayoutError as error:
        assert error.kind in {
            "zero_ram",
            "exhausted",
            "address_width_exceeded",
            "ecam_below_minimum",
            "fixed_overlap",
        }, error
        return None


@settings(max_examples=200, deadline=None)
@given(configs())
def test_resolved_layout_invariants(data: dict[str, Any]) -> None:
    trace: list[PlacementRecord] = []
    r = _try_resolve(data, trace)
    if r is None:
        return
    for record in trace:
        assert all(extent.start % record.alignment == 0 for extent in record.ranges), record
    config = r.config
    placed_ranges = [p for p in r.placed if p.kind is not PlacedRangeKind.RESERVED]
    for a, b in pairwise(placed_ranges):
        assert a.range.end <= b.range.start, (a, b)
    by_node: dict[int, int] = {}
    for m in r.memory_layout.ram:
        by_node[m.vnode] = by_node.get(m.vnode, 0) + m.range.size
        alignment = 2 * MIB if config.node_mem_sizes[m.vnode] < GIB else GIB
        assert m.range.start % alignment == 0
    assert by_node == {i: s for i, s in enumerate(config.node_mem_sizes) if s}
    assert r.chipset.low.end == FOUR_GIB
    assert r.chipset.low.contains(config.arch.reserved_zone)
    assert r.chipset.high.is_empty() == (config.chipset_high_mmio_size == 0)
    assert r.chipset.high.start % (2 * MIB) == 0
    assert r.layout_top <= 1 << config.physical_address_size
    for rc_range in r.pcie_root_complexes:
        assert rc_range.high_mmio.start % GIB == 0 and rc_range.low_mmio.start % (2 * MIB) == 0
        assert rc_range.low_mmio.end <= FOUR_GIB and rc_range.ecam.start >= 0x1000_0000


@settings(max_examples=60, deadline=None)
@given(configs())
def test_identical_input_gives_identical_output(data: dict[str, Any]) -> None:
    def outcome() -> object:
        try:
            return resolve(config_from_dict(data))
        except VmLayoutError as error:
            return error.kind, error.message

    assert outcome() == outcome()


@settings(max_examples=100, deadline=None)
@given(configs())
def test_width_error_raised_exactly_when_layout_top_exceeds_width(data: dict[str, Any]) -> None:
    wide = resolve_or_none({**data, "physical_address_size": 63})
    if wide is None:
        return
    limit = 1 << data["physical_address_size"]
    if wide.layout_top > limit:
        with pytest.raises(VmLayoutError) as caught:
            resolve(config_from_dict(data))
        assert caught.value.kind == "address_width_exceeded"
    else:
        assert resolve(config_from_dict(data)).placed == wide.placed


def resolve_or_none(data: dict[str, Any]) -> ResolvedLayout | None:
    try:
        return resolve(config_from_dict(data))
    except VmLayoutError:
        return None


def test_memory_range_with_node_text_form() -> None:
    assert str(MemoryRangeWithNode(R(0, 0x4000_0000), 0)) == "0x0-0x4000_0000(0)"


def test_each_root_complex_carries_its_own_iommu_window() -> None:
    """IOMMU windows belong to root complexes by name, not by position in a list."""
    rcs = (
        rc("a", segment=0, iommu=IommuKind.SMMU),
        rc("b", segment=1),
        rc("c", segment=2, iommu=IommuKind.SMMU),
    )
    r = resolve(cfg(ARM, pcie_root_complexes=rcs))
    a, b, c = r.pcie_root_complexes
    placed = {p.tag: p.range for p in r.placed}
    assert (a.iommu, b.iommu, c.iommu) == (placed["smmu-0"], EMPTY, placed["smmu-1"])
    assert r.iommu_ranges == (a.iommu, c.iommu)
