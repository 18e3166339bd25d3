"""`vmlayout diff`: the compatibility contract check, single pairs and corpora."""

from __future__ import annotations

import json
import os
from itertools import pairwise
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli import assert_one_line_error, run_cli
from tests.configs import TWO_SOCKET
from tests.fuzzing import assert_one_line_error as assert_refused
from tests.fuzzing import run_main
from tests.vectors import PROJECT_VECTORS
from vmlayout.config import DEFAULT_VM, config_from_dict, config_to_dict
from vmlayout.inspect.corpus import check_case, check_corpus, worker_count
from vmlayout.inspect.diff import Change, ChangeClass, RangeChange, diff_layouts, is_compatible
from vmlayout.policy import resolve
from vmlayout.ranges import MemoryRange
from vmlayout.report import named_ranges, resolved_to_json

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def layout(**changes: Any) -> dict[str, Any]:
    data = config_to_dict(DEFAULT_VM)
    data.update(changes)
    return resolved_to_json(resolve(config_from_dict(data)))


def test_identical_layouts_have_no_changes() -> None:
    assert diff_layouts(layout(), layout()) == []


def by_name(changes: list[RangeChange]) -> dict[str, RangeChange]:
    return {c.name: c for c in changes}


def test_more_ram_is_a_break_and_moves_windows_above_it() -> None:
    changes = by_name(diff_layouts(layout(), layout(node_mem_sizes=[8 << 30])))
    assert changes["chipset-high-mmio"].change is Change.MOVED
    assert changes["chipset-high-mmio"].before == MemoryRange(0x1_8000_0000, 0x1_A000_0000)
    assert changes["chipset-high-mmio"].after == MemoryRange(0x2_8000_0000, 0x2_A000_0000)
    assert changes["ram0-extent1"].change is Change.GREW
    assert changes["ram0-extent1"].change_class is ChangeClass.BREAK
    assert "ram0" not in changes  # the first extent [0, 3 GiB) stays where it was


def test_shrinking_ram_is_a_break_with_a_reason() -> None:
    changes = by_name(
        diff_layouts(layout(node_mem_sizes=[8 << 30]), layout(node_mem_sizes=[6 << 30]))
    )
    ram = changes["ram0-extent1"]
    assert (ram.change, ram.change_class) == (Change.SHRANK, ChangeClass.BREAK)
    assert "2 GiB" in ram.reason


def test_shrinking_the_high_window_is_a_break_growing_it_is_additive() -> None:
    config = dict(pcie_root_complexes=[], chipset_high_mmio_size=4 << 30)
    before = layout(**config)
    shrunk = by_name(diff_layouts(before, layout(**{**config, "chipset_high_mmio_size": 1 << 30})))
    assert shrunk["chipset-high-mmio"].change is Change.SHRANK
    assert shrunk["chipset-high-mmio"].change_class is ChangeClass.BREAK
    assert "3 GiB" in shrunk["chipset-high-mmio"].reason
    grown = diff_layouts(before, layout(**{**config, "chipset_high_mmio_size": 8 << 30}))
    assert [(c.name, c.change, c.change_class) for c in grown] == [
        ("chipset-high-mmio", Change.GREW, ChangeClass.ADDITIVE)
    ]
    assert is_compatible(grown)
    strict = diff_layouts(before, layout(**{**config, "chipset_high_mmio_size": 8 << 30}), True)
    assert not is_compatible(strict)


def test_disabling_the_high_window_is_a_vanish() -> None:
    changes = by_name(diff_layouts(layout(), layout(chipset_high_mmio_size=0)))
    assert changes["chipset-high-mmio"].change is Change.VANISHED
    assert changes["chipset-high-mmio"].change_class is ChangeClass.BREAK
    # ECAM was placed after the high window, so it now moves down into its place.
    assert changes["pcie-seg0-ecam"].change is Change.MOVED


def test_adding_vtl2_only_adds_ranges_each_once() -> None:
    changes = diff_layouts(layout(), layout(vtl2_chipset_mmio_size=1 << 30))
    assert {(c.change, c.change_class) for c in changes} == {
        (Change.APPEARED, ChangeClass.ADDITIVE)
    }
    assert [c.name for c in changes] == ["vtl2-chipset-mmio"]


