"""`vmlayout inspect` on every file `emit all` writes, and the directory cross-check's
whole-set checks: table checksums as their own cell, processor affinity, files that are
not part of the set."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tests.configs import TWO_SOCKET
from vmlayout.artifacts import EmitSettings, build_artifact_set, load_artifact_set
from vmlayout.cli import main
from vmlayout.config import DEFAULT_VM, config_from_dict, config_to_dict, default_vm
from vmlayout.inspect import e820 as e820_inspector
from vmlayout.inspect import igvm as igvm_inspector
from vmlayout.inspect.crosscheck import (
    CHECKSUM_ROW,
    VP_ROW,
    all_views,
    compare,
    directory_findings,
)
from vmlayout.output import write_directory_atomic
from vmlayout.policy import VmConfig, resolve

#: One VP per socket: VP 0 in vNUMA node 0, VP 1 in node 1.
SPLIT_VPS = {"processors": {"vp_count": 2, "vps_per_socket": 1}}


def two_socket() -> VmConfig:
    return config_from_dict({**config_to_dict(DEFAULT_VM), **TWO_SOCKET, **SPLIT_VPS})


def aarch64() -> VmConfig:
    return config_from_dict({**config_to_dict(default_vm("aarch64")), **SPLIT_VPS})


def write_set(tmp_path: Path, config: VmConfig, settings: EmitSettings | None = None) -> Path:
    out = tmp_path / "set"
    files = build_artifact_set(resolve(config), settings or EmitSettings())
    write_directory_atomic(out, files)
    return out


@pytest.mark.parametrize("config", [two_socket, aarch64], ids=["x86_64", "aarch64"])
def test_every_file_emit_all_writes_decodes_on_its_own(
    tmp_path: Path, config: object, capsys: pytest.CaptureFixture[str]
) -> None:
    assert callable(config)
    directory = write_set(tmp_path, config())
    names = sorted(p.name for p in directory.iterdir())
    assert {"layout.json", "config.json"} <= set(names)
    for name in names:
        assert main(["inspect", str(directory / name)]) == 0, name
        assert capsys.readouterr().out.startswith(name) or name.endswith((".aml", ".bin"))
        assert main(["inspect", str(directory / name), "--format", "json"]) == 0, name
        json.loads(capsys.readouterr().out)


def test_layout_json_decodes_under_the_one_naming(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = write_set(tmp_path, two_socket())
    assert main(["inspect", str(directory / "layout.json"), "--format", "json"]) == 0
    ranges = json.loads(capsys.readouterr().out)["ranges"]
    names = [r["name"] for r in ranges]
    assert len(names) == len(set(names))
    assert {r["name"]: r["window"] for r in ranges}["vtl2-chipset-mmio"] == "chipset vtl2"


def test_mtrr_json_decodes_pairs_and_lints_the_reference_base(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = write_set(tmp_path, DEFAULT_VM, EmitSettings())
    assert main(["inspect", str(directory / "mtrr.json"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["physical_address_size"] == 46
    assert doc["pairs"][1]["covers"] == [[0, 1 << 32]]  # PHYSBASE1 0x800_0006, 4 GiB mask
    assert any("PHYSBASE1 0x800_0006 is not aligned" in finding for finding in doc["lint"])


def test_e820_and_igvm_sniffers_refuse_other_bytes() -> None:
    junk = Path("x.bin")
    assert not e820_inspector.sniff(junk, bytes(40))  # type 0 and size 0 are no E820
    assert not e820_inspector.sniff(junk, b"\xff" * 21)
    assert not igvm_inspector.sniff(junk, b"\xff" * 32)  # beyond 2^64


def _fix_checksum(table: bytearray) -> None:
    table[9] = 0
    table[9] = -sum(table) & 0xFF


def _srat_lapic_offsets(srat: bytes) -> dict[int, int]:
    """APIC id -> offset of its Local APIC affinity entry."""
    out, offset = {}, 48
    while offset < len(srat):
        kind, length = srat[offset], srat[offset + 1]
        if kind == 0:
            out[srat[offset + 3]] = offset
        offset += length
    return out


def cells_of(directory: Path) -> dict[tuple[str, str], str]:
    artifacts = load_artifact_set(directory)
    report = compare(artifacts, resolve(artifacts.config), all_views(), strict=False)
    return {key: cell.status for key, cell in report.cells.items()}


def test_a_cpu_moved_to_another_vnode_in_srat_is_caught(tmp_path: Path) -> None:
    directory = write_set(tmp_path, two_socket())
    assert "bad" not in cells_of(directory).values()
    srat = bytearray((directory / "SRAT.aml").read_bytes())
    entry = _srat_lapic_offsets(bytes(srat))[1]
    assert srat[entry + 2] == 1  # VP 1 sits in node 1 with one VP per socket
    srat[entry + 2] = 0
    _fix_checksum(srat)
    (directory / "SRAT.aml").write_bytes(bytes(srat))
    bad = {key for key, status in cells_of(directory).items() if status == "bad"}
    assert bad == {(VP_ROW, "SRAT")}


def test_a_cpu_node_moved_in_the_paravisor_tree_is_caught(tmp_path: Path) -> None:
    from vmlayout.devicetree.fdt import Node, build_fdt, read_fdt, u32

    def move_vp1(node: Node) -> Node:
        props = node.properties
        if node.name == "cpu@2":  # VP 1 (reg 1), in node 1 with one VP per socket
            assert dict(props)["numa-node-id"] == u32(1)
            props = tuple((k, u32(0) if k == "numa-node-id" else v) for k, v in props)
        return dataclasses.replace(
            node, properties=props, children=tuple(map(move_vp1, node.children))
        )

    directory = write_set(tmp_path, two_socket())
    tree = read_fdt((directory / "paravisor.dtb").read_bytes())
    (directory / "paravisor.dtb").write_bytes(build_fdt(move_vp1(tree)))
    bad = {key for key, status in cells_of(directory).items() if status == "bad"}
    assert bad == {(VP_ROW, "DT paravisor")}


def test_a_table_with_a_bad_checksum_is_still_decoded_and_compared(tmp_path: Path) -> None:
    directory = write_set(tmp_path, two_socket())
    srat = bytearray((directory / "SRAT.aml").read_bytes())
    srat[9] ^= 0xFF  # only the checksum: every row still agrees
    (directory / "SRAT.aml").write_bytes(bytes(srat))
    bad = {key for key, status in cells_of(directory).items() if status == "bad"}
    assert bad == {(CHECKSUM_ROW, "SRAT")}
    # a moved CPU without fixing the checksum: both cells, each saying what it is
    entry = _srat_lapic_offsets(bytes(srat))[1]
    srat[entry + 2] = 0
    (directory / "SRAT.aml").write_bytes(bytes(srat))
    bad = {key for key, status in cells_of(directory).items() if status == "bad"}
    assert bad == {(CHECKSUM_ROW, "SRAT"), (VP_ROW, "SRAT")}


def test_files_not_written_by_vmlayout_and_files_from_another_set_are_flagged(
    tmp_path: Path,
) -> None:
    directory = write_set(tmp_path, two_socket())
    (tmp_path / "other").mkdir()
    other = write_set(tmp_path / "other", DEFAULT_VM)
    (directory / "notes.txt").write_text("mine")
    (directory / "layout.json").write_bytes((other / "layout.json").read_bytes())
    artifacts = load_artifact_set(directory)
    found = directory_findings(directory, artifacts, resolve(artifacts.config))
    assert any(f.startswith("notes.txt: not written by vmlayout") for f in found)
    assert any(f.startswith("layout.json: not the bytes") for f in found)
    assert len(found) == 2
