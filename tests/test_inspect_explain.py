"""`vmlayout explain`: phase, ordering rule, window and predecessor of a range."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fuzzing import assert_one_line_error, run_main
from vmlayout.config import DEFAULT_VM, config_from_dict, load_config
from vmlayout.errors import VmLayoutError
from vmlayout.inspect.explain import canonical_pci_name, explain
from vmlayout.policy import resolve
from vmlayout.ranges import MemoryRange
from vmlayout.report import range_names


def test_root_complex_low_window_is_explained_as_top_down_mmio32() -> None:
    result = explain("pcie-rc0-low-mmio", DEFAULT_VM).to_json()
    assert result["phase"] == "Mmio32"
    assert result["alignment"] == 2 << 20
    assert result["ranges"] == [[0xF400_0000, 0xF800_0000]]
    assert result["placed_after"] == "chipset-low-mmio"
    assert result["above"] == "chipset-low-mmio"
    assert result["search_region"] == [0, 1 << 32]
    assert "step 5a" in result["policy_rule"]


def test_mmio64_turn_follows_alignment_then_size() -> None:
    # Mmio64 order for the default VM: rc0 high (1 GiB align), chipset high (2 MiB), ECAM.
    high = explain("chipset-high-mmio", DEFAULT_VM)
    assert (high.record.position, high.record.phase_count) == (2, 3)
    assert high.previous is not None and high.previous.tag == "pcie-rc0-high-mmio"
    assert high.record.region == MemoryRange(0x1_4000_0000, 0xFFFF_FFFF_FFFF_F000)


def test_split_ram_lists_every_extent() -> None:
    result = explain("ram0", DEFAULT_VM)
    assert result.record.ranges == (
        MemoryRange(0, 0xC000_0000),
        MemoryRange(1 << 32, 0x1_4000_0000),
    )
    assert result.record.alignment == 1 << 30


def test_unknown_name_lists_the_placed_names() -> None:
    with pytest.raises(VmLayoutError, match="nope: no such range; ranges are: ram0, pcie-rc0"):
        explain("nope", DEFAULT_VM)


def test_a_near_miss_gets_did_you_mean() -> None:
    with pytest.raises(VmLayoutError, match="did you mean chipset-high-mmio\\?"):
        explain("chipset-hihg-mmio", DEFAULT_VM)


def test_every_name_resolve_prints_is_accepted() -> None:
    config = replace(DEFAULT_VM, node_mem_sizes=(8 << 30, 2 << 30))
    for name in range_names(resolve(config)):
        assert explain(name, config).to_json()["name"] == name


def test_a_split_ram_extent_is_explained_as_part_of_its_request() -> None:
    result = explain("ram0-extent1", DEFAULT_VM).to_json()
    assert result["request"] == "ram0"
    assert result["range"] == [1 << 32, 0x1_4000_0000]
    assert result["config_fields"] == ["node_mem_sizes[0]"]


def test_chain_lists_the_phase_before_and_the_fields_behind_the_address() -> None:
    result = explain("chipset-high-mmio", DEFAULT_VM).to_json()
    assert [(c["name"], c["size"], c["alignment"]) for c in result["previous_phase"]] == [
        ("ram0", 4 << 30, 1 << 30)
    ]
    assert [c["name"] for c in result["earlier_in_phase"]] == ["pcie-rc0-high-mmio"]
    assert result["config_fields"] == ["chipset_high_mmio_size"]
    assert "node_mem_sizes[0]" in result["depends_on"]
    assert "pcie_root_complexes[0].high_mmio" in result["depends_on"]
    assert "vtl2_chipset_mmio_size" not in result["depends_on"]


def test_search_window_is_clipped_to_the_address_width() -> None:
    config = replace(DEFAULT_VM, physical_address_size=40)
    assert explain("chipset-high-mmio", config).to_json()["search_region"][1] == 1 << 40


def test_cli_explain_text_and_json() -> None:
    text = run_main("explain", "pcie-seg0-ecam")
    assert text.status == 0
    assert "phase:        Mmio64 (phase 5 of 6)" in text.stdout
    assert "turn:         3 of 3" in text.stdout
    data = json.loads(run_main("explain", "ram0", "--format", "json").stdout)
    assert data["phase"] == "Ram"
    assert_one_line_error(run_main("explain", "missing"), "unknown_range")


def test_a_root_complex_ecam_share_is_explained_by_its_segment_block() -> None:
    config = config_from_dict(
        {
            "pcie_root_complexes": [
                {"name": "a", "segment": 0, "start_bus": 0, "end_bus": 15},
                {"name": "b", "segment": 0, "start_bus": 16, "end_bus": 31},
            ]
        }
    )
    names = range_names(resolve(config))
    assert {"pcie-seg0-ecam", "pcie-a-ecam", "pcie-b-ecam"} <= set(names)
    result = explain("pcie-b-ecam", config).to_json()
    assert result["request"] == "pcie-seg0-ecam"
    block = explain("pcie-seg0-ecam", config).to_json()["ranges"][0]
    assert result["range"] == [block[0] + (16 << 20), block[1]]


GPUS = Path(__file__).resolve().parent.parent / "examples" / "gpus.toml"


@pytest.mark.parametrize(
    "spelling",
    ["rc0 03:00.0 BAR1", "rc0 3:0.0 bar1", "RC0 03:00.0 Bar1", "rc0 0000:03:00.0 BAR1"],
)
def test_pci_names_take_any_case_and_bdf_spelling(spelling: str) -> None:
    out = run_main("explain", spelling, GPUS, "--format", "json")
    assert out.status == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["name"] == "rc0 03:00.0 BAR1"
    # 03:00.0 sits behind downstream port 02:00.0, upstream port 01:00.0, root port
    # 00:00.0 (examples/gpus.toml); its prefetchable BAR is decoded through their
    # prefetchable windows and rc0's high window.
    assert [c["name"] for c in data["chain"]] == [
        "rc0 03:00.0 BAR1", "rc0 02:00.0 pref", "rc0 01:00.0 pref", "rc0 00:00.0 pref",
        "pcie-rc0-high-mmio",
    ]  # fmt: skip


def test_a_segment_that_is_not_the_root_complexes_is_refused() -> None:
    config = load_config(GPUS)
    assert canonical_pci_name("rc0 0000:3:00.0 pref", config) == "rc0 03:00.0 pref"
    assert canonical_pci_name("ram0", config) is None
    with pytest.raises(VmLayoutError, match="segment 0000, not 0001"):
        canonical_pci_name("rc0 0001:03:00.0 BAR1", config)


def test_a_window_chain_starts_at_the_window() -> None:
    out = json.loads(run_main("explain", "rc0 01:00.0 mem", GPUS, "--format", "json").stdout)
    assert [c["name"] for c in out["chain"]] == [
        "rc0 01:00.0 mem", "rc0 00:00.0 mem", "pcie-rc0-low-mmio",
    ]  # fmt: skip


def test_neighbours_are_named_as_resolve_prints_them() -> None:
    # Default VM by address: ..., ram0-extent1 [4 GiB, 5 GiB), pcie-rc0-high-mmio, ...
    result = explain("pcie-rc0-high-mmio", DEFAULT_VM).to_json()
    assert result["below"] == "ram0-extent1"
    assert result["above"] == "chipset-high-mmio"
    assert explain("chipset-low-mmio", DEFAULT_VM).to_json()["above"] == "ram0-extent1"


def test_an_assignment_that_fails_fails_every_name(tmp_path: Path) -> None:
    config = tmp_path / "tight.toml"
    config.write_text(
        '[[pcie_root_complexes]]\nname = "rc0"\nlow_mmio = { size = "2 MiB" }\n'
        '[[pcie_root_complexes.devices]]\ntype = "endpoint"\ndevice = 0\n'
        'bars = [{ index = 0, size = "16 MiB" }]\n'
    )
    assert_one_line_error(run_main("explain", "ram0", config), "mmio_exhaustion", "rc0")


def test_without_a_root_complex_the_bdf_picks_it() -> None:
    for spelling in ("03:00.0 BAR1", "0000:03:00.0 bar1"):
        out = run_main("explain", spelling, GPUS, "--format", "json")
        assert out.status == 0 and json.loads(out.stdout)["name"] == "rc0 03:00.0 BAR1"
    assert_one_line_error(
        run_main("explain", "0001:03:00.0 BAR1", GPUS), "no root complex with devices"
    )
    # Two root complexes sharing bus 0x03 on different segments: the segment decides.
    endpoint = {"type": "endpoint", "device": 0, "bars": [{"index": 0, "size": "1M"}]}
    config = config_from_dict(
        {
            "pcie_root_complexes": [
                {"name": "a", "segment": 0, "start_bus": 3, "end_bus": 3, "devices": [endpoint]},
                {"name": "b", "segment": 1, "start_bus": 3, "end_bus": 3, "devices": [endpoint]},
            ]
        }
    )
    assert canonical_pci_name("0001:03:00.0 BAR0", config) == "b 03:00.0 BAR0"
    with pytest.raises(VmLayoutError, match=r"several root complexes \(a, b\)"):
        canonical_pci_name("03:00.0 BAR0", config)