def test_growing_the_two_socket_high_window_moves_exactly_the_three_ranges_above_it() -> None:
    changes = diff_layouts(
        layout(**TWO_SOCKET), layout(**{**TWO_SOCKET, "chipset_high_mmio_size": 8 << 30})
    )
    moved = sorted(c.name for c in changes if c.change is Change.MOVED)
    assert moved == ["pcie-seg0-ecam", "pcie-seg1-ecam", "vtl2-chipset-mmio"]
    assert len(changes) == 4  # plus the window itself, grown in place


def test_every_range_has_exactly_one_name() -> None:
    named = named_ranges(layout(**TWO_SOCKET))
    names = [n.name for n in named]
    assert len(names) == len(set(names))
    assert len({n.range for n in named}) == len(named)
    assert not any("." in name or "[" in name for name in names)
    roles = {n.window: n.name for n in named if n.window}
    assert roles["chipset high"] == "chipset-high-mmio"
    assert roles["chipset vtl2"] == "vtl2-chipset-mmio"
    assert roles["rc1 ECAM"] == "pcie-seg1-ecam"


def test_root_complexes_sharing_a_segment_get_their_own_ecam_rows() -> None:
    rcs = [
        {"name": "a", "segment": 0, "start_bus": 0, "end_bus": 15},
        {"name": "b", "segment": 0, "start_bus": 16, "end_bus": 31},
    ]
    names = {n.name: n.range for n in named_ranges(layout(pcie_root_complexes=rcs))}
    block = names["pcie-seg0-ecam"]
    assert block.size == 32 << 20
    assert names["pcie-a-ecam"] == MemoryRange(block.start, block.start + (16 << 20))
    assert names["pcie-b-ecam"] == MemoryRange(block.start + (16 << 20), block.end)


def test_cli_diff_exits_1_on_a_break_and_prints_the_verdict(tmp_path: Path) -> None:
    saved = tmp_path / "saved.json"
    saved.write_text(run_cli("resolve", "--format", "json").stdout)
    same = run_cli("diff", saved, EXAMPLES / "default.toml")
    assert same.returncode == 0 and "no differences" in same.stdout
    moved = run_cli("diff", saved, EXAMPLES / "numa-vtl2.toml", "--format", "json")
    assert moved.returncode == 1
    verdict = json.loads(moved.stdout)
    assert verdict["compatible"] is False
    names = {c["name"]: c for c in verdict["changes"]}
    assert names["chipset-high-mmio"]["change"] == "moved"
    assert names["chipset-high-mmio"]["class"] == "break"
    assert names["vtl2"]["class"] == "additive"
    assert verdict["counts"]["break"] == sum(c["class"] == "break" for c in verdict["changes"])
    assert all(c["reason"] for c in verdict["changes"])


def test_cli_diff_additive_exits_0_unless_strict(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(config_to_dict(DEFAULT_VM)))
    b.write_text(json.dumps({**config_to_dict(DEFAULT_VM), "vtl2_chipset_mmio_size": 1 << 30}))
    result = run_cli("diff", a, b)
    assert result.returncode == 0 and "compatible" in result.stdout
    strict = run_cli("diff", a, b, "--strict", "--format", "json")
    assert strict.returncode == 1 and json.loads(strict.stdout)["compatible"] is False


def test_cli_diff_bad_inputs_are_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"placed": [{"name": "x"}], "chipset": {}}')
    result = run_cli("diff", bad, bad)
    assert_one_line_error(result, "not a saved vmlayout layout")
    assert "KeyError" not in result.stderr
    assert_one_line_error(run_cli("diff", bad), "needs two layouts")


