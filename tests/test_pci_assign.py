"""Spec 06 rule by rule: bus numbering, probing, pools, sizing, placement, pins, errors."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmlayout.devices import Bar, FunctionKind, PciFunction, devices_from_data
from vmlayout.errors import VmLayoutError
from vmlayout.pci import AssignmentParams, PciAssignment, assign_functions
from vmlayout.pci.enumerate import probe_bars
from vmlayout.ranges import EMPTY, FOUR_GIB, GIB, KIB, MIB, MemoryRange

LOW = MemoryRange(0xC000_0000, 0xFC00_0000)
HIGH = MemoryRange(0x40_0000_0000, 0x80_0000_0000)


def run(topology: list[dict[str, Any]], **params: Any) -> PciAssignment:
    settings_: dict[str, Any] = {"start_bus": 0, "end_bus": 255, "low_mmio": LOW, "high_mmio": HIGH}
    settings_.update(params)
    return assign_functions(devices_from_data(topology, "devices"), AssignmentParams(**settings_))


def bar(index: int, size: int, bits: int = 32, pref: bool = False, **extra: Any) -> dict[str, Any]:
    return {"index": index, "size": size, "bits": bits, "prefetchable": pref, **extra}


def port(device: int, children: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "root_port", "device": device, "children": children, **extra}


def endpoint(device: int, bars: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "endpoint", "device": device, "bars": bars, **extra}


def addresses(result: PciAssignment) -> dict[tuple[str, int], int]:
    return {(b.bdf, b.index): b.address for b in result.bars}


def windows(result: PciAssignment) -> dict[str, tuple[Any, Any]]:
    return {w.bdf: (w.mem, w.pref) for w in result.bridge_windows}


GPU = [bar(0, 16 * MIB), bar(1, 32 * GIB, 64, True), bar(3, 32 * MIB, 64, True)]


def test_worked_example_a_two_root_ports_and_a_root_bus_endpoint() -> None:
    result = run(
        [
            port(0, [endpoint(0, GPU)]),
            port(1, [endpoint(0, [bar(0, 16 * KIB, 64, False)])]),
            endpoint(2, [bar(1, 4 * KIB), bar(4, 16 * KIB, 64, True)]),
        ]
    )
    assert [(b.bdf, b.secondary, b.subordinate) for b in result.buses] == [
        ("00:00.0", 1, 1),
        ("00:01.0", 2, 2),
    ]
    got = addresses(result)
    assert got[("01:00.0", 0)] == 0xC000_0000
    assert got[("02:00.0", 0)] == 0xC100_0000  # 64-bit non-prefetchable: mem32
    assert got[("00:02.0", 1)] == 0xC110_0000
    assert got[("01:00.0", 1)] == 0x40_0000_0000
    assert got[("01:00.0", 3)] == 0x48_0000_0000
    assert got[("00:02.0", 4)] == 0x48_0200_0000
    assert windows(result)["00:00.0"][1] == (0x40_0000_0000, 0x48_01FF_FFFF)
    assert windows(result)["00:01.0"] == ((0xC100_0000, 0xC10F_FFFF), None)


def test_worked_example_b_mem64_falls_back_after_mem32_in_low() -> None:
    sriov = {
        "total_vfs": 8,
        "vf_offset": 1,
        "vf_stride": 1,
        "vf_bars": [bar(0, 128 * KIB, 64, True)],
    }
    result = run(
        [
            port(0, [endpoint(0, [bar(0, 32 * MIB, 64, True)], sriov=sriov)], ari_forwarding=True),
            endpoint(1, [bar(0, 64 * KIB)]),
        ],
        low_mmio=MemoryRange(0xE000_0000, 0xF000_0000),
        high_mmio=EMPTY,
    )
    assert result.ari_forwarding_enabled == ("00:00.0",)
    assert result.ari_capable_hierarchy == ("01:00.0",)
    assert addresses(result)[("00:01.0", 0)] == 0xE000_0000
    assert addresses(result)[("01:00.0", 0)] == 0xE200_0000
    assert result.vf_bars[0].address == 0xE400_0000
    assert result.vf_bars[0].total_size == 8 * 128 * KIB
    assert windows(result)["00:00.0"] == (None, (0xE200_0000, 0xE40F_FFFF))


def test_worked_example_c_alignment_eats_the_window_and_have_is_the_whole_window() -> None:
    with pytest.raises(VmLayoutError) as caught:
        run(
            [endpoint(0, [bar(0, 32 * GIB, 64, True), bar(2, 32 * GIB, 64, True)])],
            high_mmio=MemoryRange(0x40_1000_0000, 0x50_1000_0000),
        )
    assert caught.value.kind == "mmio_exhaustion"
    assert caught.value.message == (
        "high_mmio MMIO exhaustion: need 0x1000000000 bytes (alignment 0x800000000), "
        "have 0x1000000000"
    )


def test_mem64_is_reported_as_high_mmio_even_when_it_fell_back_to_low() -> None:
    with pytest.raises(VmLayoutError, match=r"^high_mmio MMIO exhaustion"):
        run([endpoint(0, [bar(0, GIB, 64, True)])], low_mmio=LOW, high_mmio=EMPTY)


def test_mem32_never_falls_back_to_high() -> None:
    with pytest.raises(VmLayoutError) as caught:
        run([endpoint(0, [bar(0, 4 * KIB)])], low_mmio=EMPTY)
    assert caught.value.message == (
        "low_mmio MMIO exhaustion: need 0x100000 bytes (alignment 0x100000), have 0x0"
    )


def test_buses_are_numbered_depth_first_and_subordinate_covers_the_subtree() -> None:
    switch = {
        "type": "switch_upstream",
        "device": 0,
        "children": [
            {"type": "switch_downstream", "device": d, "children": [endpoint(0, [])]}
            for d in range(2)
        ],
    }
    result = run([port(0, [switch]), port(1, [])], start_bus=0x10)
    assert [(b.bdf, b.primary, b.secondary, b.subordinate) for b in result.buses] == [
        ("10:00.0", 0x10, 0x11, 0x14),
        ("11:00.0", 0x11, 0x12, 0x14),
        ("12:00.0", 0x12, 0x13, 0x13),
        ("12:01.0", 0x12, 0x14, 0x14),
        ("10:01.0", 0x10, 0x15, 0x15),
    ]


def test_bus_exhaustion_names_the_first_bridge_without_a_bus() -> None:
    with pytest.raises(VmLayoutError) as caught:
        run([port(0, [port(0, [])]), port(1, [])], start_bus=4, end_bus=6)
    assert caught.value.kind == "bus_exhaustion"
    assert caught.value.message == "bus number exhaustion at bridge 04:01.0"


def sriov_port(device: int, vfs: int, offset: int, stride: int = 1) -> dict[str, Any]:
    sriov = {"total_vfs": vfs, "vf_offset": offset, "vf_stride": stride, "vf_bars": []}
    return port(device, [endpoint(0, [], sriov=sriov)])


def test_sriov_vfs_on_later_buses_reserve_them() -> None:
    # PF 01:00.0 (rid 0x100); the last VF is rid 0x100 + 0x200 + 1 = 0x301 -> bus 3.
    result = run([sriov_port(0, 2, 0x200), port(1, [])])
    assert [(b.bdf, b.secondary, b.subordinate) for b in result.buses] == [
        ("00:00.0", 1, 3),
        ("00:01.0", 4, 4),
    ]


def test_sriov_vfs_on_the_pf_bus_reserve_nothing() -> None:
    result = run([sriov_port(0, 4, 1), port(1, [])])
    assert [(b.secondary, b.subordinate) for b in result.buses] == [(1, 1), (2, 2)]


def test_sriov_vf_bus_beyond_end_bus_is_bus_exhaustion_naming_the_pf() -> None:
    with pytest.raises(VmLayoutError, match=r"^bus number exhaustion at bridge 01:00\.0$"):
        run([sriov_port(0, 2, 0x200)], end_bus=2)


def test_sriov_vf_buses_already_given_to_a_bridge_conflict() -> None:
    pf_after_port = [
        port(0, []),
        endpoint(1, [], sriov={"total_vfs": 1, "vf_offset": 0x100, "vf_stride": 1}),
    ]
    with pytest.raises(VmLayoutError) as caught:
        run(pf_after_port)
    assert caught.value.kind == "sriov_bus_conflict"
    assert caught.value.message == (
        "SR-IOV VF bus conflict at 00:01.0: VFs need bus 1 but buses up to 2 are already assigned"
    )


def test_sriov_with_zero_vfs_is_no_sriov() -> None:
    sriov = {"total_vfs": 0, "vf_offset": 1, "vf_stride": 1, "vf_bars": [bar(0, 4 * KIB)]}
    assert run([endpoint(0, [], sriov=sriov)]).vf_bars == ()


def test_vf_bar_region_is_total_vfs_copies_aligned_to_one_vf_bar() -> None:
    sriov = {"total_vfs": 3, "vf_offset": 1, "vf_stride": 1, "vf_bars": [bar(0, 64 * KIB)]}
    (vf,) = run([endpoint(0, [bar(0, 16 * KIB)], sriov=sriov)]).vf_bars
    assert vf.total_size == 3 * 64 * KIB
    # Demands by alignment: the VF region (64 KiB) before the 16 KiB BAR.
    assert vf.address == LOW.start


def test_ties_keep_collection_order() -> None:
    result = run([endpoint(0, [bar(0, 4 * KIB), bar(1, 4 * KIB)]), endpoint(1, [bar(0, 4 * KIB)])])
    assert [b.address - LOW.start for b in result.bars] == [0, 4 * KIB, 8 * KIB]


def test_a_bridge_with_no_subtree_demand_has_no_window_even_with_its_own_bars() -> None:
    result = run([port(0, [], bars=[bar(0, 4 * KIB)])])
    assert windows(result) == {"00:00.0": (None, None)}
    assert addresses(result) == {("00:00.0", 0): LOW.start}


def test_non_prefetchable_and_32_bit_bars_stay_below_4_gib() -> None:
    result = run([endpoint(0, [bar(0, MIB, 64, False), bar(2, MIB, 32, True)])])
    assert all(b.address + b.size <= FOUR_GIB for b in result.bars)


def test_pinned_bars_are_ignored_without_preserve_bars() -> None:
    result = run([endpoint(0, [bar(0, 4 * KIB, pinned=0xD000_0000)])])
    assert addresses(result)[("00:00.0", 0)] == LOW.start


def test_pinned_bars_stay_and_dynamic_demands_fill_the_hole_below() -> None:
    result = run(
        [endpoint(0, [bar(0, 64 * KIB, pinned=0xD008_0000), bar(1, 4 * KIB)])],
        preserve_bars=True,
    )
    got = addresses(result)
    assert got[("00:00.0", 0)] == 0xD008_0000
    assert got[("00:00.0", 1)] == 0xD000_0000  # the constrained pool starts 1 MiB-aligned


def test_a_64_bit_prefetchable_bar_pinned_below_4_gib_is_mem32() -> None:
    result = run(
        [endpoint(0, [bar(0, MIB, 64, True, pinned=0xD000_0000)])],
        preserve_bars=True,
        high_mmio=HIGH,
    )
    assert addresses(result)[("00:00.0", 0)] == 0xD000_0000


def test_pinned_bar_misaligned() -> None:
    with pytest.raises(VmLayoutError) as caught:
        run([endpoint(0, [bar(0, MIB, pinned=0xD000_1000)])], preserve_bars=True)
    assert caught.value.kind == "pinned_bar_misaligned"
    assert caught.value.message == (
        "pinned BAR 00:00.0 index 0 at 0xd0001000 is not aligned to 0x100000"
    )


def test_pinned_bar_overlap() -> None:
    with pytest.raises(VmLayoutError) as caught:
        run(
            [endpoint(0, [bar(0, 2 * MIB, pinned=0xD000_0000), bar(1, MIB, pinned=0xD010_0000)])],
            preserve_bars=True,
        )
    assert caught.value.kind == "pinned_bar_overlap"
    assert caught.value.message == (
        "pinned BAR regions overlap: 0xd0000000..0xd0200000 and 0xd0100000..0xd0200000"
    )


def test_a_64_bit_non_prefetchable_bar_pinned_above_4_gib_is_out_of_aperture() -> None:
    with pytest.raises(VmLayoutError) as caught:
        run([endpoint(0, [bar(0, MIB, 64, False, pinned=HIGH.start)])], preserve_bars=True)
    assert caught.value.kind == "pinned_bar_out_of_aperture"
    assert caught.value.message == (
        "pinned BAR 00:00.0 index 0 at 0x4000000000+0x100000 outside low_mmio aperture"
    )


def test_errors_of_the_bus_walk_come_before_pin_errors() -> None:
    with pytest.raises(VmLayoutError) as caught:
        run(
            [endpoint(0, [bar(0, MIB, pinned=0xD000_1000)]), port(1, [])],
            preserve_bars=True,
            start_bus=255,
        )
    assert caught.value.kind == "bus_exhaustion"


def test_alignment_errors_come_before_overlap_errors() -> None:
    with pytest.raises(VmLayoutError) as caught:
        run(
            [
                endpoint(0, [bar(0, 2 * MIB, pinned=0xD000_0000), bar(1, MIB, pinned=0xD010_0000)]),
                endpoint(1, [bar(0, MIB, pinned=0xE000_1000)]),
            ],
            preserve_bars=True,
        )
    assert caught.value.kind == "pinned_bar_misaligned"


def test_two_bars_of_2_63_bytes_are_an_mmio_exhaustion() -> None:
    """Both are valid 64-bit BARs; naturally aligned at pool offsets 0 and 2**63 they
    need 2**64 bytes, which no window below 2**64 holds (issue 20: an assertion)."""
    huge = 1 << 63
    with pytest.raises(VmLayoutError) as caught:
        run([endpoint(0, [bar(0, huge, 64, True), bar(2, huge, 64, True)])])
    assert caught.value.kind == "mmio_exhaustion"
    assert f"need {1 << 64:#x} bytes (alignment {huge:#x})" in caught.value.message


def test_a_demand_that_only_fits_above_a_pin_near_2_64_is_an_mmio_exhaustion() -> None:
    """A pin one page below the top of a window at the top of the address space: the
    pool starts at the pin's 1 MiB boundary, 2**64 - 1 MiB, and the 2**63-byte BAR's
    first aligned place after the pin is 2**64, so the pool needs 1 MiB + 2**63."""
    top = MemoryRange((1 << 64) - (1 << 32), (1 << 64) - 4 * KIB)
    pinned = bar(0, 4 * KIB, 64, True, pinned=(1 << 64) - 8 * KIB)
    with pytest.raises(VmLayoutError) as caught:
        run(
            [endpoint(0, [pinned, bar(2, 1 << 63, 64, True)])],
            high_mmio=top,
            preserve_bars=True,
        )
    assert caught.value.kind == "mmio_exhaustion"
    assert f"need {MIB + (1 << 63):#x} bytes" in caught.value.message


def test_ari_device_functions_come_from_its_chain_and_end_the_bus_scan() -> None:
    functions = [
        {"type": "endpoint", "device": 0, "function": f, "ari": True, "bars": [bar(0, 4 * KIB)]}
        for f in (0, 1, 8, 9)
    ]
    result = run([port(0, [*functions, endpoint(1, [bar(0, 4 * KIB)])], ari_forwarding=True)])
    assert [b.bdf for b in result.bars] == ["01:00.0", "01:00.1", "01:00.8", "01:00.9"]
    assert result.ari_forwarding_enabled == ("00:00.0",)
    assert result.unscanned == ("01:01.0",)


def test_an_ari_device_on_the_root_bus_hides_nothing() -> None:
    result = run(
        [
            {"type": "endpoint", "device": 0, "ari": True, "bars": [bar(0, 4 * KIB)]},
            endpoint(1, [bar(0, 4 * KIB)]),
        ]
    )
    assert result.unscanned == ()
    assert result.ari_forwarding_enabled == ()
    assert len(result.bars) == 2


def test_a_port_without_ari_forwarding_keeps_scanning() -> None:
    sriov = {"total_vfs": 1, "vf_offset": 1, "vf_stride": 1, "vf_bars": []}
    result = run([port(0, [endpoint(0, [], sriov=sriov), endpoint(1, [bar(0, 4 * KIB)])])])
    assert result.unscanned == ()
    assert result.ari_capable_hierarchy == ()


def test_probe_sizes_a_64_bit_bar_in_the_last_register_as_32_bit() -> None:
    (probed,) = probe_bars([Bar(5, MIB, 64, True, None)], 6, False)
    assert (probed.index, probed.size, probed.is_64bit) == (5, MIB, True)
    assert probe_bars([Bar(5, 8 * GIB, 64, True, None)], 6, False) == ()


def test_probe_reads_only_two_registers_of_a_bridge() -> None:
    probed = probe_bars([Bar(0, MIB), Bar(2, MIB)], 2, False)
    assert [p.index for p in probed] == [0]


def test_multi_function_devices_are_scanned_in_function_order() -> None:
    functions = [PciFunction(FunctionKind.ENDPOINT, 3, f, (Bar(0, 4 * KIB),)) for f in (0, 2, 5)]
    result = assign_functions(
        tuple(functions), AssignmentParams(0, 255, LOW, HIGH, preserve_bars=False)
    )
    assert [b.bdf for b in result.bars] == ["00:03.0", "00:03.2", "00:03.5"]


# -- properties -----------------------------------------------------------------------

SIZES = st.sampled_from([16, 4 * KIB, 64 * KIB, MIB, 16 * MIB, 256 * MIB, GIB, 16 * GIB])


@st.composite
def bars_strategy(draw: st.DrawFn, slots: int) -> list[dict[str, Any]]:
    out = []
    index = 0
    while index < slots and draw(st.booleans()):
        bits = 64 if index + 1 < slots and draw(st.booleans()) else 32
        size = draw(SIZES)
        if bits == 32:
            size = min(size, 256 * MIB)
        out.append(bar(index, size, bits, draw(st.booleans())))
        index += 2 if bits == 64 else 1
    return out


@st.composite
def bus_strategy(draw: st.DrawFn, depth: int) -> list[dict[str, Any]]:
    functions = []
    for device in range(draw(st.integers(0, 3))):
        if depth < 3 and draw(st.booleans()):
            functions.append(
                {
                    "type": "root_port",
                    "device": device,
                    "bars": draw(bars_strategy(2)),
                    "children": draw(bus_strategy(depth + 1)),
                }
            )
        else:
            functions.append(endpoint(device, draw(bars_strategy(6))))
    return functions


def _inside(inner: tuple[int, int], outer: tuple[int, int]) -> bool:
    return outer[0] <= inner[0] and inner[0] + inner[1] <= outer[1] + 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bus_strategy(0))
def test_assignment_is_aligned_disjoint_and_nested(topology: list[dict[str, Any]]) -> None:
    low = MemoryRange(0x8000_0000, 0xF000_0000)
    high = MemoryRange(0x100_0000_0000, 0x200_0000_0000)
    try:
        result = run(topology, low_mmio=low, high_mmio=high)
    except VmLayoutError as error:
        assert error.kind == "mmio_exhaustion"
        return
    regions = [(b.address, b.size) for b in result.bars]
    regions.sort()
    for (first, first_size), (second, _) in pairwise(regions):
        assert first + first_size <= second, "two BARs overlap"
    bridge_of_bus = {b.secondary: b.bdf for b in result.buses}
    window_of = {w.bdf: w for w in result.bridge_windows}
    parent_of = {b.bdf: int(b.bdf[:2], 16) for b in result.buses}
    for b in result.bars:
        assert b.address % b.size == 0, "BAR not naturally aligned"
        mem64 = b.is_64bit and b.prefetchable
        if not mem64:
            assert b.address + b.size <= FOUR_GIB
            assert _inside((b.address, b.size), (low.start, low.end - 1))
        else:
            assert _inside((b.address, b.size), (high.start, high.end - 1))
        bus = int(b.bdf[:2], 16)
        region = (b.address, b.size)
        while bus in bridge_of_bus:  # every enclosing bridge window holds it
            bridge = bridge_of_bus[bus]
            window = window_of[bridge].pref if mem64 else window_of[bridge].mem
            assert window is not None and _inside(region, window)
            bus = parent_of[bridge]
