"""`vmlayout explain`: phase, ordering rule, window and predecessor of a range."""

from __future__ import annotations

import json

import pytest

from tests.cli import assert_one_line_error, run_cli
from vmlayout.config import DEFAULT_VM
from vmlayout.errors import VmLayoutError
from vmlayout.inspect.explain import explain
from vmlayout.ranges import MemoryRange


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
    with pytest.raises(VmLayoutError, match="nope: no such range; placed ranges are: chipset-low"):
        explain("nope", DEFAULT_VM)


def test_cli_explain_text_and_json() -> None:
    text = run_cli("explain", "pcie-seg0-ecam")
    assert text.returncode == 0
    assert "phase:        Mmio64 (phase 5 of 6)" in text.stdout
    assert "turn:         3 of 3" in text.stdout
    data = json.loads(run_cli("explain", "ram0", "--format", "json").stdout)
    assert data["phase"] == "Ram"
    assert_one_line_error(run_cli("explain", "missing"), "unknown_range")