def _corpus(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_corpus_of_reference_vectors_is_all_same() -> None:
    summary = check_corpus(PROJECT_VECTORS / "resolver.jsonl", jobs=2, progress=False)
    assert summary.total == 1000 and summary.ok, summary.failures[:3]


def test_corpus_reports_breaks_error_changes_and_garbage_and_goes_on(tmp_path: Path) -> None:
    good = json.dumps({"id": "a", "config": config_to_dict(DEFAULT_VM), "expect": layout()})
    shifted = layout()
    shifted["chipset"]["high"] = [0x1_9000_0000, 0x1_B000_0000]
    moved = json.dumps({"id": "b", "config": config_to_dict(DEFAULT_VM), "expect": shifted})
    error = json.dumps(
        {"id": "c", "config": config_to_dict(DEFAULT_VM), "expect": {"error": "zero_ram"}}
    )
    no_expect = json.dumps({"id": "d", "config": config_to_dict(DEFAULT_VM)})
    lines = [good, moved, error, "not json", no_expect, "[1]", good]
    summary = check_corpus(_corpus(tmp_path, lines), jobs=1)
    assert summary.counts["same"] == 2
    assert [(f.case_id, f.status) for f in summary.failures] == [  # invalid lines first
        ("line 4", "invalid"),
        ("d", "invalid"),
        ("line 6", "invalid"),
        ("b", "break"),
        ("c", "error_changed"),
    ]
    assert summary.failures[3].changes[0].name == "chipset-high-mmio"
    reasons = [f.reason for f in summary.failures if f.status == "invalid"]
    assert reasons[1] == "missing field expect"
    assert not any("Error(" in r or "'" in r for r in reasons), reasons


def test_corpus_lists_every_failure_unless_capped(tmp_path: Path) -> None:
    bad = json.dumps({"config": config_to_dict(DEFAULT_VM), "expect": {"error": "x"}})
    path = _corpus(tmp_path, [bad] * 30)
    assert len(check_corpus(path, jobs=1).failures) == 30
    capped = check_corpus(path, jobs=1, keep=5)
    assert (len(capped.failures), capped.omitted, capped.ok) == (5, 25, False)


def test_corpus_additive_passes_unless_strict(tmp_path: Path) -> None:
    config = {**config_to_dict(DEFAULT_VM), "vtl2_chipset_mmio_size": 1 << 30}
    path = _corpus(tmp_path, [json.dumps({"config": config, "expect": layout()})])
    summary = check_corpus(path, jobs=1)
    assert summary.ok and summary.counts["additive"] == 1
    assert [c.name for c in summary.passing_changes[0].changes] == ["vtl2-chipset-mmio"]
    assert not check_corpus(path, jobs=1, strict=True).ok


def test_corpus_case_compares_error_kinds() -> None:
    line = json.dumps({"config": {"node_mem_sizes": []}, "expect": {"error": "no_numa_nodes"}})
    assert check_case((1, line, False)).status == "same"


def test_jobs_are_capped_at_the_cpu_count() -> None:
    assert worker_count(10_000) == (os.cpu_count() or 1)
    assert worker_count(1) == 1


def test_cli_corpus_exit_status_and_structured_json(tmp_path: Path) -> None:
    good = json.dumps({"id": "a", "config": config_to_dict(DEFAULT_VM), "expect": layout()})
    assert run_cli("diff", "--corpus", _corpus(tmp_path, [good])).returncode == 0
    bad = json.dumps({"id": "z", "config": config_to_dict(DEFAULT_VM), "expect": {"error": "x"}})
    result = run_cli("diff", "--corpus", _corpus(tmp_path, [good, bad, "{"]), "--format", "json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["counts"]["error_changed"] == 1 and data["counts"]["invalid"] == 1
    assert [f["status"] for f in data["failures"]] == ["invalid", "error_changed"]
    assert data["failures"][0]["reason"].startswith("JSON line: malformed JSON")


def test_cli_bless_creates_and_refreshes_a_corpus(tmp_path: Path) -> None:
    grown = {**config_to_dict(DEFAULT_VM), "node_mem_sizes": [8 << 30]}
    stale = json.dumps({"id": "old", "config": grown, "expect": layout()})
    fresh = json.dumps({"id": "new", "config": config_to_dict(DEFAULT_VM)})
    path = _corpus(tmp_path, [stale, fresh, "garbage"])
    assert run_cli("diff", "--corpus", path).returncode == 1
    blessed = run_cli("diff", "--corpus", path, "--bless")
    assert blessed.returncode == 1  # the garbage line is kept and reported
    assert "1 new, 1 refreshed, 0 unchanged, 1 invalid" in blessed.stdout
    lines = path.read_text().splitlines()
    assert json.loads(lines[1])["expect"] == layout()
    assert lines[2] == "garbage"
    path.write_text("\n".join(lines[:2]) + "\n")
    assert run_cli("diff", "--corpus", path).returncode == 0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=3),
    st.integers(min_value=0, max_value=16),
    st.integers(min_value=1, max_value=16),
)
def test_growing_the_high_window_never_touches_ram_and_names_are_unique(
    node_gib: list[int], high_gib: int, more_gib: int
) -> None:
    nodes = [n << 30 for n in node_gib]
    before = layout(node_mem_sizes=nodes, chipset_high_mmio_size=high_gib << 30)
    after = layout(node_mem_sizes=nodes, chipset_high_mmio_size=(high_gib + more_gib) << 30)
    for saved in (before, after):
        named = named_ranges(saved)
        assert len({n.name for n in named}) == len(named)
        assert all(a.range.end <= b.range.start for a, b in pairwise(named))
    assert diff_layouts(before, before) == []
    changes = diff_layouts(before, after)
    assert not any(c.name.startswith("ram") for c in changes)
    # only what sits above the window moves; the window itself grows (or appears)
    high = by_name(changes)["chipset-high-mmio"]
    assert high.change is (Change.GREW if high_gib else Change.APPEARED)
    assert all(c.change in (Change.MOVED, Change.GREW, Change.APPEARED) for c in changes)


