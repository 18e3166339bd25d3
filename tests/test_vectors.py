"""Every reference vector reproduced exactly: addresses, bytes and error kinds."""

from __future__ import annotations

from typing import Any

import pytest

from tests.machines import with_vm
from tests.vectors import vector_params
from vmlayout.allocator import LayoutBuilder, Placement
from vmlayout.config import config_from_dict
from vmlayout.errors import VmLayoutError
from vmlayout.firmware.mtrr import compute_variable_mtrrs
from vmlayout.policy import resolve
from vmlayout.ranges import MemoryRange
from vmlayout.report import placed_to_json, resolved_to_json


def _check(expect: dict[str, Any], run: Any) -> None:
    if "error" in expect:
        with pytest.raises(VmLayoutError) as caught:
            run()
        assert caught.value.kind == expect["error"], caught.value.message
    else:
        assert run() == expect


@pytest.mark.parametrize("case", vector_params("allocator.jsonl"))
def test_allocator_vector(case: dict[str, Any]) -> None:
    def run() -> dict[str, Any]:
        builder = LayoutBuilder()
        for op in case["ops"]:
            if op["op"] == "reserve":
                builder.reserve(op["name"], MemoryRange(op["start"], op["end"]))
            elif op["op"] == "fixed":
                builder.fixed(op["name"], MemoryRange(op["start"], op["end"]))
            elif op["op"] == "ram":
                builder.ram(op["name"], op["size"], op["alignment"])
            else:
                builder.request(op["name"], op["size"], op["alignment"], Placement(op["placement"]))
        return {"ranges": placed_to_json(builder.allocate())}

    _check(case["expect"], run)


@pytest.mark.parametrize("case", vector_params("resolver.jsonl"))
def test_resolver_vector(case: dict[str, Any]) -> None:
    _check(case["expect"], lambda: resolved_to_json(resolve(config_from_dict(case["config"]))))


@pytest.mark.parametrize("case", vector_params("mtrr.jsonl"))
def test_mtrr_vector(case: dict[str, Any]) -> None:
    def run() -> dict[str, Any]:
        resolved = resolve(config_from_dict(case["config"]))
        writes = compute_variable_mtrrs(
            resolved.memory_layout, resolved.config.physical_address_size, resolved.chipset
        )
        return {"mtrrs": [[w.msr, w.value] for w in writes]}

    _check(case["expect"], run)


@pytest.mark.parametrize("case", vector_params("uefi.jsonl"))
def test_uefi_vector(case: dict[str, Any]) -> None:
    from vmlayout.firmware.uefi import encode_layout_blob

    def run() -> dict[str, Any]:
        resolved = resolve(config_from_dict(case["config"]))
        return {"blob": encode_layout_blob(resolved.memory_layout.ram, resolved.chipset).hex()}

    _check(case["expect"], run)


@pytest.mark.parametrize("case", vector_params("acpi.jsonl"))
def test_acpi_vector(case: dict[str, Any]) -> None:
    from vmlayout.acpi.dsdt import dsdt_table, pci0_device, vmod_device

    def run() -> dict[str, Any]:
        resolved = resolve(config_from_dict(case["config"]))
        pci0 = None
        if resolved.arch.value == "x86_64":
            pci0 = dsdt_table([pci0_device(resolved.chipset)]).hex()
        return {"dsdt_vmod": dsdt_table([vmod_device(resolved.chipset)]).hex(), "dsdt_pci0": pci0}

    _check(case["expect"], run)


@pytest.mark.parametrize("case", vector_params("acpi-tables.jsonl"))
def test_acpi_tables_vector(case: dict[str, Any]) -> None:
    """Every table but DSDT/XSDT/RSDP byte for byte, and exactly the reference's set."""
    from vmlayout.acpi.dsdt import build_acpi_tables

    def run() -> dict[str, Any]:
        files = build_acpi_tables(resolve(config_from_dict(case["config"])))
        skip = ("DSDT.aml", "XSDT.aml", "RSDP.bin")
        return {
            "tables": {n.removesuffix(".aml"): t.hex() for n, t in files.items() if n not in skip}
        }

    _check(case["expect"], run)


