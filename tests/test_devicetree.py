"""Device trees and the paravisor view (spec 05): worked examples, round trips, the
host parser's rules, paravisor functions, dtc acceptance and malformed blobs."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli import assert_one_line_error, run_cli
from tests.machines import with_vm
from tests.tools import require_tool
from tests.vectors import PROJECT_VECTORS, read_cases
from vmlayout.arch import Arch
from vmlayout.config import config_from_dict
from vmlayout.devicetree.fdt import (
    Node,
    build_fdt,
    decoded_tree,
    read_fdt,
    string,
    to_dts,
    u32,
    u32s,
    u64s,
)
from vmlayout.devicetree.linux import (
    build_linux_dtb,
    linux_dtb_of,
    linux_tree_of,
    parse_linux_chipset,
    pci_ranges,
    pcie_from_linux_tree,
)
from vmlayout.devicetree.paravisor import (
    MEMORY,
    MemoryMapEntry,
    ParavisorMmio,
    build_paravisor_dtb,
    build_vtl0_memory_layout,
    carve_vpci_relay,
    decode_mmio_ranges,
    encode_mmio_ranges,
    memory_map,
    paravisor_dtb_of,
    parse_host_tree,
    parse_paravisor_chipset,
    reconstruct_chipset,
    select_vtl2_mmio,
    shim_kernel_dtb,
    untrusted_mmio,
    usermode_vtl0_mmio,
    vpci_slot,
)
from vmlayout.errors import VmLayoutError
from vmlayout.layout import ChipsetMmioRanges, MemoryRangeWithNode
from vmlayout.platform import GicPlatform
from vmlayout.policy import resolve
from vmlayout.ranges import EMPTY, FOUR_GIB, GIB, MIB, MemoryRange

RAM = (
    MemoryRangeWithNode(MemoryRange(0, 0xE000_0000), 0),
    MemoryRangeWithNode(MemoryRange(FOUR_GIB, 0x1_2000_0000), 0),
)
LOW = MemoryRange(0xE000_0000, FOUR_GIB)
HIGH = MemoryRange(0x1_2000_0000, 0x1_4000_0000)
EMPTY_HIGH = MemoryRange(FOUR_GIB, FOUR_GIB)
VTL2 = MemoryRange(0x1_4000_0000, 0x1_4800_0000)


def node(root: Node, path: str) -> Node:
    current: Node | None = root
    for part in path.strip("/").split("/"):
        assert current is not None
        current = current.child(part)
    assert current is not None, path
    return current


# --- §9.1 / §9.2: Linux tree --------------------------------------------------------------


def test_linux_tree_vmbus_ranges_are_the_32_byte_example() -> None:
    root = read_fdt(build_linux_dtb(RAM, ChipsetMmioRanges(LOW, HIGH, EMPTY)))
    vmbus = node(root, "/openvmm/vmbus")
    assert vmbus.prop("ranges") == bytes.fromhex(
        "00000000e0000000 0000000020000000 0000000120000000 0000000020000000"
    )
    assert [k for k, _ in vmbus.properties] == [
        "#address-cells",
        "#size-cells",
        "dma-coherent",
        "ranges",
        "compatible",
        "interrupt-parent",
        "interrupts",
    ]
    assert vmbus.prop("interrupts") == bytes.fromhex("00000001 00000002 00000001")


def test_linux_tree_has_one_memory_node_per_ram_range_in_order() -> None:
    root = read_fdt(build_linux_dtb(RAM, ChipsetMmioRanges(LOW, HIGH, EMPTY)))
    memory = [c for c in root.children if c.name.startswith("memory@")]
    assert [m.name for m in memory] == ["memory@0", "memory@100000000"]
    assert memory[1].prop("reg") == u64s(FOUR_GIB, 0x2000_0000)
    assert memory[0].prop("device_type") == string("memory")
    assert root.prop("model") == string("microsoft,openvmm")


def test_linux_tree_with_empty_high_still_writes_the_pair() -> None:
    blob = build_linux_dtb(RAM, ChipsetMmioRanges(LOW, EMPTY_HIGH, EMPTY))
    ranges = node(read_fdt(blob), "/openvmm/vmbus").prop("ranges")
    assert ranges is not None and ranges[16:] == u64s(FOUR_GIB, 0)
    assert parse_linux_chipset(blob) == ChipsetMmioRanges(LOW, EMPTY_HIGH, EMPTY)


def test_linux_dts_text_shows_the_spec_cells() -> None:
    dts = to_dts(read_fdt(build_linux_dtb(RAM, ChipsetMmioRanges(LOW, HIGH, EMPTY))))
    assert "ranges = <0x0 0xe0000000 0x0 0x20000000 0x1 0x20000000 0x0 0x20000000>;" in dts
    assert "reg = <0x1 0x0 0x0 0x20000000>;" in dts
    assert "dma-coherent;" in dts


def test_linux_parse_back_rejects_a_tree_without_vmbus() -> None:
    blob = build_fdt(Node("", (("model", string("x")),)))
    with pytest.raises(VmLayoutError) as caught:
        parse_linux_chipset(blob)
    assert caught.value.kind == "missing_vmbus_node"


def test_linux_parse_back_rejects_bad_ranges_length() -> None:
    vmbus = Node(
        "vmbus",
        (
            ("#address-cells", u32(2)),
            ("#size-cells", u32(2)),
            ("ranges", u64s(1, 2, 3)),
            ("compatible", string("microsoft,vmbus")),
        ),
    )
    blob = build_fdt(Node("", (), (Node("openvmm", (), (vmbus,)),)))
    with pytest.raises(VmLayoutError) as caught:
        parse_linux_chipset(blob)
    assert caught.value.kind == "bad_ranges_length"


# --- the reference's whole tree: initrd, GIC, timer, PCIe, SMMU --------------------------------


def rc(name: str, segment: int, buses: tuple[int, int], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "segment": segment,
        "start_bus": buses[0],
        "end_bus": buses[1],
        "low_mmio": {"size": 2 * MIB},
        "high_mmio": {"size": GIB},
        **extra,
    }


def arm(**config: Any) -> Any:
    return resolve(config_from_dict({"arch": "aarch64", "node_mem_sizes": [4 * GIB], **config}))


def test_initrd_sits_16_mib_above_the_first_ram_address() -> None:
    """The loader places the initrd at RAM start + 16 MiB; with no initrd the start and
    end are equal (both written), with one the end is start + its size."""
    r = arm(ram_start_address=GIB)
    assert r.memory_layout.ram[0].range.start == GIB
    for size, end in ((0, GIB + 16 * MIB), (0x12345, GIB + 16 * MIB + 0x12345)):
        chosen = node(linux_tree_of(with_vm(r, initrd_size=size)), "/chosen")
        assert chosen.prop("linux,initrd-start") == u64s(GIB + 16 * MIB)
        assert chosen.prop("linux,initrd-end") == u64s(end)


def test_smmu_spis_are_dealt_top_down_two_per_smmu_in_root_complex_order() -> None:
    """992 interrupts: INTIDs 991/990 for the first SMMU (event, gerror), 989/988 for the
    second; DT SPI cells are INTID - 32. A v2m block of 64 takes 928..991 first."""
    r = arm(
        pcie_root_complexes=[
            rc("a", 0, (0, 15), iommu="smmu"),
            rc("b", 1, (0, 15)),
            rc("c", 2, (0, 15), iommu="smmu"),
        ]
    )
    expected = {"its": [(991, 990), (989, 988)], "v2m": [(927, 926), (925, 924)]}
    for msi, intids in expected.items():
        root = linux_tree_of(with_vm(r, gic=GicPlatform(msi=msi)))
        smmus = [c for c in root.children if c.name.startswith("smmu@")]
        assert [c.name for c in smmus] == [f"smmu@{x.start:x}" for x in r.iommu_ranges]
        for smmu, (event, gerror) in zip(smmus, intids, strict=True):
            assert smmu.prop("interrupts") == u32s(0, event - 32, 4, 0, gerror - 32, 4)
        bridges = [c for c in root.children if c.name.startswith("pcie@")]
        maps = [b.prop("iommu-map") for b in bridges]
        assert maps == [u32s(0, 5, 0, 0x10000), None, u32s(0, 6, 0, 0x10000)]
        parent = {"its": 4, "v2m": 3}[msi]
        assert all(b.prop("msi-parent") == u32(parent) for b in bridges)


def test_v2m_frame_replaces_the_its_under_the_gic() -> None:
    root = linux_tree_of(with_vm(arm(), gic=GicPlatform(msi="v2m")))
    gic = node(root, "/intc@ffff0000")
    assert [c.name for c in gic.children] == ["v2m@effe8000"]
    v2m = gic.children[0]
    assert (v2m.prop("arm,msi-base-spi"), v2m.prop("arm,msi-num-spis")) == (u32(928), u32(64))
    its = linux_tree_of(arm())
    assert node(its, "/intc@ffff0000/its@effc0000").prop("reg") == u64s(0xEFFC_0000, 0x20000)


def test_gic_redistributors_cover_every_vp_and_may_not_reach_the_distributor() -> None:
    root = linux_tree_of(with_vm(arm(), vp_count=3))
    reg = node(root, "/intc@ffff0000").prop("reg")
    assert reg == u64s(0xFFFF_0000, 0x1_0000, 0xEFFF_0000, 3 * 0x2_0000)
    cpus = node(root, "/cpus").children
    assert [c.prop("status") for c in cpus] == [string("okay")] + [string("disabled")] * 2
    assert all(c.prop("enable-method") == string("psci") for c in cpus)
    with pytest.raises(VmLayoutError) as caught:
        with_vm(arm(), vp_count=2049)
    assert "overlap the distributor" in caught.value.message


def test_timer_is_the_virtual_timer_ppi() -> None:
    timer = node(linux_tree_of(with_vm(arm(), gic=GicPlatform(virt_timer_ppi=27))), "/timer")
    assert timer.prop("interrupts") == u32s(1, 27 - 16, 8)
    assert timer.prop("interrupt-names") == string("virt")


def test_pcie_node_carries_ecam_buses_domain_and_identity_windows() -> None:
    r = arm(pcie_root_complexes=[rc("a", 3, (16, 47), preserve_bars=True)])
    (ranges,) = r.pcie_root_complexes
    bridge = node(linux_tree_of(r), f"/pcie@{ranges.ecam.start:x}")
    assert bridge.prop("reg") == u64s(ranges.ecam.start, 32 * MIB)  # 32 buses x 1 MiB
    assert bridge.prop("bus-range") == u32s(16, 47)
    assert bridge.prop("linux,pci-domain") == u32(3)
    assert bridge.prop("linux,pci-probe-only") == u32(1)
    low, high = ranges.low_mmio, ranges.high_mmio
    assert bridge.prop("ranges") == (
        u32s(0x0200_0000, 0, low.start)
        + u64s(low.start, low.size)
        + u32s(0x0300_0000)
        + u64s(high.start, high.start, high.size)
    )
    plain = linux_tree_of(arm(pcie_root_complexes=[rc("a", 0, (0, 1))]))
    assert all(c.prop("linux,pci-probe-only") is None for c in plain.children)


def test_pci_ranges_leave_out_an_empty_window() -> None:
    high = MemoryRange(0x40_0000_0000, 0x40_4000_0000)
    assert pci_ranges(EMPTY, high) == u32s(0x0300_0000) + u64s(high.start, high.start, GIB)
    assert pci_ranges(EMPTY, EMPTY) == b""


RC_CONFIGS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 7), st.booleans()), min_size=1, max_size=4
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RC_CONFIGS)
def test_pcie_nodes_read_back_as_the_resolved_root_complexes(rcs: Any) -> None:
    complexes = [
        rc(f"rc{i}", seg, (32 * block, 32 * block + 31), **({"iommu": "smmu"} if smmu else {}))
        for i, (seg, block, smmu) in enumerate(rcs)
    ]
    try:
        r = arm(pcie_root_complexes=complexes)
    except VmLayoutError:
        return  # e.g. two complexes on one bus: not this test's subject
    bridges = pcie_from_linux_tree(read_fdt(linux_dtb_of(r)))
    smmus = iter(r.iommu_ranges)
    for b, want, cfg in zip(bridges, r.pcie_root_complexes, complexes, strict=True):
        assert (b.segment, b.start_bus, b.end_bus) == (want.segment, want.start_bus, want.end_bus)
        assert (b.ecam, b.low_mmio, b.high_mmio) == (want.ecam, want.low_mmio, want.high_mmio)
        assert b.smmu == (next(smmus) if "iommu" in cfg else None)


# --- §9.3 / §9.4: paravisor host tree -------------------------------------------------------


def x86(**config: Any) -> Any:
    return resolve(config_from_dict({"node_mem_sizes": [2 * GIB, 2 * GIB], **config}))


def test_the_vtl2_range_is_a_vtl2_protectable_memory_node_of_vnode_0() -> None:
    r = x86(vtl2_layout={"size": 64 * MIB, "alignment": 2 * MIB})
    vtl2 = r.memory_layout.vtl2_range
    assert vtl2 is not None
    tree = parse_host_tree(paravisor_dtb_of(r))
    assert [(e.range, e.entry_type, e.vnode) for e in tree.memory if e.entry_type] == [(vtl2, 3, 0)]
    assert [e.range for e in tree.memory if not e.entry_type] == [
        x.range for x in r.memory_layout.ram
    ]


@pytest.mark.parametrize(
    ("vps_per_socket", "vnodes"), [(None, [0, 0, 0, 0]), (1, [0, 1, 0, 1]), (2, [0, 0, 1, 1])]
)
def test_paravisor_cpus_sit_in_the_vnode_of_their_socket(
    vps_per_socket: int | None, vnodes: list[int]
) -> None:
    """VP v in node (v // vps_per_socket) % nodes; by default one socket holds all VPs."""
    r = with_vm(x86(), vp_count=4, vps_per_socket=vps_per_socket)
    cpus = node(read_fdt(paravisor_dtb_of(r)), "/cpus").children
    assert [c.prop("numa-node-id") for c in cpus] == [u32(v) for v in vnodes]


def test_igvm_mmio_ranges_parameter_is_the_32_byte_example() -> None:
    data = encode_mmio_ranges(ChipsetMmioRanges(LOW, HIGH, VTL2))
    assert data == bytes.fromhex(
        "00000e0000000000 0000020000000000 0000120000000000 0000020000000000"
    )
    assert decode_mmio_ranges(data) == (LOW, HIGH)
    empty = encode_mmio_ranges(ChipsetMmioRanges(LOW, EMPTY_HIGH, EMPTY))
    assert empty[16:] == (0x100000).to_bytes(8, "little") + bytes(8)


def test_host_tree_matches_the_worked_example() -> None:
    root = read_fdt(build_paravisor_dtb(memory_map(RAM), ChipsetMmioRanges(LOW, HIGH, VTL2)))
    assert [c.name for c in root.children if c.name.startswith("memory")] == [
        "memory@100000000",
        "memory@0",
    ]
    vtl0 = node(root, "/bus/vmbus-vtl0@e0000000")
    assert vtl0.prop("ranges") == u64s(
        0xE000_0000, 0xE000_0000, 0x2000_0000, 0x1_2000_0000, 0x1_2000_0000, 0x2000_0000
    )
    assert vtl0.prop("microsoft,message-connection-id") == u32(1)
    vtl2 = node(root, "/bus/vmbus-vtl2@140000000")
    assert vtl2.prop("ranges") == u64s(0x1_4000_0000, 0x1_4000_0000, 0x800_0000)
    assert vtl2.prop("microsoft,message-connection-id") == u32(4)
    assert node(root, "/memory@0").prop("microsoft,igvm-type") == u32(0)


def test_host_tree_without_high_or_vtl2() -> None:
    blob = build_paravisor_dtb(memory_map(RAM), ChipsetMmioRanges(LOW, EMPTY_HIGH, EMPTY))
    root = read_fdt(blob)
    vtl2 = node(root, "/bus/vmbus-vtl2")
    assert vtl2.prop("ranges") == b""
    assert node(root, "/bus/vmbus-vtl0@e0000000").prop("ranges") == u64s(
        0xE000_0000, 0xE000_0000, 0x2000_0000, FOUR_GIB, FOUR_GIB, 0
    )
    assert parse_paravisor_chipset(blob) == ChipsetMmioRanges(LOW, EMPTY_HIGH, EMPTY)


def test_a_high_given_as_zero_zero_is_reordered_by_the_swap_rule() -> None:
    """The documented hazard: [0, 0) sorts first, so positions shift."""
    blob = build_paravisor_dtb(memory_map(RAM), ChipsetMmioRanges(LOW, EMPTY, EMPTY))
    chipset = parse_paravisor_chipset(blob)
    assert (chipset.low, chipset.high) == (EMPTY, LOW)


def vmbus_tree(ranges: bytes, vtl: int = 0) -> bytes:
    vmbus = Node(
        "vmbus",
        (
            ("#address-cells", u32(2)),
            ("#size-cells", u32(2)),
            ("compatible", string("microsoft,vmbus")),
            ("ranges", ranges),
            ("microsoft,vtl", u32(vtl)),
            ("microsoft,message-connection-id", u32(1)),
        ),
    )
    bus = Node("bus", (("compatible", string("simple-bus")), ("ranges", b"")), (vmbus,))
    return build_fdt(Node("", (), (bus,)))


@pytest.mark.parametrize(
    ("ranges", "vtl", "kind"),
    [
        (u64s(0x1000, 0x1000, 0x1000) * 3, 0, "too_many_vmbus_mmio_ranges"),
        (u64s(0x1000, 0x2000, 0x1000), 0, "vmbus_ranges_child_parent"),
        (u64s(0x1001, 0x1001, 0x1000), 0, "vmbus_ranges_not_aligned"),
        (u64s(0x1000, 0x1000, 0x1000), 1, "unexpected_vmbus_vtl"),
        (u64s(0x1000, 0x1000, 0x2000, 0x2000, 0x2000, 0x1000), 0, "vmbus_mmio_overlaps_vmbus_mmio"),
    ],
)
def test_host_parser_rules(ranges: bytes, vtl: int, kind: str) -> None:
    with pytest.raises(VmLayoutError) as caught:
        parse_host_tree(vmbus_tree(ranges, vtl))
    assert caught.value.kind == kind


def test_host_parser_ignores_trailing_bytes_and_swaps_windows() -> None:
    ranges = u64s(0x2000, 0x2000, 0x1000, 0x1000, 0x1000, 0x1000) + b"\0" * 5
    tree = parse_host_tree(vmbus_tree(ranges))
    assert tree.vtl0 is not None
    assert tree.vtl0.windows == (MemoryRange(0x1000, 0x2000), MemoryRange(0x2000, 0x3000))


# --- §6: paravisor worker -------------------------------------------------------------------


def test_reconstruction_is_positional_with_empty_defaults() -> None:
    assert reconstruct_chipset([]) == ParavisorMmio(EMPTY, EMPTY)
    assert reconstruct_chipset([LOW]) == ParavisorMmio(LOW, EMPTY)
    assert reconstruct_chipset([LOW, HIGH, VTL2]) == ParavisorMmio(LOW, HIGH)


def test_vpci_relay_takes_512_kib_from_the_top_of_high() -> None:
    mmio, vpci = carve_vpci_relay(ParavisorMmio(LOW, HIGH), enabled=True)
    assert mmio.high == MemoryRange(0x1_2000_0000, 0x1_3FF8_0000)
    assert vpci == MemoryRange(0x1_3FF8_0000, 0x1_4000_0000)
    assert vpci_slot(vpci, 63) == MemoryRange(0x1_3FFF_E000, 0x1_4000_0000)
    with pytest.raises(VmLayoutError):
        vpci_slot(vpci, 64)
    assert carve_vpci_relay(ParavisorMmio(LOW, HIGH), enabled=False) == (
        ParavisorMmio(LOW, HIGH),
        EMPTY,
    )


def test_vpci_relay_fails_without_a_high_window() -> None:
    with pytest.raises(VmLayoutError) as caught:
        carve_vpci_relay(ParavisorMmio(LOW, EMPTY_HIGH), enabled=True)
    assert "too little VTL0 MMIO space" in caught.value.message


def test_untrusted_mmio_with_vtom_lists_shifted_copies_after_the_windows() -> None:
    mmio, _ = carve_vpci_relay(ParavisorMmio(LOW, HIGH), enabled=True)
    vtom = 1 << 46
    assert untrusted_mmio(mmio, vtom, Arch.X86_64) == (
        LOW,
        MemoryRange(0x1_2000_0000, 0x1_3FF8_0000),
        MemoryRange(0x4000_E000_0000, 0x4001_0000_0000),
        MemoryRange(0x4001_2000_0000, 0x4001_3FF8_0000),
    )
    assert untrusted_mmio(mmio, 0, Arch.AARCH64) is None
    assert untrusted_mmio(ParavisorMmio(LOW, EMPTY_HIGH), 0, Arch.X86_64) == (LOW,)


def test_vtl0_layout_takes_the_shared_pool_from_the_top_of_memory() -> None:
    entries = (
        MemoryMapEntry(MemoryRange(0, 0xE000_0000), MEMORY, 0),
        MemoryMapEntry(MemoryRange(FOUR_GIB, 0x1_2000_0000), MEMORY, 0),
    )
    layout, complete, pool = build_vtl0_memory_layout(entries, ParavisorMmio(LOW, HIGH), 64 * MIB)
    assert pool == (MemoryRangeWithNode(MemoryRange(0x1_1C00_0000, 0x1_2000_0000), 0),)
    assert layout.ram[-1].range == MemoryRange(FOUR_GIB, 0x1_1C00_0000)
    assert complete.ram[-1].range == MemoryRange(FOUR_GIB, 0x1_2000_0000)
    assert layout.mmio == (LOW, HIGH)


def test_vtl0_layout_pool_can_consume_whole_ranges_and_skips_other_types() -> None:
    entries = (
        MemoryMapEntry(MemoryRange(0, 0x1000_0000), MEMORY, 0),
        MemoryMapEntry(MemoryRange(0x1000_0000, 0x1100_0000), 3, 0),
    )
    layout, _, pool = build_vtl0_memory_layout(entries, ParavisorMmio(LOW, EMPTY_HIGH), 0x1000_0000)
    assert pool == (MemoryRangeWithNode(MemoryRange(0, 0x1000_0000), 0),)
    assert [r.range for r in layout.ram] == [MemoryRange(0x1000_0000, 0x1100_0000)]
    assert layout.mmio == (LOW,)  # the empty high window is filtered out
    with pytest.raises(VmLayoutError) as caught:
        build_vtl0_memory_layout(entries, ParavisorMmio(LOW, EMPTY_HIGH), 0x2000_0000)
    assert "unable to allocate shared_pool" in caught.value.message


# --- round trips (§8) ----------------------------------------------------------------------

CONFIGS = st.fixed_dictionaries(
    {
        "node_mem_sizes": st.lists(
            st.integers(1, 2048).map(lambda n: n * 4 * MIB), min_size=1, max_size=3
        ),
        "chipset_high_mmio_size": st.sampled_from([0, 2 * MIB, 512 * MIB]),
        "vtl2_chipset_mmio_size": st.sampled_from([0, 2 * MIB, 128 * MIB]),
        "pcie_root_complexes": st.just([]),
    }
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIGS, st.sampled_from(["x86_64", "aarch64"]))
def test_parse_of_emit_returns_the_chipset_ranges(config: dict[str, Any], arch: str) -> None:
    try:
        r = resolve(config_from_dict({**config, "arch": arch}))
    except VmLayoutError:
        return
    c = r.chipset
    linux = parse_linux_chipset(build_linux_dtb(r.memory_layout.ram, c))
    assert linux == ChipsetMmioRanges(c.low, c.high, EMPTY)  # exact, empty start included
    para = build_paravisor_dtb(memory_map(r.memory_layout.ram), c)
    assert parse_paravisor_chipset(para) == c
    assert decode_mmio_ranges(encode_mmio_ranges(c)) == (c.low, c.high)
    tree = parse_host_tree(para)
    assert [e.range for e in tree.memory] == [x.range for x in r.memory_layout.ram]
    full_chain = reconstruct_chipset(usermode_vtl0_mmio(shim_kernel_dtb(para)))
    assert full_chain == ParavisorMmio(c.low, c.high)


# --- dtc and malformed blobs ----------------------------------------------------------------


def dtc() -> str:
    return require_tool("dtc", "device-tree-compiler")


@pytest.mark.parametrize(
    "chipset",
    [
        ChipsetMmioRanges(LOW, HIGH, VTL2),
        ChipsetMmioRanges(LOW, EMPTY_HIGH, EMPTY),
    ],
)
def test_dtc_accepts_every_emitted_blob(tmp_path: Path, chipset: ChipsetMmioRanges) -> None:
    tool = dtc()
    blobs = {
        "linux.dtb": build_linux_dtb(RAM, chipset),
        "paravisor.dtb": build_paravisor_dtb(memory_map(RAM), chipset),
    }
    for name, blob in blobs.items():
        (tmp_path / name).write_bytes(blob)
        result = subprocess.run(
            [tool, "-I", "dtb", "-O", "dts", str(tmp_path / name)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "microsoft,vmbus" in result.stdout


def test_dtc_is_clean_on_whole_trees_but_for_the_reference_vmbus_ranges(tmp_path: Path) -> None:
    """PCIe host bridges, SMMUs, GIC children and UARTs pass every dtc check; the only
    warnings are the VMBus node's (start, length) ranges, which is the reference's
    deliberate format (§2.3)."""
    tool = dtc()
    complexes = [rc("a", 0, (0, 63), iommu="smmu", preserve_bars=True), rc("b", 1, (0, 7))]
    r = arm(pcie_root_complexes=complexes, node_mem_sizes=[2 * GIB, 2 * GIB])
    blobs = {
        "its.dtb": linux_dtb_of(with_vm(r, vp_count=4, serial=True, initrd_size=4096)),
        "v2m.dtb": linux_dtb_of(with_vm(r, gic=GicPlatform(msi="v2m"))),
        "paravisor.dtb": paravisor_dtb_of(
            with_vm(
                x86(
                    vtl2_layout={"size": 64 * MIB, "alignment": 2 * MIB},
                    vtl2_chipset_mmio_size=GIB,
                ),
                vp_count=4,
                vps_per_socket=1,
            )
        ),
    }
    for name, blob in blobs.items():
        (tmp_path / name).write_bytes(blob)
        result = subprocess.run(
            [tool, "-I", "dtb", "-O", "dts", "-o", "/dev/null", str(tmp_path / name)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        warnings = [line for line in result.stderr.splitlines() if line.strip()]
        assert all("/openvmm/vmbus" in line for line in warnings), warnings


def test_malformed_and_truncated_dtbs_give_one_line_errors() -> None:
    rng = random.Random(5)
    seeds = [
        build_linux_dtb(RAM, ChipsetMmioRanges(LOW, HIGH, EMPTY)),
        build_paravisor_dtb(memory_map(RAM), ChipsetMmioRanges(LOW, HIGH, VTL2)),
    ]
    for i in range(3000):
        blob = bytearray(rng.choice(seeds))
        if i % 2:
            blob = blob[: rng.randrange(len(blob))]
        else:
            for _ in range(rng.randrange(1, 4)):
                blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
        for parse in (parse_linux_chipset, parse_paravisor_chipset):
            try:
                parse(bytes(blob))
            except VmLayoutError as error:
                assert "\n" not in error.message


def test_a_non_dtb_is_rejected_by_magic() -> None:
    with pytest.raises(VmLayoutError) as caught:
        read_fdt(b"\0" * 64)
    assert "magic" in caught.value.message


def test_big_ram_layouts_still_fit() -> None:
    r = resolve(config_from_dict({"arch": "aarch64", "node_mem_sizes": [GIB] * 64}))
    blob = build_linux_dtb(r.memory_layout.ram, r.chipset)
    assert parse_linux_chipset(blob).low == r.chipset.low


# --- the full chain: host tree -> shim -> usermode -> worker (§4.2, §4.3, §5, §6.1, §8) ---


def chain(chipset: ChipsetMmioRanges, vtl2_allocation: bool = False) -> ParavisorMmio:
    host = build_paravisor_dtb(memory_map(RAM), chipset)
    return reconstruct_chipset(usermode_vtl0_mmio(shim_kernel_dtb(host, vtl2_allocation)))


@pytest.mark.parametrize("high", [HIGH, EMPTY_HIGH])
def test_host_mode_chain_gives_back_low_and_high_exactly(high: MemoryRange) -> None:
    assert chain(ChipsetMmioRanges(LOW, high, VTL2)) == ParavisorMmio(LOW, high)


def test_chain_with_the_vpci_relay_shrinks_high_from_the_top() -> None:
    mmio, vpci = carve_vpci_relay(chain(ChipsetMmioRanges(LOW, HIGH, EMPTY)), enabled=True)
    assert mmio == ParavisorMmio(LOW, MemoryRange(HIGH.start, HIGH.end - 0x80000))
    assert vpci == MemoryRange(HIGH.end - 0x80000, HIGH.end)


def test_vtl2_allocation_takes_vtl2_mmio_from_the_top_of_high() -> None:
    """No host VTL2 window: size = clamp(high / 2, 128 MiB, 1 GiB) = 256 MiB here."""
    high = MemoryRange(0x1_2000_0000, 0x1_4000_0000)
    vtl0, vtl2 = select_vtl2_mmio((LOW, high), (), vtl2_allocation=True)
    assert vtl2 == (MemoryRange(0x1_3000_0000, 0x1_4000_0000),)
    assert vtl0 == (LOW, MemoryRange(0x1_2000_0000, 0x1_3000_0000))
    assert chain(ChipsetMmioRanges(LOW, high, EMPTY), vtl2_allocation=True) == ParavisorMmio(
        LOW, MemoryRange(0x1_2000_0000, 0x1_3000_0000)
    )


def test_vtl2_allocation_keeps_a_host_vtl2_window() -> None:
    assert select_vtl2_mmio((LOW, HIGH), (VTL2,), vtl2_allocation=True) == ((LOW, HIGH), (VTL2,))
    with pytest.raises(VmLayoutError) as caught:
        select_vtl2_mmio((LOW, HIGH), (VTL2,), host_mmio_size=GIB, vtl2_allocation=True)
    assert caught.value.kind == "not_enough_vtl2_mmio"


def test_vtl2_allocation_without_a_high_window_fails_in_the_shim() -> None:
    """Spec 05 §9.4: empty high and no host VTL2 MMIO -> NotEnoughVtl0Mmio."""
    with pytest.raises(VmLayoutError) as caught:
        chain(ChipsetMmioRanges(LOW, EMPTY_HIGH, EMPTY), vtl2_allocation=True)
    assert caught.value.kind == "not_enough_vtl0_mmio"


def test_usermode_parser_sorts_entries_and_keeps_empty_windows() -> None:
    from vmlayout.devicetree.paravisor import kernel_openhcl_node

    node_ = kernel_openhcl_node(
        memory_map(RAM), (HIGH, LOW), (VTL2,)
    )  # emitted out of order on purpose
    blob = build_fdt(Node("", (), (node_,)))
    assert usermode_vtl0_mmio(blob) == (LOW, HIGH)
    empty = build_fdt(Node("", (), (kernel_openhcl_node((), (LOW, EMPTY_HIGH), ()),)))
    assert usermode_vtl0_mmio(empty) == (LOW, EMPTY_HIGH)


def test_usermode_parser_requires_the_memory_type() -> None:
    bad = Node("openhcl", (), (Node("memory@0", (("reg", u64s(0, 4096)),)),))
    with pytest.raises(VmLayoutError) as caught:
        usermode_vtl0_mmio(build_fdt(Node("", (), (bad,))))
    assert "missing openhcl,memory-type" in caught.value.message


# --- the CLI: default options are the reference's inputs -----------------------------------


@pytest.mark.parametrize(
    ("command", "vectors"), [("dt-linux", "dt-linux.jsonl"), ("dt-paravisor", "dt-paravisor.jsonl")]
)
def test_emit_with_default_options_decodes_to_the_vector_tree(
    tmp_path: Path, command: str, vectors: str
) -> None:
    import json

    case = max(read_cases(PROJECT_VECTORS / vectors), key=lambda c: len(c["expect"]["tree"]))
    config = tmp_path / "config.json"
    config.write_text(json.dumps(case["config"]))
    out = tmp_path / "out.dtb"
    # the vectors were made with one VP; the CLI's default VM has two
    result = run_cli("emit", command, config, "-o", out, "--vp-count", "1")
    assert result.returncode == 0, result.stderr
    assert decoded_tree(read_fdt(out.read_bytes())) == case["expect"]["tree"]


def test_emit_dt_linux_platform_options(tmp_path: Path) -> None:
    out = tmp_path / "linux.dtb"
    args = ("--vp-count", "2", "--gic-msi", "v2m", "--timer-ppi", "30", "--initrd-size", "0x1000")
    result = run_cli("emit", "dt-linux", "--arch", "aarch64", "-o", out, *args)
    assert result.returncode == 0, result.stderr
    root = read_fdt(out.read_bytes())
    assert node(root, "/timer").prop("interrupts") == u32s(1, 14, 8)
    assert node(root, "/intc@ffff0000").child("v2m@effe8000") is not None
    assert len(node(root, "/cpus").children) == 2
    chosen = node(root, "/chosen")
    start, end = (
        int.from_bytes(chosen.prop(k) or b"", "big")
        for k in ("linux,initrd-start", "linux,initrd-end")
    )
    assert end - start == 0x1000


def test_emit_dt_linux_refuses_a_timer_outside_the_ppis(tmp_path: Path) -> None:
    result = run_cli(
        "emit", "dt-linux", "--arch", "aarch64", "-o", tmp_path / "x.dtb", "--timer-ppi", "40"
    )
    assert_one_line_error(result, "invalid_argument", "PPI")


# --- emit all + inspect DIR: the trees' new windows are cross-checked -----------------------


def crosscheck_cells(tmp_path: Path, made_from: Any, checked_against: Any) -> dict[Any, Any]:
    from vmlayout.artifacts import EmitSettings, build_artifact_set, load_artifact_set
    from vmlayout.inspect.crosscheck import all_views, compare
    from vmlayout.output import write_directory_atomic

    tmp_path.mkdir(exist_ok=True)
    write_directory_atomic(tmp_path / "set", build_artifact_set(made_from, EmitSettings()))
    artifacts = load_artifact_set(tmp_path / "set")
    return dict(compare(artifacts, checked_against, all_views(), strict=False).cells)


def test_crosscheck_reads_pcie_windows_and_smmus_back_from_the_linux_tree(tmp_path: Path) -> None:
    import dataclasses

    r = arm(pcie_root_complexes=[rc("a", 0, (0, 63), iommu="smmu"), rc("b", 1, (0, 7))])
    cells = crosscheck_cells(tmp_path, r, r)
    for row in ("ECAM a", "a low MMIO", "a high MMIO", "IOMMU a", "ECAM b", "b high MMIO"):
        assert cells[(row, "DT linux")].status == "ok", row
    assert all(cell.status == "ok" for cell in cells.values())
    a, b = r.pcie_root_complexes
    smmu = a.iommu
    moved_a = dataclasses.replace(a, iommu=MemoryRange(smmu.start - MIB, smmu.end - MIB))
    moved = dataclasses.replace(r, pcie_root_complexes=(moved_a, b))
    cells = crosscheck_cells(tmp_path / "moved", r, moved)
    assert cells[("IOMMU a", "DT linux")].status == "bad"
    assert cells[("ECAM a", "DT linux")].status == "ok"


def test_crosscheck_reads_the_vtl2_range_back_from_the_paravisor_tree(tmp_path: Path) -> None:
    import dataclasses

    r = x86(vtl2_layout={"size": 64 * MIB, "alignment": 2 * MIB})
    cells = crosscheck_cells(tmp_path, r, r)
    assert cells[("VTL2 memory", "DT paravisor")].status == "ok"
    assert cells[("RAM", "DT paravisor")].status == "ok"  # the VTL2 range is not RAM
    assert cells[("PCAT CMOS", "PCAT")].status == "ok"
    vtl2 = r.memory_layout.vtl2_range
    assert vtl2 is not None
    layout = dataclasses.replace(
        r.memory_layout, vtl2_range=MemoryRange(vtl2.start, vtl2.end + 2 * MIB)
    )
    cells = crosscheck_cells(tmp_path / "moved", r, dataclasses.replace(r, memory_layout=layout))
    assert cells[("VTL2 memory", "DT paravisor")].status == "bad"
