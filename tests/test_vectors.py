"""Every reference vector reproduced exactly: addresses, bytes and error kinds."""

from __future__ import annotations

from typing import Any

import pytest

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