#: The reference's failure names in the firmware-view vectors, as vmlayout's error kinds.
#: `reference_panicked` is an assertion in the reference: for PCAT either the first RAM
#: range overflowing the CMOS field or (spec 03 §1.4) an item overflowing its u32.
FIRMWARE_VIEW_ERRORS: dict[str, dict[str, frozenset[str]]] = {
    "e820": {"reference_panicked": frozenset({"e820_requires_low_ram"})},
    "pcat": {
        "reference_panicked": frozenset({"pcat_first_ram_too_large", "pcat_value_overflow"}),
        "incorrect_mmio_holes": frozenset({"incorrect_mmio_holes"}),
    },
}


def _check_view(view: str, expect: dict[str, Any], run: Any) -> None:
    if "error" not in expect:
        assert run() == expect
        return
    with pytest.raises(VmLayoutError) as caught:
        run()
    assert caught.value.kind in FIRMWARE_VIEW_ERRORS[view][expect["error"]], caught.value.message


@pytest.mark.parametrize("case", vector_params("e820.jsonl"))
def test_e820_vector(case: dict[str, Any]) -> None:
    from vmlayout.firmware.e820 import build_e820, e820_to_json

    def run() -> dict[str, Any]:
        return e820_to_json(build_e820(resolve(config_from_dict(case["config"])).memory_layout))

    _check_view("e820", case["expect"], run)


@pytest.mark.parametrize("case", vector_params("pcat.jsonl"))
def test_pcat_vector(case: dict[str, Any]) -> None:
    from vmlayout.firmware.pcat import PcatConfig

    def run() -> dict[str, Any]:
        resolved = resolve(config_from_dict(case["config"]))
        return PcatConfig(resolved.memory_layout, resolved.chipset).to_json()

    _check_view("pcat", case["expect"], run)


#: The device-tree vectors were made with one VP (the ACPI and UEFI ones with the
#: default two): the reference's harness chose so, not the layout.
REFERENCE_DT_VPS = 1


def _decoded_tree(blob: bytes) -> dict[str, dict[str, str]]:
    from vmlayout.devicetree.fdt import decoded_tree, read_fdt

    return decoded_tree(read_fdt(blob))


@pytest.mark.parametrize("case", vector_params("dt-paravisor.jsonl"))
def test_dt_paravisor_vector(case: dict[str, Any]) -> None:
    from vmlayout.devicetree.paravisor import paravisor_dtb_of

    def run() -> dict[str, Any]:
        resolved = resolve(config_from_dict(case["config"]))
        return {
            "tree": _decoded_tree(paravisor_dtb_of(with_vm(resolved, vp_count=REFERENCE_DT_VPS)))
        }

    _check(case["expect"], run)


@pytest.mark.parametrize("case", vector_params("dt-linux.jsonl"))
def test_dt_linux_vector(case: dict[str, Any]) -> None:
    from vmlayout.devicetree.linux import linux_dtb_of

    def run() -> dict[str, Any]:
        resolved = with_vm(resolve(config_from_dict(case["config"])), vp_count=REFERENCE_DT_VPS)
        return {"tree": _decoded_tree(linux_dtb_of(resolved))}

    _check(case["expect"], run)


#: The reference's error variants and vmlayout's kinds, one to one.
PCI_ERROR_KINDS = {
    "BusExhaustion": "bus_exhaustion",
    "SriovBusConflict": "sriov_bus_conflict",
    "PinnedBarMisaligned": "pinned_bar_misaligned",
    "PinnedBarOverlap": "pinned_bar_overlap",
    "PinnedBarOutOfAperture": "pinned_bar_out_of_aperture",
    "MmioExhaustion": "mmio_exhaustion",
}


@pytest.mark.parametrize("case", vector_params("pci.jsonl"))
def test_pci_vector(case: dict[str, Any]) -> None:
    from vmlayout.devices import devices_from_vector
    from vmlayout.pci import AssignmentParams, assign_functions

    data = case["input"]
    params = AssignmentParams(
        start_bus=data["start_bus"],
        end_bus=data["end_bus"],
        low_mmio=MemoryRange(*data["low_mmio"]),
        high_mmio=MemoryRange(*data["high_mmio"]),
        preserve_bars=data["preserve_bars"],
    )
    functions = devices_from_vector(data["topology"])
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(VmLayoutError) as caught:
            assign_functions(functions, params)
        assert caught.value.kind == PCI_ERROR_KINDS[expect["error"]], caught.value.message
        assert caught.value.message == expect["message"]
    else:
        assert assign_functions(functions, params).to_json() == expect
