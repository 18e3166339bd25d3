"""`inspect` names what it was given: a device tree of the wrong kind, a foreign ACPI
table that decoded (foreign, not undecodable)."""

from __future__ import annotations

from pathlib import Path

import pytest

import vmlayout
from tests.fuzzing import assert_one_line_error, run_main
from vmlayout.devicetree.fdt import Node, build_fdt, string
from vmlayout.errors import VmLayoutError
from vmlayout.inspect.dtb import require_tree

ARM = {"arch": "aarch64"}


def _linux_dtb() -> bytes:
    return vmlayout.artifact_set(vmlayout.resolve(ARM))["linux.dtb"]


def _paravisor_dtb() -> bytes:
    return vmlayout.artifact_set(vmlayout.resolve())["paravisor.dtb"]


def test_a_tree_of_the_wrong_kind_is_named() -> None:
    with pytest.raises(VmLayoutError, match=r"paravisor\.dtb: this is an arm64 Linux tree, not a"):
        require_tree(_linux_dtb(), "paravisor", "paravisor.dtb")
    with pytest.raises(VmLayoutError, match=r"is a paravisor \(IGVM host\) tree, not an arm64"):
        require_tree(_paravisor_dtb(), "linux", "linux.dtb")
    require_tree(_linux_dtb(), "linux", "linux.dtb")
    require_tree(_paravisor_dtb(), "paravisor", "paravisor.dtb")


def test_a_foreign_tree_is_named_as_such(tmp_path: Path) -> None:
    root = Node("", (("compatible", string("linux,dummy-virt")),))
    path = tmp_path / "qemu.dtb"
    path.write_bytes(build_fdt(root))
    assert_one_line_error(run_main("inspect", path), "a device tree vmlayout does not write")
    with pytest.raises(VmLayoutError, match="not write"):
        require_tree(build_fdt(root), "linux", "linux.dtb")


def _retagged(table: bytes, oem: bytes, extra: bytes = b"") -> bytes:
    data = bytearray(table + extra)
    data[4:8] = len(data).to_bytes(4, "little")
    data[10:16] = oem
    data[9] = 0
    data[9] = -sum(data) & 0xFF
    return bytes(data)


def test_a_foreign_table_is_foreign_not_undecodable(tmp_path: Path) -> None:
    mcfg = vmlayout.acpi_tables(vmlayout.resolve())["MCFG.aml"]
    # Another VMM's MCFG (OEM BOCHS) with a trailing reserved dword: its header and
    # checksum decode; its body is not 8 + 16·n bytes as vmlayout writes it.
    path = tmp_path / "MCFG.aml"
    path.write_bytes(_retagged(mcfg, b"BOCHS ", bytes(4)))
    result = vmlayout.inspect(path)
    (table,) = result.report["tables"]
    assert result.ok and table["origin"] == "foreign" and "not vmlayout's" in table["note"]
    text = run_main("inspect", path).stdout
    assert "foreign (not written by vmlayout)" in text and "undecodable" not in text
    # The same damage to one of our own tables is still refused.
    path.write_bytes(_retagged(mcfg, mcfg[10:16], bytes(4)))
    assert_one_line_error(run_main("inspect", path), "MCFG")
    # A foreign table that decodes fully keeps its contents.
    path.write_bytes(_retagged(mcfg, b"BOCHS "))
    (table,) = vmlayout.inspect(path).report["tables"]
    assert table["origin"] == "foreign" and table["ecam"] and "note" not in table


def test_a_tree_under_the_other_trees_name_fails_inspect(tmp_path: Path) -> None:
    path = tmp_path / "paravisor.dtb"
    path.write_bytes(_linux_dtb())
    out = run_main("inspect", path)
    assert out.status == 1
    assert "✗ paravisor.dtb: this is an arm64 Linux tree, not a paravisor" in out.stdout
    report = vmlayout.inspect(path)
    assert not report.ok and "arm64 Linux tree" in report.report["wrong_tree"]
    right = tmp_path / "linux.dtb"
    right.write_bytes(_linux_dtb())
    assert run_main("inspect", right).status == 0
    assert "wrong_tree" not in vmlayout.inspect(right).report


def _set(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "set"
    assert run_main("emit", "all", "-o", out, *args).status == 0
    return out


def test_a_swapped_tree_in_a_set_is_named_in_its_cells(tmp_path: Path) -> None:
    import json

    out = _set(tmp_path)
    arm = tmp_path / "arm"
    assert run_main("emit", "all", "--arch", "aarch64", "-o", arm).status == 0
    (out / "paravisor.dtb").write_bytes((arm / "linux.dtb").read_bytes())
    outcome = run_main("inspect", out, "--format", "json")
    assert outcome.status == 1
    cells = [
        cell
        for row in json.loads(outcome.stdout)["rows"]
        for view, cell in row["views"].items()
        if view == "DT paravisor"
    ]
    assert cells and all(c["status"] == "bad" for c in cells)
    assert all("this is an arm64 Linux tree, not a paravisor" in c["detail"] for c in cells)


def test_every_bad_cell_of_a_deleted_table_says_why(tmp_path: Path) -> None:
    import json

    out = _set(tmp_path)
    (out / "DSDT.aml").unlink()
    outcome = run_main("inspect", out, "--format", "json")
    assert outcome.status == 1
    bad = [
        cell
        for row in json.loads(outcome.stdout)["rows"]
        for cell in row["views"].values()
        if cell["status"] == "bad"
    ]
    assert bad and all("DSDT.aml missing" in c["detail"] for c in bad)


def test_an_edited_record_that_no_longer_resolves_names_the_file_and_request(
    tmp_path: Path,
) -> None:
    import json

    out = _set(tmp_path)
    record = json.loads((out / "config.json").read_text())
    record["config"]["pcie_root_complexes"][0]["low_mmio"] = {"size": 1 << 32}
    (out / "config.json").write_text(json.dumps(record))
    assert_one_line_error(
        run_main("inspect", out), "config.json", "no longer resolves", "pcie-rc0-low-mmio"
    )
