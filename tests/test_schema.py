"""Config fields declared once: the loader, the serializer, the built-in VM, the library
and the docs all take the declarations in the dataclasses."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

import vmlayout
from tests.fuzzing import assert_one_line_error, run_main
from vmlayout.arch import Arch
from vmlayout.cli import main
from vmlayout.config import (
    RC_KEYS,
    TOP_LEVEL_KEYS,
    config_from_dict,
    config_to_dict,
    default_vm,
    load_config,
)
from vmlayout.errors import VmLayoutError
from vmlayout.platform import Platform
from vmlayout.policy import RootComplexConfig, VmConfig
from vmlayout.schema import section_rows
from vmlayout.topology import Processors

ROOT = Path(__file__).resolve().parent.parent


def test_the_loader_accepts_exactly_the_declared_fields() -> None:
    assert tuple(f.name for f in dataclasses.fields(VmConfig)) == TOP_LEVEL_KEYS
    assert "cxl" in RC_KEYS and "cxl_hdm_size" not in RC_KEYS  # the file's spelling
    assert len(RC_KEYS) == len(dataclasses.fields(RootComplexConfig))


@pytest.mark.parametrize("arch", list(Arch))
def test_the_default_vm_is_the_same_for_the_cli_the_library_and_the_dataclass(
    arch: Arch,
) -> None:
    """`VmConfig(arch=…)`, an empty file, `load_config(arch=…)`, `resolve --arch` and the
    built-in VM agree; the built-in VM adds only one default root complex."""
    assert VmConfig(arch=arch) == config_from_dict({"arch": arch.value})
    assert VmConfig(arch=arch).chipset_low_mmio_size == arch.spec.default_low_mmio_size
    built_in = default_vm(arch)
    assert built_in == dataclasses.replace(
        VmConfig(arch=arch), pcie_root_complexes=(RootComplexConfig(name="rc0"),)
    )
    assert vmlayout.load_config(arch=arch.value) == built_in
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["resolve", "--arch", arch.value, "--format", "json"]) == 0
    assert json.loads(out.getvalue()) == vmlayout.layout_json(vmlayout.resolve(built_in))
    if arch is Arch.X86_64:
        assert load_config(ROOT / "examples" / "default.toml") == built_in


def test_a_config_round_trips_through_its_dict_with_every_section() -> None:
    config = config_from_dict(
        {
            "arch": "aarch64",
            "processors": {"vp_count": 6, "vps_per_socket": 3, "smt": True},
            "platform": {"serial": True, "gic": {"msi": "v2m", "timer_ppi": 27}},
        }
    )
    assert config.processors == Processors(6, 3, True)
    assert config.platform.gic.msi == "v2m" and config.platform.gic.virt_timer_ppi == 27
    assert config_from_dict(json.loads(json.dumps(config_to_dict(config)))) == config


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ({"node_mem_size": ["4G"]}, ("node_mem_size", "did you mean 'node_mem_sizes'")),
        ({"processors": {"vp_cont": 2}}, ("processors.vp_cont", "did you mean 'vp_count'")),
        ({"platform": {"gic": {"timer": 27}}}, ("platform.gic.timer", "'timer_ppi'")),
        ({"processors": {"vp_count": 0}}, ("processors.vp_count", "1..4096")),
        ({"processors": {"vp_count": True}}, ("processors.vp_count", "integer")),
        ({"platform": {"gic": {"msi": "itss"}}}, ("platform.gic.msi", "did you mean 'its'")),
        ({"platform": {"uefi": {"entropy": "00"}}}, ("platform.uefi.entropy", "64 bytes")),
        ({"platform": {"uefi": {"bios_guid": "x"}}}, ("bios_guid", "not a GUID")),
        ({"arch": "aarch64", "platform": {"chipset_device": "pci0"}}, ("chipset_device",)),
        ({"platform": []}, ("platform", "table")),
        (
            {"arch": "aarch64", "processors": {"vp_count": 2100}},
            ("redistributors", "overlap the distributor"),
        ),
    ],
)
def test_bad_sections_are_one_error_naming_the_key(
    tmp_path: Path, data: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    with pytest.raises(VmLayoutError) as caught:
        config_from_dict(data)
    assert caught.value.kind == "invalid_config"
    for fragment in fragments:
        assert fragment in caught.value.message
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(data))
    assert_one_line_error(run_main("resolve", path), *fragments)


def test_docs_list_every_processor_and_platform_field_with_its_default() -> None:
    """docs/config.md's sections table is what the declarations say (regenerate it from
    `section_rows` when a field changes)."""
    text = (ROOT / "docs" / "config.md").read_text()
    table = text.split("<!-- sections table: generated from vmlayout.schema.section_rows -->")[1]
    table = table.split("<!-- end of sections table -->")[0]
    documented = re.findall(r"^\| `([a-z0-9_.]+)` \| (.+?) \|", table, flags=re.M)
    rows = section_rows(Processors, "processors") + section_rows(Platform, "platform")
    assert [key for key, _ in documented] == [path for path, _, _ in rows]
    for (_, shown), (_, default, _) in zip(documented, rows, strict=True):
        assert shown.strip("`") == default


def test_docs_name_every_top_level_field() -> None:
    text = (ROOT / "docs" / "config.md").read_text()
    for key in TOP_LEVEL_KEYS:
        assert f"| `{key}` |" in text, key
