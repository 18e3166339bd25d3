"""`pci.json` in `emit all`, its `inspect DIR` checks, `explain` of BARs, BARs in `map`."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli import assert_one_line_error, run_cli
from vmlayout.config import load_config
from vmlayout.inspect.picture import build_scene
from vmlayout.pci.check import nesting_problems
from vmlayout.pci_layout import assign_resolved
from vmlayout.policy import resolve

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "gpus.toml"


@pytest.fixture(scope="module")
def example() -> tuple[dict[str, Any], tuple[int, int], tuple[int, int]]:
    resolved = resolve(load_config(EXAMPLE))
    rc = resolved.pcie_root_complexes[0]
    result = assign_resolved(resolved)["rc0"].to_json()
    return result, (rc.low_mmio.start, rc.low_mmio.end), (rc.high_mmio.start, rc.high_mmio.end)


def test_the_example_assignment_nests_cleanly(example: Any) -> None:
    result, low, high = example
    assert nesting_problems(result, low, high) == []


def test_a_bar_moved_under_another_bridge_is_outside_its_parent_window(example: Any) -> None:
    result, low, high = example
    bad = copy.deepcopy(result)
    first, second = bad["bars"][0], bad["bars"][3]  # 03:00.0 BAR0, 04:00.0 BAR0
    first["address"] = second["address"]
    problems = nesting_problems(bad, low, high)
    assert any("outside its parent's windows" in p for p in problems)


def test_overlapping_bars_on_one_bus_are_reported(example: Any) -> None:
    result, low, high = example
    bad = copy.deepcopy(result)
    gpu = [b for b in bad["bars"] if b["bdf"] == "03:00.0"]
    gpu[2]["address"] = gpu[1]["address"]  # BAR3 onto BAR1, both in the same window
    problems = nesting_problems(bad, low, high)
    assert any("overlaps" in p for p in problems)


def test_a_misaligned_bar_is_reported(example: Any) -> None:
    result, low, high = example
    bad = copy.deepcopy(result)
    bad["bars"][0]["address"] += 0x1000
    assert any("not aligned" in p for p in nesting_problems(bad, low, high))


def test_a_bridge_window_outside_its_parent_is_reported(example: Any) -> None:
    result, low, high = example
    bad = copy.deepcopy(result)
    window = next(w for w in bad["bridge_windows"] if w["bdf"] == "02:00.0")
    window["mem"] = [low[1], low[1] + 0xFFFFF]
    assert any(
        "02:00.0 mem window" in p and "outside" in p for p in nesting_problems(bad, low, high)
    )


def test_emit_all_writes_pci_json_and_inspect_checks_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli("emit", "all", EXAMPLE, "-o", out).returncode == 0
    doc = json.loads((out / "pci.json").read_text())
    (rc,) = doc["root_complexes"]
    assert rc["name"] == "rc0" and len(rc["pci"]["bars"]) == 25
    result = run_cli("inspect", out)
    assert result.returncode == 0, result.stdout
    assert "PCI rc0 nesting" in result.stdout
    rc["pci"]["bars"][0]["address"] += 1 << 24
    (out / "pci.json").write_text(json.dumps(doc))
    result = run_cli("inspect", out)
    assert result.returncode == 1
    assert "✗ PCI / PCI rc0 nesting" in result.stdout


def test_emit_all_without_devices_writes_no_pci_json(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli("emit", "all", "-o", out).returncode == 0
    assert not (out / "pci.json").exists()


def test_explain_a_bar_names_its_pool_alignment_and_turn() -> None:
    result = run_cli("explain", "rc0 03:00.0 BAR1", EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "rc0 03:00.0 BAR1: 0x20_0000_0000..0x30_0000_0000 (64 GiB, 64-bit pref)" in result.stdout
    assert "mem64 pool" in result.stdout
    assert "alignment: 64 GiB" in result.stdout
    assert "turn:      1 of 3 on the secondary bus of bridge 02:00.0" in result.stdout


def test_explain_a_bridge_window_as_json() -> None:
    result = run_cli("explain", "rc0 00:02.0 mem", EXAMPLE, "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["kind"] == "window"
    assert doc["decision"]["pool"] == "mem32" and doc["decision"]["level"] == "root"


def test_explain_an_unknown_bar_suggests_close_names() -> None:
    assert_one_line_error(
        run_cli("explain", "rc0 03:00.0 BAR2", EXAMPLE), "unknown_name", "did you mean"
    )


def test_map_draws_every_bar_inside_the_pcie_windows() -> None:
    scene = build_scene(resolve(load_config(EXAMPLE)))
    bars = [b for b in scene.boxes if " BAR" in b.lines[0]]
    assert len(bars) == 25
    windows = [b for b in scene.boxes if b.lines[0].startswith("pcie-rc0-")]
    for bar in bars:
        assert any(w.y <= bar.y and bar.y + bar.height <= w.y + w.height for w in windows)
