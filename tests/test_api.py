"""The library surface gives, in memory, exactly what the reference and the CLI give."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import vmlayout
from tests.vectors import PROJECT_VECTORS, read_cases
from vmlayout.devicetree.fdt import decoded_tree, read_fdt

REPO = Path(__file__).resolve().parent.parent


def _first_ok(filename: str, arch: str | None = None) -> dict[str, Any]:
    for case in read_cases(PROJECT_VECTORS / filename):
        if "error" not in case["expect"] and arch in (None, case["config"].get("arch")):
            return case
    raise AssertionError(f"no successful case in {filename}")


def test_every_public_name_resolves_and_is_listed() -> None:
    for name in vmlayout.__all__:
        assert getattr(vmlayout, name) is not None
    assert sorted(vmlayout.__all__) == sorted(dir(vmlayout))
    assert set(vmlayout.__all__) == {"__version__", *vmlayout._EXPORTS}  # one list
    with pytest.raises(AttributeError):
        vmlayout.no_such_name  # noqa: B018


def test_importing_the_package_loads_no_stage() -> None:
    code = "import sys, vmlayout; print(sorted(m for m in sys.modules if m.startswith('vmlayout')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.replace("'", '"')) == ["vmlayout"]


def test_load_config_accepts_a_path_a_mapping_keywords_or_nothing() -> None:
    from vmlayout.config import DEFAULT_VM

    assert vmlayout.load_config() == DEFAULT_VM
    assert vmlayout.load_config(REPO / "examples" / "default.toml") == DEFAULT_VM
    by_mapping = vmlayout.load_config({"node_mem_sizes": ["8G"]})
    assert by_mapping == vmlayout.load_config(node_mem_sizes=[8 << 30])
    assert by_mapping.node_mem_sizes == (8 << 30,)
    overridden = vmlayout.load_config({"node_mem_sizes": ["8G"]}, node_mem_sizes=["2G"])
    assert overridden.node_mem_sizes == (2 << 30,)
    assert vmlayout.load_config(arch="aarch64").arch is vmlayout.Arch.AARCH64


def test_invalid_keyword_is_one_error_naming_the_field() -> None:
    with pytest.raises(vmlayout.VmLayoutError) as caught:
        vmlayout.load_config(node_mem_sizes=["4GB"])
    assert caught.value.kind == "invalid_config"
    assert "node_mem_sizes[0]" in caught.value.message


def test_resolve_and_layout_json_equal_a_resolver_vector() -> None:
    case = _first_ok("resolver.jsonl")
    assert vmlayout.layout_json(vmlayout.resolve(case["config"])) == case["expect"]


def test_config_json_loads_back_equal() -> None:
    config = vmlayout.load_config(REPO / "examples" / "numa-vtl2.toml")
    assert vmlayout.load_config(vmlayout.config_json(config)) == config


def test_firmware_views_equal_the_reference_vectors() -> None:
    case = _first_ok("e820.jsonl")
    e820 = vmlayout.e820_map(vmlayout.resolve(case["config"]))
    assert [list(e) for e in e820] == case["expect"]["e820"]
    case = _first_ok("pcat.jsonl")
    assert vmlayout.pcat_config(vmlayout.resolve(case["config"])) == case["expect"]
    case = _first_ok("mtrr.jsonl")
    assert [list(p) for p in vmlayout.reference_mtrrs(vmlayout.resolve(case["config"]))] == (
        case["expect"]["mtrrs"]
    )
    case = _first_ok("uefi.jsonl")
    blob = vmlayout.uefi_config_blob(vmlayout.resolve(case["config"]), layout_only=True)
    assert blob.hex() == case["expect"]["blob"]


def test_acpi_tables_equal_the_reference_vector() -> None:
    case = _first_ok("acpi-tables.jsonl")
    tables = vmlayout.acpi_tables(vmlayout.resolve(case["config"]))
    for signature, table in case["expect"]["tables"].items():
        assert tables[f"{signature}.aml"].hex() == table


def test_device_trees_decode_to_the_reference_trees() -> None:
    case = _first_ok("dt-linux.jsonl")
    one_vp = {"processors": {"vp_count": 1}}  # as the reference made the vectors
    blob = vmlayout.linux_device_tree(vmlayout.resolve({**case["config"], **one_vp}))
    assert decoded_tree(read_fdt(blob)) == case["expect"]["tree"]
    case = _first_ok("dt-paravisor.jsonl")
    blob = vmlayout.paravisor_device_tree(vmlayout.resolve({**case["config"], **one_vp}))
    assert decoded_tree(read_fdt(blob)) == case["expect"]["tree"]


def test_pci_assignment_is_what_resolve_json_carries() -> None:
    resolved = vmlayout.resolve(REPO / "examples" / "gpus.toml")
    assignment = vmlayout.pci_assignment(resolved)
    layout = vmlayout.layout_json(resolved)
    carried = {rc["name"]: rc["pci"] for rc in layout["pcie_root_complexes"] if "pci" in rc}
    assert assignment == carried and assignment


def test_artifact_set_equals_emit_all(tmp_path: Path) -> None:
    from vmlayout.cli import main

    assert main(["emit", "all", "-o", str(tmp_path / "set")]) == 0
    files = vmlayout.artifact_set(vmlayout.resolve())
    on_disk = {p.name: p.read_bytes() for p in (tmp_path / "set").iterdir()}
    assert files == on_disk


def test_the_worked_example_in_the_docs_runs() -> None:
    import re

    text = (REPO / "docs" / "api.md").read_text(encoding="utf-8")
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match is not None
    exec(compile(match.group(1), "docs/api.md", "exec"), {})
