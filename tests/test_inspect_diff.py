"""`vmlayout diff`: the compatibility contract check, single pairs and corpora."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli import assert_one_line_error, run_cli
from tests.vectors import PROJECT_VECTORS
from vmlayout.config import DEFAULT_VM, config_from_dict, config_to_dict
from vmlayout.inspect.corpus import check_case, check_corpus
from vmlayout.inspect.diff import Change, diff_layouts
from vmlayout.policy import resolve
from vmlayout.ranges import MemoryRange
from vmlayout.report import resolved_to_json

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def layout(**changes: Any) -> dict[str, Any]:
    data = config_to_dict(DEFAULT_VM)
    data.update(changes)
    return resolved_to_json(resolve(config_from_dict(data)))


def test_identical_layouts_have_no_changes() -> None:
    assert diff_layouts(layout(), layout()) == []


def test_more_ram_moves_windows_above_it() -> None:
    changes = {c.name: c for c in diff_layouts(layout(), layout(node_mem_sizes=[8 << 30]))}
    assert changes["chipset-high-mmio"].change is Change.MOVED
    assert changes["chipset-high-mmio"].before == MemoryRange(0x1_8000_0000, 0x1_A000_0000)
    assert changes["chipset-high-mmio"].after == MemoryRange(0x2_8000_0000, 0x2_A000_0000)
    assert changes["ram0[1]"].change is Change.RESIZED
    assert "ram0" not in changes  # the first extent [0, 3 GiB) stays where it was


def test_disabling_the_high_window_is_a_vanish_not_a_move() -> None:
    changes = {c.name: c.change for c in diff_layouts(layout(), layout(chipset_high_mmio_size=0))}
    assert changes["chipset-high-mmio"] is Change.VANISHED
    assert changes["chipset.high"] is Change.VANISHED
    # ECAM was placed after the high window, so it now moves down into its place.
    assert changes["pcie-seg0-ecam"] is Change.MOVED


def test_adding_vtl2_only_adds_ranges() -> None:
    changes = diff_layouts(layout(), layout(vtl2_chipset_mmio_size=1 << 30))
    assert {c.change for c in changes} == {Change.APPEARED}
    assert {c.name for c in changes} == {"vtl2-chipset-mmio", "chipset.vtl2"}


def test_cli_diff_exits_1_when_a_shared_range_moved(tmp_path: Path) -> None:
    saved = tmp_path / "saved.json"
    saved.write_text(run_cli("resolve", "--format", "json").stdout)
    same = run_cli("diff", saved, EXAMPLES / "default.toml")
    assert same.returncode == 0 and "no differences" in same.stdout
    moved = run_cli("diff", saved, EXAMPLES / "numa-vtl2.toml", "--format", "json")
    assert moved.returncode == 1
    names = {c["name"]: c["change"] for c in json.loads(moved.stdout)["changes"]}
    assert names["chipset-high-mmio"] == "moved"
    assert names["vtl2"] == "appeared"


def test_cli_diff_bad_inputs_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"placed": [{"name": "x"}], "chipset": {}}')
    assert_one_line_error(run_cli("diff", bad, bad), "not a saved vmlayout layout")
    assert_one_line_error(run_cli("diff", bad), "needs two layouts")


def _corpus(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_corpus_of_reference_vectors_is_all_same() -> None:
    summary = check_corpus(PROJECT_VECTORS / "resolver.jsonl", jobs=2, progress=False)
    assert summary.total == 1000 and summary.ok, summary.failures[:3]


def test_corpus_reports_moves_error_changes_and_garbage(tmp_path: Path) -> None:
    good = json.dumps({"id": "a", "config": config_to_dict(DEFAULT_VM), "expect": layout()})
    shifted = layout()
    shifted["chipset"]["high"] = [0x1_9000_0000, 0x1_B000_0000]
    moved = json.dumps({"id": "b", "config": config_to_dict(DEFAULT_VM), "expect": shifted})
    error = json.dumps(
        {"id": "c", "config": config_to_dict(DEFAULT_VM), "expect": {"error": "zero_ram"}}
    )
    summary = check_corpus(_corpus(tmp_path, [good, moved, error, "not json"]), jobs=1)
    assert summary.counts["same"] == 1
    assert [(f.case_id, f.status) for f in summary.failures] == [
        ("b", "moved"),
        ("c", "error_changed"),
        ("line 4", "invalid"),
    ]


def test_corpus_case_compares_error_kinds() -> None:
    line = json.dumps({"config": {"node_mem_sizes": []}, "expect": {"error": "no_numa_nodes"}})
    assert check_case((1, line)).status == "same"


def test_cli_corpus_exit_status(tmp_path: Path) -> None:
    good = json.dumps({"id": "a", "config": config_to_dict(DEFAULT_VM), "expect": layout()})
    assert run_cli("diff", "--corpus", _corpus(tmp_path, [good])).returncode == 0
    bad = json.dumps({"id": "z", "config": config_to_dict(DEFAULT_VM), "expect": {"error": "x"}})
    result = run_cli("diff", "--corpus", _corpus(tmp_path, [good, bad]), "--format", "json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["counts"]["error_changed"] == 1
