"""The view registry: one list of artifact kinds that every consumer iterates."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

from vmlayout.arch import Arch
from vmlayout.artifacts import (
    CONFIG_FILE,
    VIEWS,
    EmitSettings,
    build_artifact_set,
    inspector_modules,
)
from vmlayout.config import config_from_dict, default_vm
from vmlayout.policy import resolve

ROOT = Path(__file__).resolve().parent.parent

#: A VM that has every view of its architecture (devices give pci.json).
EVERYTHING = {
    "node_mem_sizes": ["2G", "2G"],
    "platform": {"x86": {"bios_date": "01/01/2010"}},
    "pcie_root_complexes": [
        {
            "name": "rc0",
            "devices": [{"type": "endpoint", "device": 1, "bars": [{"index": 0, "size": "1M"}]}],
        }
    ],
}


def test_every_view_names_a_real_inspector_and_cross_check_columns() -> None:
    names = [v.name for v in VIEWS]
    assert len(set(names)) == len(names)
    for view in VIEWS:
        assert view.inspector is not None
        module = importlib.import_module(view.inspector)
        assert callable(module.sniff) and callable(module.inspect), view.name
        columns = view.load_columns()
        assert bool(columns) == (view.columns is not None), view.name
    assert set(inspector_modules()) == {v.inspector for v in VIEWS}


@pytest.mark.parametrize("arch", list(Arch))
def test_emit_all_writes_exactly_the_views_of_the_architecture(arch: Arch) -> None:
    config = config_from_dict({**EVERYTHING, "arch": arch.value})
    files = build_artifact_set(resolve(config), EmitSettings())
    single = {v.files for v in VIEWS if v.exists_on(arch) and not v.files.startswith("`")}
    assert single | {CONFIG_FILE} == {n for n in files if not n.endswith((".aml", "RSDP.bin"))}
    assert all(v.exists_on(arch) or v.files not in files for v in VIEWS)


def test_every_json_artifact_carries_a_format_key() -> None:
    files = build_artifact_set(resolve(config_from_dict(EVERYTHING)), EmitSettings())
    for name, data in files.items():
        if name.endswith(".json"):
            assert str(json.loads(data).get("format", "")).startswith("vmlayout-"), name


def test_the_readme_table_lists_every_view() -> None:
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- views table: generated from vmlayout.artifacts.VIEWS -->")[1]
    table = table.split("<!-- end of views table -->")[0]
    rows = re.findall(r"^\| (.+?) \| (.+?) \| (.+?) \|$", table, flags=re.M)[1:]
    listed = [(f, archs) for f, archs, _ in rows]
    for view in VIEWS:
        shown = view.files if view.files.startswith("`") else f"`{view.files}`"
        assert (shown, ", ".join(a.value for a in view.archs)) in listed, view.name


def test_a_view_the_architecture_lacks_is_refused_by_name() -> None:
    from vmlayout.artifacts import require_view
    from vmlayout.errors import VmLayoutError

    with pytest.raises(VmLayoutError) as caught:
        require_view(resolve(default_vm("aarch64")), "e820")
    assert caught.value.kind == "unsupported_arch"
    assert "x86_64" in caught.value.message


def test_a_record_from_before_the_sections_still_loads(tmp_path: Path) -> None:
    """Sets written before `[processors]`/`[platform]` kept the VP settings and the MTRR
    choices under `settings`; loading one moves them into the config."""
    from vmlayout.artifacts import load_artifact_set

    files = build_artifact_set(resolve(default_vm()), EmitSettings())
    record = json.loads(files[CONFIG_FILE])
    del record["config"]["processors"]
    del record["config"]["platform"]
    record["settings"]["cpus"] = {"vp_count": 3, "vps_per_socket": 1}
    record["settings"]["mtrr"] = {
        "policy": "exact", "count": 9, "loader": "pcat", "approximate": True,
    }  # fmt: skip
    (tmp_path / CONFIG_FILE).write_text(json.dumps(record))
    config = load_artifact_set(tmp_path).config
    assert (config.processors.vp_count, config.processors.vps_per_socket) == (3, 1)
    mtrr = config.platform.mtrr
    assert (mtrr.policy, mtrr.count, mtrr.loader, mtrr.approximate) == ("exact", 9, "pcat", True)


def test_a_bios_date_adds_smbios_bin_which_inspect_reads(tmp_path: Path) -> None:
    """The SMBIOS view (one module, one registry entry): written only when the platform
    gives a BIOS date, decoded by `inspect`, and part of a consistent set."""
    from tests.fuzzing import run_main

    config = tmp_path / "vm.toml"
    config.write_text('[platform.x86]\nbios_date = "03/04/2021"\n')
    out = tmp_path / "set"
    assert run_main("emit", "all", config, "-o", out).status == 0
    blob = (out / "smbios.bin").read_bytes()
    assert blob[:5] == b"_SM3_" and sum(blob[:24]) & 0xFF == 0  # anchor, checksum
    assert b"03/04/2021\0" in blob
    shown = run_main("inspect", out / "smbios.bin", "--format", "json")
    assert json.loads(shown.stdout) == {
        "kind": "smbios", "table_address": 0xF0000 + 24, "bios_date": "03/04/2021",
    }  # fmt: skip
    report = run_main("inspect", out)
    assert report.status == 0 and "smbios.bin" not in report.stdout  # no warning about it
    assert run_main("emit", "all", "-o", tmp_path / "plain").status == 0
    assert not (tmp_path / "plain" / "smbios.bin").exists()
