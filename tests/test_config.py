"""Config files: vector-schema fields, defaults, units, and precise rejections."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vmlayout.config import DEFAULT_VM, config_from_dict, config_to_dict, load_config
from vmlayout.errors import VmLayoutError
from vmlayout.policy import Arch, DynamicMmio, FixedMmio, IommuKind, resolve
from vmlayout.ranges import GIB, MIB

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_default_example_file_is_the_built_in_default_vm() -> None:
    assert load_config(EXAMPLES / "default.toml") == DEFAULT_VM


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_every_example_resolves(path: Path) -> None:
    resolve(load_config(path))


def test_omitted_fields_take_documented_defaults() -> None:
    config = config_from_dict({})
    assert config.arch is Arch.X86_64
    assert config.node_mem_sizes == (4 * GIB,)
    assert config.chipset_low_mmio_size == 128 * MIB
    assert config.chipset_high_mmio_size == 512 * MIB
    assert config.pcie_root_complexes == ()
    assert config.physical_address_size == 46


def test_low_window_default_follows_the_architecture() -> None:
    assert config_from_dict({"arch": "aarch64"}).chipset_low_mmio_size == 512 * MIB
    assert config_from_dict({}, arch="aarch64").chipset_low_mmio_size == 512 * MIB


def test_sizes_accept_units_and_hex() -> None:
    config = config_from_dict(
        {
            "node_mem_sizes": ["2G", "0x4000_0000", 1 << 30],
            "pcie_root_complexes": [
                {"low_mmio": "64M", "high_mmio": {"start": "16GiB", "end": "17 GiB"}}
            ],
        }
    )
    assert config.node_mem_sizes == (2 * GIB, GIB, GIB)
    (rc,) = config.pcie_root_complexes
    assert rc.name == "rc0"
    assert rc.low_mmio == DynamicMmio(64 * MIB)
    assert rc.high_mmio == FixedMmio(16 * GIB, 17 * GIB)


def test_config_to_dict_round_trips() -> None:
    data = config_to_dict(load_config(EXAMPLES / "large-4tib.toml"))
    assert config_from_dict(json.loads(json.dumps(data))) == load_config(
        EXAMPLES / "large-4tib.toml"
    )


def test_json_config_file(tmp_path: Path) -> None:
    path = tmp_path / "vm.json"
    path.write_text(json.dumps({"arch": "aarch64", "node_mem_sizes": [GIB]}))
    assert load_config(path).arch is Arch.AARCH64


def _rc(**kw: Any) -> dict[str, Any]:
    return {"name": "rc0", "start_bus": 0, "end_bus": 0, **kw}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": 1}, "^colour: unknown key"),
        (
            {"pcie_root_complexes": [_rc(), _rc(name="rc1", start_bus=1, end_bus=1, colour="red")]},
            r"^pcie_root_complexes\[1\]\.colour: unknown key",
        ),
        ({"arch": "riscv"}, "^arch: 'riscv' is not one of"),
        ({"node_mem_sizes": 4096}, "^node_mem_sizes: expected a list"),
        ({"node_mem_sizes": ["4GB"]}, r"^node_mem_sizes\[0\]: '4GB' is ambiguous"),
        ({"node_mem_sizes": [-1]}, r"^node_mem_sizes\[0\]: -1 is negative"),
        ({"node_mem_sizes": [1 << 64]}, r"^node_mem_sizes\[0\]: .* too large"),
        ({"chipset_low_mmio_size": 1 << 32}, "^chipset_low_mmio_size: .* too large"),
        ({"physical_address_size": 64}, "^physical_address_size: 64 is out of range 1..63"),
        ({"physical_address_size": 0}, "^physical_address_size: 0 is out of range"),
        ({"pcie_ecam_below_4gb": "yes"}, "^pcie_ecam_below_4gb: expected true or false"),
        (
            {"pcie_root_complexes": [_rc(start_bus=5, end_bus=4)]},
            r"^pcie_root_complexes\[0\]\.end_bus: 4 is below start_bus 5",
        ),
        (
            {"pcie_root_complexes": [_rc(end_bus=10), _rc(name="rc1", start_bus=10, end_bus=20)]},
            r"^pcie_root_complexes\[1\]: buses 10..20 overlap buses 0..10",
        ),
        (
            {"pcie_root_complexes": [_rc(), _rc(start_bus=1, end_bus=1)]},
            r"^pcie_root_complexes\[1\]\.name: 'rc0' is already used",
        ),
        (
            {
                "pcie_root_complexes": [
                    _rc(iommu="amd_vi"),
                    _rc(name="rc1", start_bus=1, end_bus=1, iommu="intel_vtd"),
                ]
            },
            r"^pcie_root_complexes\[1\]\.iommu: intel_vtd differs from amd_vi",
        ),
        ({"pcie_root_complexes": [_rc(iommu="smmu")]}, r"iommu: smmu is not available on x86_64"),
        (
            {"arch": "aarch64", "pcie_root_complexes": [_rc(iommu="amd_vi")]},
            r"iommu: amd_vi is not available on aarch64",
        ),
        ({"pcie_root_complexes": [_rc(segment=70000)]}, r"segment: 70000 is out of range"),
        ({"pcie_root_complexes": [_rc(end_bus=256)]}, r"end_bus: 256 is out of range"),
        ({"pcie_root_complexes": [_rc(low_mmio={"start": 0})]}, r"low_mmio: expected \{size\}"),
        ({"vtl2_layout": {"alignment": 4096}}, r"^vtl2_layout\.size: missing"),
        ({"virtio_mmio_count": "3"}, r"^virtio_mmio_count: expected an integer"),
    ],
)
def test_invalid_config_names_the_field(data: dict[str, Any], message: str) -> None:
    with pytest.raises(VmLayoutError, match=message) as caught:
        config_from_dict(data)
    assert caught.value.kind == "invalid_config"


@pytest.mark.parametrize(
    ("rc", "message"),
    [
        ({"low_mmio": {"start": 0xF000_0800, "end": 0xF100_0000}}, "is not 4 KiB aligned"),
        ({"high_mmio": {"start": 0x2_0000_0000, "end": 0x2_0000_0000}}, "is not below end"),
    ],
)
def test_unusable_fixed_windows_are_rejected_before_allocation(
    rc: dict[str, Any], message: str
) -> None:
    with pytest.raises(VmLayoutError, match=message) as caught:
        resolve(config_from_dict({"pcie_root_complexes": [_rc(**rc)]}))
    assert caught.value.kind == "invalid_config"


def test_unaligned_ram_start_address_is_rejected() -> None:
    with pytest.raises(VmLayoutError, match=r"^ram_start_address: 0x0-0x800 is not 4 KiB aligned"):
        resolve(config_from_dict({"ram_start_address": 0x800}))


def test_malformed_toml_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("node_mem_sizes = [\n")
    with pytest.raises(VmLayoutError, match="malformed TOML"):
        load_config(path)


def test_iommu_kinds_map_to_architectures() -> None:
    assert IommuKind.SMMU.arch is Arch.AARCH64
    assert IommuKind.AMD_VI.arch is IommuKind.INTEL_VTD.arch is Arch.X86_64