def test_diff_help_says_additive_corpus_lines_pass_unless_strict() -> None:
    result = run_cli("diff", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "exit 1 unless every line is `same` or `additive`" in text
    assert "with --strict, unless every line is `same`" in text
    assert "exit 1 unless every line is `same`)" not in text


def test_corpus_invalid_config_names_config_once() -> None:
    for config, detail in (
        ([1], "config: expected a table/object, got list"),
        ({"node_mem_sizes": "x"}, "config: node_mem_sizes: expected a list of sizes"),
    ):
        result = check_case((1, json.dumps({"config": config, "expect": {}}), False))
        assert result.status == "invalid"
        assert " config: config:" not in f" {result.reason}", result.reason
        assert result.reason.startswith(f"invalid_config: {detail}"), result.reason


def _write_toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


THREE_AND_THREE = 'node_mem_sizes = ["3G", "3G"]\n'


def _gpu(bar: str, extra: str = "") -> str:
    return (
        f'[[pcie_root_complexes]]\nname = "rc0"\nhigh_mmio = {{ size = "64 GiB" }}\n{extra}\n'
        '[[pcie_root_complexes.devices]]\ntype = "endpoint"\ndevice = 0\n'
        f'bars = [{{ index = 0, size = "{bar}", bits = 64, prefetchable = true }}]\n'
    )


def test_issue_cases_are_additive_break_and_firmware(tmp_path: Path) -> None:
    # 3G+3G, chipset low 128 -> 256 MiB: the window grows down over
    # [0xF000_0000, 0xF800_0000), which nothing used (RAM ends at 3 GiB below 4 GiB).
    a = _write_toml(tmp_path / "a.toml", THREE_AND_THREE + 'chipset_low_mmio_size = "128M"\n')
    b = _write_toml(tmp_path / "b.toml", THREE_AND_THREE + 'chipset_low_mmio_size = "256M"\n')
    grew = run_main("diff", a, b, "--format", "json")
    assert grew.status == 0, grew.stdout
    (change,) = json.loads(grew.stdout)["changes"]
    assert (change["name"], change["change"], change["class"]) == (
        "chipset-low-mmio", "grew", "additive",
    )  # fmt: skip
    assert change["before"] == [0xF800_0000, 1 << 32]
    assert change["after"] == [0xF000_0000, 1 << 32]
    # A BAR of 8 -> 16 GiB: another device.
    small = _write_toml(tmp_path / "small.toml", _gpu("8 GiB"))
    big = _write_toml(tmp_path / "big.toml", _gpu("16 GiB"))
    bar = run_main("diff", small, big, "--format", "json")
    assert bar.status == 1
    classes = {c["name"]: (c["change"], c["class"]) for c in json.loads(bar.stdout)["changes"]}
    assert classes["rc0 00:00.0 BAR0"] == ("device_changed", "break")
    # numa_node: the guest sees another _PXM; no address moves.
    node = _write_toml(tmp_path / "node.toml", _gpu("8 GiB", "numa_node = 0"))
    firmware = run_main("diff", small, node, "--format", "json")
    assert firmware.status == 0
    verdict = json.loads(firmware.stdout)
    assert verdict["compatible"] and verdict["counts"]["firmware"] == 1
    (setting,) = verdict["changes"]
    assert setting == {
        "name": "rc0 numa_node",
        "change": "firmware_changed",
        "class": "firmware",
        "before": None,
        "after": 0,
        "reason": setting["reason"],
    }
    assert "_PXM" in setting["reason"]
    assert run_main("diff", "--strict", small, node).status == 1
    table = run_main("diff", small, node).stdout
    assert "firmware  firmware_changed  rc0 numa_node  (none)  0" in table


def test_growing_over_a_range_that_was_there_is_a_break() -> None:
    # Default VM: rc0's 64 MiB low window sits right below the 128 MiB chipset window
    # at [0xF400_0000, 0xF800_0000); a 256 MiB chipset window grows down over it.
    before = layout()
    after = layout(chipset_low_mmio_size=256 << 20)
    changes = by_name(diff_layouts(before, after))
    low = changes["chipset-low-mmio"]
    assert (low.change, low.change_class) == (Change.GREW, ChangeClass.BREAK)
    assert "pcie-rc0-low-mmio" in low.reason
    assert changes["pcie-rc0-low-mmio"].change is Change.MOVED


def test_other_firmware_settings_and_saved_layouts(tmp_path: Path) -> None:
    base = config_from_dict({"node_mem_sizes": ["2G", "2G"]})
    far = config_from_dict({"node_mem_sizes": ["2G", "2G"], "numa_distances": [[0, 1, 30]]})
    same = resolved_to_json(resolve(base))
    changes = diff_layouts(same, same, configs=(base, far))
    assert [(c.name, c.change_class) for c in changes] == [("numa_distances", ChangeClass.FIRMWARE)]
    assert is_compatible(changes) and not is_compatible(diff_layouts(same, same, True, (base, far)))
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps(same))
    out = run_main("diff", saved, saved)
    assert out.status == 0 and "not compared" in out.stdout


def test_an_error_names_its_side(tmp_path: Path) -> None:
    good = _write_toml(tmp_path / "good.toml", THREE_AND_THREE)
    bad = _write_toml(tmp_path / "bad.toml", 'node_mem_sizes = ["3G", "1K"]\n')
    assert_refused(run_main("diff", good, bad), "side B")
    assert_refused(run_main("diff", bad, good), "side A")


def test_processors_and_platform_fields_are_firmware_changes_by_leaf() -> None:
    base = config_from_dict({"arch": "aarch64"})
    other = config_from_dict(
        {"arch": "aarch64", "processors": {"vp_count": 4}, "platform": {"gic": {"msi": "v2m"}}}
    )
    same = resolved_to_json(resolve(base))
    changes = {c.name: c for c in diff_layouts(same, same, configs=(base, other))}
    assert set(changes) == {"processors.vp_count", "platform.gic.msi"}
    vp = changes["processors.vp_count"]
    assert (vp.change, vp.change_class) == (Change.FIRMWARE_CHANGED, ChangeClass.FIRMWARE)
    assert vp.to_json()["before"] == 2 and vp.to_json()["after"] == 4
    assert "processors" in vp.reason and changes["platform.gic.msi"].to_json()["after"] == "v2m"
