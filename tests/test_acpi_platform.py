"""The whole ACPI table set as the reference builds it: which tables exist, SSDT root
complexes (`_OSC`, CXL identity, `_PXM`, `_DSM`), SLIT, CPU placement in SRAT, the
aarch64 MADT/IORT/GTDT/PPTT, the IOMMU tables and CEDT; iasl and acpiexec read every
emitted table; decoders never crash."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzzing import mutated_table
from tests.machines import with_vm
from tests.tools import require_tool
from vmlayout.acpi.aml import EisaId
from vmlayout.acpi.decode import (
    decode_cedt,
    decode_definition_block,
    decode_dmar,
    decode_iort,
    decode_ivrs,
    decode_madt,
    decode_pptt,
    decode_resources,
    decode_slit,
    decode_srat_processors,
    decode_table,
)
from vmlayout.acpi.dsdt import build_acpi_tables
from vmlayout.acpi.iommu import IdMapping
from vmlayout.acpi.madt import Gicc, Gicd, GicIts, GicMsiFrame, LocalApic, LocalX2Apic
from vmlayout.acpi.resources import MemoryDescriptor, WordBusNumber
from vmlayout.acpi.summary import describe_platform, platform_lines
from vmlayout.config import config_from_dict
from vmlayout.errors import VmLayoutError
from vmlayout.platform import GicPlatform
from vmlayout.policy import ResolvedLayout, resolve
from vmlayout.ranges import GIB, MIB, MemoryRange
from vmlayout.topology import Processors


def rc(index: int, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"rc{index}",
        "segment": index % 2,
        "start_bus": 0 if index < 2 else 16 * index,
        "end_bus": 15 if index < 2 else 16 * index + 15,
        "low_mmio": {"size": 16 * MIB},
        "high_mmio": {"size": 256 * MIB},
        **extra,
    }


def tables_of(config: dict[str, Any], **choices: Any) -> dict[str, bytes]:
    """The tables of `config` with the given processors/platform choices."""
    return build_acpi_tables(with_vm(resolve(config_from_dict(config)), **choices))


def signatures(files: dict[str, bytes]) -> set[str]:
    return {n.removesuffix(".aml") for n in files if n.endswith(".aml")}


X86_CXL_AMD = {
    "node_mem_sizes": [2 * GIB, 2 * GIB],
    "pcie_root_complexes": [
        rc(0, iommu="amd_vi", cxl={"hdm_size": 256 * MIB}),
        rc(1),
        rc(2, iommu="amd_vi"),
    ],
}
X86_VTD = {"pcie_root_complexes": [rc(0, iommu="intel_vtd"), rc(1, iommu="intel_vtd")]}
ARM_SMMU = {
    "arch": "aarch64",
    "node_mem_sizes": [GIB, GIB, GIB],
    "pcie_root_complexes": [
        rc(0, iommu="smmu"),
        rc(1, cxl={"hdm_size": 512 * MIB}),
        rc(2, iommu="smmu"),
    ],
}


# --- which tables ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, {"FACP", "APIC", "SRAT"}),
        ({"node_mem_sizes": [GIB, GIB]}, {"FACP", "APIC", "SRAT", "SLIT"}),
        (X86_CXL_AMD, {"FACP", "APIC", "SRAT", "SLIT", "MCFG", "SSDT", "CEDT", "IVRS"}),
        (X86_VTD, {"FACP", "APIC", "SRAT", "MCFG", "SSDT", "DMAR"}),
        ({"arch": "aarch64"}, {"FACP", "APIC", "SRAT", "PPTT", "GTDT"}),
        (
            ARM_SMMU,
            {"FACP", "APIC", "SRAT", "SLIT", "MCFG", "IORT", "SSDT", "CEDT", "PPTT", "GTDT"},
        ),
    ],
)
def test_the_table_set_is_exactly_what_the_reference_builds(
    config: dict[str, Any], expected: set[str]
) -> None:
    assert signatures(tables_of(config)) == expected | {"DSDT", "XSDT"}


def test_tables_follow_the_reference_append_order_in_the_xsdt() -> None:
    files = tables_of(ARM_SMMU)
    order = [n.removesuffix(".aml") for n in files if n.endswith(".aml")]
    assert order == [
        "DSDT",
        "FACP",
        "APIC",
        "SRAT",
        "SLIT",
        "MCFG",
        "IORT",
        "SSDT",
        "CEDT",
        "PPTT",
        "GTDT",
        "XSDT",
    ]
    xsdt = decode_table(files["XSDT.aml"]).body
    assert len(xsdt) == 8 * (len(order) - 2)  # every table but the DSDT and the XSDT


def test_vt_d_on_only_some_root_complexes_is_refused_naming_the_one_without() -> None:
    config = {"pcie_root_complexes": [rc(0, iommu="intel_vtd"), rc(1)]}
    with pytest.raises(VmLayoutError) as caught:
        tables_of(config)
    assert caught.value.kind == "intel_vtd_not_on_every_root_complex"
    assert "'rc1'" in caught.value.message


def test_the_cli_refuses_partial_vt_d_with_one_line(tmp_path: Path) -> None:
    import json

    config = tmp_path / "vm.json"
    config.write_text(json.dumps({"pcie_root_complexes": [rc(0), rc(1, iommu="intel_vtd")]}))
    result = subprocess.run(
        [sys.executable, "-m", "vmlayout", "emit", "acpi", str(config), "-o", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: intel_vtd_not_on_every_root_complex: ")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


# --- SSDT ------------------------------------------------------------------------------


def ssdt_devices(files: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    return {d.path: d.names for d in decode_definition_block(decode_table(files["SSDT.aml"]))}


def test_every_root_complex_negotiates_osc_and_cxl_bridges_carry_the_cxl_identity() -> None:
    devices = ssdt_devices(tables_of(X86_CXL_AMD))
    cid_package = EisaId("PNP0A03").encode() + EisaId("PNP0A08").encode()
    for index in range(3):
        names = devices[f"\\PCI{index}"]
        assert names["_OSC"] == ("method", 4)
        if index == 0:
            assert names["_HID"] == "ACPI0016"
            assert names["_CID"] == ("package", bytes((2,)) + cid_package)
        else:
            assert names["_HID"] == EisaId("PNP0A08").value
            assert names["_CID"] == EisaId("PNP0A03").value
        assert "_PXM" not in names and "_DSM" not in names


def test_pxm_and_the_preserve_bars_dsm_appear_only_where_configured() -> None:
    config = {
        "node_mem_sizes": [GIB, GIB],
        "pcie_root_complexes": [rc(0, numa_node=1), rc(1, preserve_bars=True), rc(2)],
    }
    devices = ssdt_devices(tables_of(config))
    assert devices["\\PCI0"]["_PXM"] == 1 and "_DSM" not in devices["\\PCI0"]
    assert devices["\\PCI1"]["_DSM"] == ("method", 4) and "_PXM" not in devices["\\PCI1"]
    assert "_PXM" not in devices["\\PCI2"] and "_DSM" not in devices["\\PCI2"]


# --- SLIT and CPU placement ------------------------------------------------------------


def test_slit_defaults_to_10_local_and_20_remote() -> None:
    slit = decode_slit(decode_table(tables_of({"node_mem_sizes": [GIB] * 3})["SLIT.aml"]))
    assert slit == [[10, 20, 20], [20, 10, 20], [20, 20, 10]]


def test_configured_distances_override_single_entries_and_force_a_slit() -> None:
    config = {
        "node_mem_sizes": [GIB, GIB],
        "numa_distances": [[0, 1, 31], {"from": 1, "to": 0, "distance": 40}],
    }
    slit = decode_slit(decode_table(tables_of(config)["SLIT.aml"]))
    assert slit == [[10, 31], [40, 10]]
    one_node = tables_of({"numa_distances": [[0, 0, 10]]})
    assert decode_slit(decode_table(one_node["SLIT.aml"])) == [[10]]


@pytest.mark.parametrize(
    ("distances", "field"),
    [
        ([[0, 2, 30]], "numa_distances[0].to"),
        ([[0, 0, 20]], "numa_distances[0].distance"),
        ([[0, 1, 9]], "numa_distances[0].distance"),
        ([{"from": 0, "to": 1}], "numa_distances[0].distance"),
        ([[0, 1]], "numa_distances[0]"),
    ],
)
def test_impossible_numa_distances_are_refused_naming_the_entry(
    distances: list[Any], field: str
) -> None:
    with pytest.raises(VmLayoutError) as caught:
        config_from_dict({"node_mem_sizes": [GIB, GIB], "numa_distances": distances})
    assert caught.value.kind == "invalid_config"
    assert caught.value.message.startswith(field + ":")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(["x86_64", "aarch64"]),
    st.integers(1, 5),
    st.integers(1, 300),
    st.one_of(st.none(), st.integers(1, 8)),
)
def test_srat_puts_vp_v_in_node_v_div_socket_mod_nodes(
    arch: str, nodes: int, vp_count: int, per_socket: int | None
) -> None:
    files = tables_of(
        {"arch": arch, "node_mem_sizes": [GIB] * nodes},
        vp_count=vp_count,
        vps_per_socket=per_socket,
    )
    socket = per_socket or (vp_count if arch == "x86_64" else 1)
    expected_ids = [vp + 1 if arch == "aarch64" else vp for vp in range(vp_count)]
    assert decode_srat_processors(decode_table(files["SRAT.aml"])) == [
        (ident, (vp // socket) % nodes) for vp, ident in enumerate(expected_ids)
    ]
    assert Processors(vp_count, per_socket).vnodes(nodes, arch) == tuple(
        (vp // socket) % nodes for vp in range(vp_count)
    )
    madt = decode_madt(decode_table(files["APIC.aml"])).entries
    uids = [e.uid for e in madt if isinstance(e, LocalApic | LocalX2Apic | Gicc)]
    assert uids == [vp + 1 for vp in range(vp_count)]


# --- aarch64 ---------------------------------------------------------------------------


def test_aarch64_madt_has_a_redistributor_per_vp_and_the_its() -> None:
    madt = decode_madt(decode_table(tables_of({"arch": "aarch64"}, vp_count=3)["APIC.aml"]))
    entries = madt.entries
    assert entries[0] == Gicd(base=0xFFFF_0000, version=3)
    giccs = [e for e in entries if isinstance(e, Gicc)]
    assert [e.gicr_base for e in giccs] == [0xEFFF_0000 + vp * 0x2_0000 for vp in range(3)]
    assert [e.mpidr for e in giccs] == [0, 1, 2]
    assert entries[-1] == GicIts(id=0, base=0xEFFC_0000)


def test_a_v2m_frame_replaces_the_its_and_takes_the_top_spis_before_the_smmus() -> None:
    files = tables_of(ARM_SMMU, gic=GicPlatform(msi="v2m"))
    madt = decode_madt(decode_table(files["APIC.aml"])).entries
    assert madt[-1] == GicMsiFrame(base=0xEFFE_8000, spi_count=64, spi_base=992 - 64)
    nodes = decode_iort(decode_table(files["IORT.aml"]))
    assert [n.kind for n in nodes] == ["smmuv3", "smmuv3", "root_complex"] + ["root_complex"] * 2
    assert [n.gsivs for n in nodes[:2]] == [(927, 926), (925, 924)]
    # without an ITS a root complex behind no SMMU has nowhere to send its ids
    assert [len(n.mappings) for n in nodes[2:]] == [1, 0, 1]


def raw(m: IdMapping) -> tuple[int, int, int, int, int]:
    """An ID mapping's fields in table order (input base, count, output base and node,
    flags)."""
    return (m.input_base, m.id_count, m.output_base, m.output_reference, m.flags)


def test_iort_routes_each_root_complex_to_its_smmu_or_to_the_its() -> None:
    r = resolve(config_from_dict(ARM_SMMU))
    nodes = decode_iort(decode_table(build_acpi_tables(r)["IORT.aml"]))
    its, smmu0, smmu2, *complexes = nodes
    assert its.kind == "its_group" and its.offset == 48
    assert (smmu0.identifier, smmu0.base, smmu0.gsivs) == (0, r.iommu_ranges[0].start, (991, 990))
    assert (smmu2.identifier, smmu2.base, smmu2.gsivs) == (2, r.iommu_ranges[1].start, (989, 988))
    # the SMMU adds the segment on the way to the ITS: (segment << 16) | BDF
    assert raw(smmu2.mappings[0]) == (0, 0xFFFF, 0 << 16, 48, 0)
    assert [(n.identifier, n.segment) for n in complexes] == [(0, 0), (1, 1), (2, 0)]
    assert tuple(map(raw, complexes[0].mappings)) == ((0, 0xFFFF, 0, smmu0.offset, 0),)
    assert tuple(map(raw, complexes[1].mappings)) == ((0, 0xFFFF, 1 << 16, 48, 0),)
    assert tuple(map(raw, complexes[2].mappings)) == ((0, 0xFFFF, 0, smmu2.offset, 0),)


def test_smmu_spis_that_do_not_fit_below_the_gic_limit_are_refused() -> None:
    fits = GicPlatform(msi="v2m", v2m_spi_count=60, nr_irqs=128)
    assert fits.spi_layout(2) == (68, [(67, 66), (65, 64)])
    with pytest.raises(VmLayoutError) as caught:
        fits.spi_layout(3)
    assert caught.value.kind == "spi_exhausted"


def test_gtdt_names_the_virtual_timer_ppi() -> None:
    files = tables_of({"arch": "aarch64"}, gic=GicPlatform(virt_timer_ppi=27))
    doc = describe_platform(decode_table(files["GTDT.aml"]))
    assert doc["timers"]["virtual_el1_gsiv"] == 27
    assert doc["timers"]["virtual_el1_flags"] == 0b10  # level, active low


@pytest.mark.parametrize(("vp_count", "cores"), [(1, 1), (2, 1), (256, 1), (257, 2), (600, 3)])
def test_pptt_has_one_core_per_mpidr_aff1_without_smt(vp_count: int, cores: int) -> None:
    files = tables_of({"arch": "aarch64"}, vp_count=vp_count)
    nodes = decode_pptt(decode_table(files["PPTT.aml"]))
    package, *core_nodes = nodes
    assert package["flags"] == 1 and package["parent"] == 0
    assert len(core_nodes) == cores
    assert [c["acpi_processor_id"] for c in core_nodes] == [1 + 256 * i for i in range(cores)]
    assert all(c["parent"] == package["offset"] and c["flags"] == 2 for c in core_nodes)


# --- IOMMUs and CXL --------------------------------------------------------------------


def iommu_bases(r: ResolvedLayout) -> list[int]:
    return [w.start for w in r.iommu_ranges]


def test_ivrs_covers_each_root_complex_buses_and_the_ioapic_on_segment_0_bus_0() -> None:
    r = resolve(config_from_dict(X86_CXL_AMD))
    info, units = decode_ivrs(decode_table(build_acpi_tables(r)["IVRS.aml"]))
    assert info == {"efr_sup": 1, "pa_size": 48, "va_size": 48}
    assert [u.base for u in units] == iommu_bases(r)
    assert [(u.segment, u.buses, u.ioapic) for u in units] == [
        (0, (0, 15), True),
        (0, (32, 47), False),
    ]


def test_dmar_has_a_drhd_per_root_complex_and_the_ioapic_scope_on_bus_0() -> None:
    r = resolve(config_from_dict(X86_VTD))
    width, units = decode_dmar(decode_table(build_acpi_tables(r)["DMAR.aml"]))
    assert width == 48
    assert [(u.base, u.segment, u.ioapic) for u in units] == [
        (iommu_bases(r)[0], 0, True),
        (iommu_bases(r)[1], 1, False),
    ]


def test_cedt_lists_each_cxl_bridge_windows_under_its_uid() -> None:
    r = resolve(config_from_dict(ARM_SMMU))
    bridges = decode_cedt(decode_table(build_acpi_tables(r)["CEDT.aml"]))
    cxl = r.pcie_root_complexes[1]
    assert [(b.uid, b.hdm, b.chbcr) for b in bridges] == [(1, cxl.cxl_hdm, cxl.cxl_chbcr)]


# --- external tools --------------------------------------------------------------------

TOOL_CONFIGS = [X86_CXL_AMD, X86_VTD, ARM_SMMU, {"arch": "aarch64", "numa_distances": []}]


@pytest.mark.parametrize("config", TOOL_CONFIGS)
def test_iasl_disassembles_every_table_without_a_complaint(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    tool = require_tool("iasl", "acpica-tools")
    files = tables_of(config, vp_count=3)
    names = sorted(n for n in files if n.endswith(".aml"))
    for name in names:
        (tmp_path / name).write_bytes(files[name])
    for name in names:
        result = subprocess.run(
            [tool, "-d", name], cwd=tmp_path, capture_output=True, text=True, check=False
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output
        assert "Error" not in output and "Warning" not in output, (name, output)
        assert (tmp_path / name.replace(".aml", ".dsl")).stat().st_size > 0


def acpiexec_buffers(tmp_path: Path, files: dict[str, bytes], commands: list[str]) -> list[bytes]:
    """Load DSDT and SSDT into ACPICA's interpreter, run `evaluate` commands, and return
    each evaluation's buffer bytes in order."""
    tool = require_tool("acpiexec", "acpica-tools")
    tables = [n for n in ("DSDT.aml", "SSDT.aml") if n in files]
    for name in tables:
        (tmp_path / name).write_bytes(files[name])
    result = subprocess.run(
        [tool, "-b", "; ".join(commands), *tables],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert "ACPI Error" not in output and "ACPI Exception" not in output, output
    buffers: list[bytes] = []
    for block in re.split(r"\n(?=Evaluating )", output)[1:]:
        hexdump = re.findall(r"\b[0-9A-F]{4}: ((?:[0-9A-F]{2} )+)", block)
        assert "returned object" in block, block
        buffers.append(bytes.fromhex("".join(hexdump)))
    assert len(buffers) == len(commands), output
    return buffers


def crs_memory(buffer: bytes) -> list[MemoryRange]:
    descriptors = decode_resources(buffer, "acpiexec")
    return [d.memory for d in descriptors if isinstance(d, MemoryDescriptor) and d.memory]


@pytest.mark.parametrize("config", [X86_CXL_AMD, ARM_SMMU])
def test_acpiexec_evaluates_every_crs_to_the_resolved_windows(
    tmp_path: Path, config: dict[str, Any]
) -> None:
    r = resolve(config_from_dict(config))
    files = build_acpi_tables(r)
    complexes = r.pcie_root_complexes
    commands = ["evaluate \\_SB.VMOD._CRS", "evaluate \\VMOD._CRS"] + [
        f"evaluate \\PCI{i}._CRS" for i in range(len(complexes))
    ]
    vmod, ecam, *windows = acpiexec_buffers(tmp_path, files, commands)
    chipset = [w for w in (r.chipset.low, r.chipset.high) if not w.is_empty()]
    assert crs_memory(vmod) == chipset
    assert crs_memory(ecam) == [c.ecam for c in complexes]
    for c, buffer in zip(complexes, windows, strict=True):
        assert crs_memory(buffer) == [c.low_mmio, c.high_mmio]
        bus = next(d for d in decode_resources(buffer, "acpiexec") if isinstance(d, WordBusNumber))
        assert (bus.minimum, bus.maximum) == (c.start_bus, c.end_bus)


PCIE_UUID = "(5B 4D DB 33 F7 1F 1C 40 96 57 74 41 C0 3D D7 66)"
CXL_UUID = "(0B D5 F2 68 69 C4 8A 4D BD 3D 94 1A 10 3F D3 FC)"
OTHER_UUID = "(00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF)"


def test_acpiexec_osc_grants_pcie_and_cxl_control_and_flags_unknown_uuids(
    tmp_path: Path,
) -> None:
    files = tables_of(X86_CXL_AMD)
    caps = "(00 00 00 00 1F 00 00 00 0F 00 00 00)"
    cases = [
        ("PCI0", PCIE_UUID, 1, 0),  # CXL bridge, PCIe UUID: granted
        ("PCI0", CXL_UUID, 1, 0),  # CXL UUID revision 1: granted
        ("PCI0", CXL_UUID, 2, 0x02),  # unknown CXL revision
        ("PCI0", OTHER_UUID, 1, 0x04),  # unknown UUID
        ("PCI1", PCIE_UUID, 1, 0),
        ("PCI1", CXL_UUID, 1, 0x04),  # a plain PCIe bridge does not know CXL
    ]
    commands = [f"evaluate \\{dev}._OSC {uuid} {rev} 3 {caps}" for dev, uuid, rev, _ in cases]
    for (dev, _, _, status), buffer in zip(
        cases, acpiexec_buffers(tmp_path, files, commands), strict=True
    ):
        assert int.from_bytes(buffer[:4], "little") == status, dev
        assert buffer[4:] == bytes.fromhex(caps[1:-1].replace(" ", ""))[4:]


# --- decoders --------------------------------------------------------------------------


def test_platform_decoder_fuzz_gives_one_line_errors_only() -> None:
    """Truncations, bit flips and random bodies of every platform table: 6k cases."""
    rng = random.Random(12)
    seeds = []
    for config in (X86_CXL_AMD, X86_VTD, ARM_SMMU):
        files = tables_of(config, vp_count=3)
        seeds += [
            v
            for k, v in files.items()
            if k[:4] in {"APIC", "SLIT", "CEDT", "IVRS", "DMAR", "IORT", "GTDT", "PPTT", "SRAT"}
        ]
    for i in range(6000):
        seed = mutated_table(rng, rng.choice(seeds), i)
        try:
            table = decode_table(seed)
            if table.signature == "SRAT":
                decode_srat_processors(table)
            else:
                platform_lines(describe_platform(table))
        except VmLayoutError as error:
            assert "\n" not in error.message
