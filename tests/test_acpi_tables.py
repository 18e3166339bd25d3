"""ACPI tables (spec 04 §2, §3): decoding recovers the layout, checksums hold, iasl
accepts every table, and corrupted tables give one-line errors."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzzing import mutated_table
from tests.machines import with_vm
from tests.tools import require_tool
from vmlayout.acpi.decode import (
    chipset_from_dsdt,
    decode_definition_block,
    decode_mcfg,
    decode_resources,
    decode_rsdp,
    decode_srat,
    decode_table,
    device_memory,
)
from vmlayout.acpi.dsdt import (
    build_acpi_tables,
    processor_name,
    root_complex_name,
)
from vmlayout.acpi.mcfg import build_mcfg
from vmlayout.acpi.resources import Interrupt, WordBusNumber
from vmlayout.config import DEFAULT_VM, config_from_dict, config_to_dict, load_config
from vmlayout.errors import VmLayoutError
from vmlayout.policy import resolve
from vmlayout.ranges import GIB, MIB, MemoryRange

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def rc(name: str, segment: int, start: int, end: int) -> dict[str, Any]:
    return {
        "name": name,
        "segment": segment,
        "start_bus": start,
        "end_bus": end,
        "low_mmio": {"size": 16 * MIB},
        "high_mmio": {"size": 256 * MIB},
    }


CONFIGS = st.fixed_dictionaries(
    {
        "arch": st.sampled_from(["x86_64", "aarch64"]),
        "node_mem_sizes": st.lists(
            st.integers(1, 2048).map(lambda n: n * 4 * MIB), min_size=1, max_size=4
        ),
        "chipset_high_mmio_size": st.sampled_from([0, 2 * MIB, 512 * MIB]),
        "pcie_root_complexes": st.sampled_from(
            [[], [rc("rc0", 0, 0, 255)], [rc("a", 0, 0, 15), rc("b", 1, 16, 31)]]
        ),
        "virtio_mmio_count": st.sampled_from([0, 3]),
    }
)


def all_checksums_ok(files: dict[str, bytes]) -> bool:
    tables = [decode_table(v, k) for k, v in files.items() if k != "RSDP.bin"]
    return all(t.checksum_ok for t in tables) and decode_rsdp(files["RSDP.bin"]).checksum_ok


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIGS, st.booleans())
def test_decoding_the_tables_recovers_the_layout(config: dict[str, Any], pci0: bool) -> None:
    r = resolve(config_from_dict(config))
    x86 = r.arch.value == "x86_64"
    files = build_acpi_tables(with_vm(r, pci0=pci0 and x86, vp_count=3))
    assert all_checksums_ok(files)
    _, ranges = chipset_from_dsdt(files["DSDT.aml"])
    windows = tuple(w for w in (r.chipset.low, r.chipset.high) if not w.is_empty())
    assert ranges == windows  # a high range of size 0 never appears
    memory, _ = decode_srat(decode_table(files["SRAT.aml"]))
    assert [(m.range, m.vnode) for m in memory] == [(x.range, x.vnode) for x in r.memory_layout.ram]
    if r.pcie_root_complexes:
        mcfg = decode_mcfg(decode_table(files["MCFG.aml"]))
        assert [e.ecam for e in mcfg] == [c.ecam for c in r.pcie_root_complexes]
        assert [e.base for e in mcfg] == [c.ecam_bus0_base for c in r.pcie_root_complexes]
    else:
        assert "MCFG.aml" not in files and "SSDT.aml" not in files


def test_mcfg_base_is_where_bus_0_would_be() -> None:
    """Spec 04 §2.6: ECAM starting 0xE810_0000 for buses 1..0x10 -> base 0xE800_0000."""
    table = build_mcfg([(0xE800_0000, 0, 1, 0x10)])
    [entry] = decode_mcfg(decode_table(table))
    assert entry.base == 0xE800_0000 and entry.ecam.start == 0xE810_0000


def test_xsdt_points_at_every_table_but_the_dsdt_and_fadt_points_at_the_dsdt() -> None:
    files = build_acpi_tables(resolve(DEFAULT_VM))
    rsdp = decode_rsdp(files["RSDP.bin"])
    base = 0x19000  # tables follow the RSDP page at 0x18000
    offsets, offset = {}, 0
    for name in ("DSDT.aml", "FACP.aml", "APIC.aml", "SRAT.aml", "MCFG.aml", "SSDT.aml"):
        offsets[name] = base + offset
        offset += len(files[name]) + (-len(files[name]) % 8)
    assert rsdp.xsdt_address == base + offset
    xsdt = decode_table(files["XSDT.aml"]).body
    pointers = [int.from_bytes(xsdt[i : i + 8], "little") for i in range(0, len(xsdt), 8)]
    assert pointers == [
        offsets[n] for n in ("FACP.aml", "APIC.aml", "SRAT.aml", "MCFG.aml", "SSDT.aml")
    ]
    fadt = files["FACP.aml"]
    assert int.from_bytes(fadt[140:148], "little") == offsets["DSDT.aml"]
    assert len(fadt) == 276 and int.from_bytes(fadt[112:116], "little") == 0x85B5


def test_ssdt_lists_each_root_complex_and_reserves_every_ecam() -> None:
    config = config_to_dict(DEFAULT_VM)
    config["pcie_root_complexes"] = [rc("a", 0, 0, 15), rc("b", 1, 16, 31)]
    r = resolve(config_from_dict(config))
    devices = decode_definition_block(decode_table(build_acpi_tables(r)["SSDT.aml"]))
    assert [d.path for d in devices] == ["\\PCI0", "\\PCI1", "\\VMOD"]
    assert devices[1].names["_SEG"] == 1 and devices[1].names["_BBN"] == 16
    assert device_memory(devices[2], "SSDT") == tuple(c.ecam for c in r.pcie_root_complexes)
    crs = decode_resources(devices[1].names["_CRS"], "SSDT")
    assert crs[0] == WordBusNumber(minimum=16, length=16) and crs[0].maximum == 31


@pytest.mark.parametrize(("index", "name"), [(0, "PCI0"), (5, "PCI5"), (12, "PC12"), (123, "P123")])
def test_root_complex_device_names(index: int, name: str) -> None:
    assert root_complex_name(index) == name


@pytest.mark.parametrize(("index", "name"), [(1, "P001"), (999, "P999"), (1000, "Q000")])
def test_processor_device_names(index: int, name: str) -> None:
    assert processor_name(index) == name


def iasl() -> str:
    return require_tool("iasl", "acpica-tools")


@pytest.mark.parametrize(
    ("config_name", "options"),
    [
        ("default", {}),
        ("default", {"pci0": True, "serial": True, "vp_count": 4}),
        ("aarch64", {"serial": True}),
        ("numa-vtl2", {"vp_count": 8}),
        ("large-4tib", {}),
    ],
)
def test_every_table_disassembles_cleanly_with_iasl(
    tmp_path: Path, config_name: str, options: dict[str, Any]
) -> None:
    tool = iasl()
    r = resolve(load_config(EXAMPLES / f"{config_name}.toml"))
    files = build_acpi_tables(with_vm(r, **options))
    for name, data in files.items():
        if name.endswith(".aml"):
            (tmp_path / name).write_bytes(data)
    names = sorted(n for n in files if n.endswith(".aml"))
    result = subprocess.run(
        [str(tool), "-d", *names], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Error" not in output and "Warning" not in output, output
    dsdt = (tmp_path / "DSDT.dsl").read_text()
    assert f"0x{r.chipset.low.start:016X}, // Range Minimum" in dsdt
    if not r.chipset.high.is_empty():
        assert f"0x{r.chipset.high.end - 1:016X}, // Range Maximum" in dsdt
    if r.pcie_root_complexes:
        ssdt = (tmp_path / "SSDT.dsl").read_text()
        for c in r.pcie_root_complexes:
            assert f"0x{c.ecam.start:016X}, // Range Minimum" in ssdt


def test_the_spec_example_dsdt_disassembles_to_the_spec_asl(tmp_path: Path) -> None:
    tool = iasl()
    from tests.test_acpi_aml import HIGH, LOW
    from vmlayout.acpi.dsdt import dsdt_table, vmod_device
    from vmlayout.layout import ChipsetMmioRanges
    from vmlayout.ranges import EMPTY

    (tmp_path / "DSDT.aml").write_bytes(
        dsdt_table([vmod_device(ChipsetMmioRanges(LOW, HIGH, EMPTY))])
    )
    subprocess.run([str(tool), "-d", "DSDT.aml"], cwd=tmp_path, capture_output=True, check=True)
    asl = (tmp_path / "DSDT.dsl").read_text()
    assert 'DefinitionBlock ("", "DSDT", 2, "MSFTVM", "DSDT01", 0x00000001)' in asl
    assert "Device (\\_SB.VMOD)" in asl
    assert 'Name (_HID, "ACPI0004" /* Module Device */)' in asl
    assert "0x000000015FFFFFFF, // Range Maximum" in asl
    assert "Checksum         0xF4" in asl


def test_table_decoder_fuzz_gives_one_line_errors_only() -> None:
    """Truncations, bit flips and random bodies of every table kind: 6k cases."""
    rng = random.Random(7)
    files = build_acpi_tables(with_vm(resolve(DEFAULT_VM), serial=True))
    files.update(
        {
            f"a-{k}": v
            for k, v in build_acpi_tables(
                resolve(
                    config_from_dict(
                        {
                            **config_to_dict(DEFAULT_VM),
                            "arch": "aarch64",
                            "chipset_low_mmio_size": 0,
                        }
                    )
                )
            ).items()
        }
    )
    seeds = [v for k, v in files.items() if not k.endswith("RSDP.bin")]
    for i in range(6000):
        data = mutated_table(rng, rng.choice(seeds), i)
        try:
            table = decode_table(data)
            if table.signature in ("DSDT", "SSDT"):
                for device in decode_definition_block(table):
                    if isinstance(device.names.get("_CRS"), bytes):
                        device_memory(device, "fuzz")
            elif table.signature == "SRAT":
                decode_srat(table)
            elif table.signature == "MCFG":
                for entry in decode_mcfg(table):
                    entry.ecam  # noqa: B018 - decoding the range is the point
        except VmLayoutError as error:
            assert "\n" not in error.message


def test_a_truncated_table_names_what_is_wrong() -> None:
    dsdt = build_acpi_tables(resolve(DEFAULT_VM))["DSDT.aml"]
    with pytest.raises(VmLayoutError) as caught:
        decode_table(dsdt[:100])
    assert "header length" in caught.value.message


def test_a_dsdt_with_a_bad_checksum_is_rejected() -> None:
    dsdt = bytearray(build_acpi_tables(resolve(DEFAULT_VM))["DSDT.aml"])
    dsdt[9] ^= 0xFF
    with pytest.raises(VmLayoutError) as caught:
        chipset_from_dsdt(bytes(dsdt))
    assert "checksum" in caught.value.message


def test_large_vm_builds_within_aml_limits() -> None:
    config = config_to_dict(DEFAULT_VM)
    config["node_mem_sizes"] = [GIB] * 8
    r = resolve(config_from_dict(config))
    files = build_acpi_tables(with_vm(r, vp_count=1500))
    assert decode_table(files["DSDT.aml"]).checksum_ok


def test_x86_dsdt_object_order() -> None:
    """Spec 04 §3.1: APIC, serial ports, virtio slots, the chipset device, VMBus, RTC,
    processors."""
    config = {**config_to_dict(DEFAULT_VM), "virtio_mmio_count": 2}
    r = resolve(config_from_dict(config))
    dsdt = build_acpi_tables(with_vm(r, serial=True, vp_count=2))["DSDT.aml"]
    assert dsdt[36:58] == bytes.fromhex("085C5F53305F1204020000085C5F53355F1204020000")
    paths = [d.path for d in decode_definition_block(decode_table(dsdt))]
    assert paths == [
        "\\_SB.APIC",
        "\\_SB.UAR1",
        "\\_SB.UAR2",
        "\\_SB.UAR3",
        "\\_SB.UAR4",
        "\\_SB.VI00",
        "\\_SB.VI01",
        "\\_SB.VMOD",
        "\\_SB.VMOD.VMBS",
        "\\_SB.RTC0",
        "\\P001",
        "\\P002",
    ]
    virtio = decode_definition_block(decode_table(dsdt))[6]
    assert device_memory(virtio, "DSDT") == (
        MemoryRange(r.virtio_mmio.start + 0x1000, r.virtio_mmio.start + 0x2000),
    )


def test_aarch64_dsdt_has_vmod_vmbus_uarts_and_processors_only() -> None:
    r = resolve(load_config(EXAMPLES / "aarch64.toml"))
    dsdt = build_acpi_tables(with_vm(r, serial=True, vp_count=1))["DSDT.aml"]
    devices = decode_definition_block(decode_table(dsdt))
    assert [d.path for d in devices] == [
        "\\_SB.VMOD",
        "\\_SB.VMOD.VMBS",
        "\\_SB.UAR0",
        "\\_SB.UAR1",
        "\\P001",
    ]
    [interrupt] = decode_resources(devices[1].names["_CRS"], "DSDT")
    assert interrupt == Interrupt(18, edge=True)


@pytest.mark.parametrize(
    ("vp_count", "kinds"), [(2, [(0, 16)] * 2), (256, [(0, 16)] * 255 + [(2, 24)])]
)
def test_srat_processor_entries_switch_to_x2apic_above_apic_id_0xfe(
    vp_count: int, kinds: list[tuple[int, int]]
) -> None:
    files = build_acpi_tables(with_vm(resolve(DEFAULT_VM), vp_count=vp_count))
    _, others = decode_srat(decode_table(files["SRAT.aml"]))
    assert others == kinds


def test_aarch64_srat_uses_gicc_affinity_and_fadt_is_hardware_reduced() -> None:
    files = build_acpi_tables(resolve(load_config(EXAMPLES / "aarch64.toml")))
    _, others = decode_srat(decode_table(files["SRAT.aml"]))
    assert others == [(3, 18), (3, 18)]
    fadt = files["FACP.aml"]
    assert int.from_bytes(fadt[112:116], "little") == 1 << 20
    assert int.from_bytes(fadt[129:131], "little") == 3 and fadt[131] == 3


def test_srat_memory_entries_carry_each_ranges_vnode() -> None:
    r = resolve(load_config(EXAMPLES / "numa-vtl2.toml"))
    memory, _ = decode_srat(decode_table(build_acpi_tables(r)["SRAT.aml"]))
    assert [(m.range, m.vnode, m.flags) for m in memory] == [
        (x.range, x.vnode, 1) for x in r.memory_layout.ram
    ]
    assert {m.vnode for m in memory} == {0, 1}


def test_madt_lists_ioapic_overrides_nmi_and_one_local_apic_per_vp() -> None:
    madt = build_acpi_tables(with_vm(resolve(DEFAULT_VM), vp_count=3))["APIC.aml"]
    body = madt[44:]
    kinds = []
    offset = 0
    while offset < len(body):
        kinds.append((body[offset], body[offset + 1]))
        offset += body[offset + 1]
    assert kinds == [(1, 12), (2, 10), (4, 6), (0, 8), (0, 8), (0, 8)]
    assert int.from_bytes(madt[36:40], "little") == 0xFEE0_0000
