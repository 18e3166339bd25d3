"""`emit all` + `vmlayout inspect DIR`: every view must describe the same layout, and
a view that disagrees must light up exactly its own cells."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.cli import assert_one_line_error, run_cli
from vmlayout.artifacts import (
    ArtifactSet,
    EmitSettings,
    build_artifact_set,
    load_artifact_set,
    settings_from_json,
)
from vmlayout.config import DEFAULT_VM, config_from_dict, config_to_dict, default_vm, load_config
from vmlayout.errors import VmLayoutError
from vmlayout.inspect.crosscheck import (
    REGISTER_ROWS,
    Cell,
    all_views,
    compare,
    expected_rows,
    merge_ranges,
)
from vmlayout.layout import ChipsetMmioRanges, MemoryRangeWithNode
from vmlayout.output import write_directory_atomic
from vmlayout.policy import ResolvedLayout, VmConfig, resolve
from vmlayout.ranges import GIB, MIB, MemoryRange

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SETTINGS = EmitSettings()


def aarch64_config() -> VmConfig:
    return default_vm("aarch64")


CONFIGS = {
    "x86_64": DEFAULT_VM,
    "aarch64": aarch64_config(),
    "numa-vtl2": load_config(EXAMPLES / "numa-vtl2.toml"),
    "large-4tib": load_config(EXAMPLES / "large-4tib.toml"),
}


def artifact_set(files: dict[str, bytes]) -> ArtifactSet:
    """What `load_artifact_set` gives for a directory holding `files`."""
    record = json.loads(files["config.json"])
    return ArtifactSet(
        config=config_from_dict(record["config"]),
        settings=settings_from_json(record["settings"], Path("config.json")),
        files={k: v for k, v in files.items() if k != "config.json"},
    )


def check_files(resolved: ResolvedLayout, files: dict[str, bytes]) -> dict[tuple[str, str], Cell]:
    return dict(compare(artifact_set(files), resolved, all_views(), strict=False).cells)


# --- tampering: a layout that differs from the real one in exactly one row family ---


def shrink_high(r: ResolvedLayout) -> tuple[ResolvedLayout, set[str]]:
    c = r.chipset
    high = MemoryRange(c.high.start, c.high.end - 2 * MIB)
    return dataclasses.replace(r, chipset=ChipsetMmioRanges(c.low, high, c.vtl2)), {"chipset high"}


def shrink_low(r: ResolvedLayout) -> tuple[ResolvedLayout, set[str]]:
    c = r.chipset
    low = MemoryRange(c.low.start + 2 * MIB, c.low.end)
    return dataclasses.replace(r, chipset=ChipsetMmioRanges(low, c.high, c.vtl2)), {"chipset low"}


def shrink_last_ram(r: ResolvedLayout) -> tuple[ResolvedLayout, set[str]]:
    ram = list(r.memory_layout.ram)
    last = ram[-1]
    ram[-1] = MemoryRangeWithNode(
        MemoryRange(last.range.start, last.range.end - 2 * MIB), last.vnode
    )
    layout = dataclasses.replace(r.memory_layout, ram=tuple(ram))
    return dataclasses.replace(r, memory_layout=layout), {"RAM", f"RAM node {last.vnode}"}


def move_first_ecam(r: ResolvedLayout) -> tuple[ResolvedLayout, set[str]]:
    rc = r.pcie_root_complexes[0]
    moved = dataclasses.replace(
        rc, ecam=MemoryRange(rc.ecam.start + 256 * MIB, rc.ecam.end + 256 * MIB)
    )
    return dataclasses.replace(r, pcie_root_complexes=(moved, *r.pcie_root_complexes[1:])), {
        f"ECAM {rc.name}"
    }


def shrink_rc_high(r: ResolvedLayout) -> tuple[ResolvedLayout, set[str]]:
    rc = r.pcie_root_complexes[0]
    window = MemoryRange(rc.high_mmio.start, rc.high_mmio.end - 2 * MIB)
    moved = dataclasses.replace(rc, high_mmio=window)
    return dataclasses.replace(r, pcie_root_complexes=(moved, *r.pcie_root_complexes[1:])), {
        f"{rc.name} high MMIO"
    }


def shrink_vtl2(r: ResolvedLayout) -> tuple[ResolvedLayout, set[str]]:
    c = r.chipset
    vtl2 = MemoryRange(c.vtl2.start, c.vtl2.end - 2 * MIB)
    return dataclasses.replace(r, chipset=ChipsetMmioRanges(c.low, c.high, vtl2)), {"chipset vtl2"}


TAMPERS: dict[str, Callable[[ResolvedLayout], tuple[ResolvedLayout, set[str]]]] = {
    "high": shrink_high,
    "low": shrink_low,
    "ram": shrink_last_ram,
    "ecam": move_first_ecam,
    "rc-window": shrink_rc_high,
}


def test_merge_ranges_joins_touching_pieces_and_drops_empty_ones() -> None:
    pieces = [MemoryRange(0x3000, 0x4000), MemoryRange(0, 0x1000), MemoryRange(0x1000, 0x2000)]
    assert merge_ranges([*pieces, MemoryRange(0x9000, 0x9000)]) == (
        MemoryRange(0, 0x2000),
        MemoryRange(0x3000, 0x4000),
    )


def test_expected_rows_follow_the_resolved_layout() -> None:
    rows = expected_rows(resolve(DEFAULT_VM))
    assert rows["chipset low"] == (MemoryRange(0xF800_0000, 0x1_0000_0000),)
    assert rows["RAM"] == (MemoryRange(0, 0xC000_0000), MemoryRange(0x1_0000_0000, 0x1_4000_0000))
    assert rows["chipset vtl2"] == ()  # empty windows are absent, not zero-length


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_a_fresh_artifact_set_is_consistent(name: str) -> None:
    resolved = resolve(CONFIGS[name])
    files = build_artifact_set(resolved, SETTINGS)
    cells = check_files(resolved, files)
    assert cells, "no view checked anything"
    assert {k: c for k, c in cells.items() if c.status != "ok"} == {}


@pytest.mark.parametrize(
    ("config_name", "tamper"),
    [(c, t) for c in ("x86_64", "aarch64") for t in sorted(TAMPERS)] + [("numa-vtl2", "vtl2")],
)
def test_a_view_built_from_a_different_layout_turns_exactly_its_cells_red(
    config_name: str, tamper: str
) -> None:
    resolved = resolve(CONFIGS[config_name])
    good = build_artifact_set(resolved, SETTINGS)
    bad_layout, rows = {**TAMPERS, "vtl2": shrink_vtl2}[tamper](resolved)
    bad = build_artifact_set(bad_layout, SETTINGS)
    checked = 0
    for view in all_views():
        if not any(f in good for f in view.files) or not any(view.covers(r) for r in rows):
            continue
        if all(good.get(f) == bad.get(f) for f in view.files):
            # the view does not carry these rows in this configuration (e.g. empty window)
            assert not any(expected_rows(resolved).get(r) for r in rows if view.covers(r))
            continue
        mixed = dict(good)
        mixed.update({f: bad[f] for f in view.files if f in bad})
        cells = check_files(resolved, mixed)
        # register rows derive from RAM and windows, so they may follow a layout change
        red = {
            key
            for key, cell in cells.items()
            if cell.status == "bad" and key[0] not in REGISTER_ROWS
        }
        assert red == {(r, view.name) for r in rows if (r, view.name) in cells}, view.name
        assert red, view.name
        checked += 1
    assert checked >= 1


@pytest.mark.parametrize("config_name", ["x86_64", "aarch64"])
def test_an_undecodable_or_missing_artifact_fails_every_cell_of_its_view(
    config_name: str,
) -> None:
    resolved = resolve(CONFIGS[config_name])
    good = build_artifact_set(resolved, SETTINGS)
    for view in all_views():
        present = [f for f in view.files if f in good]
        if not present:
            continue
        for damage in ("truncate", "delete"):
            mixed = dict(good)
            if damage == "truncate":
                mixed[present[0]] = good[present[0]][: len(good[present[0]]) // 3]
            else:
                del mixed[present[0]]
            cells = check_files(resolved, mixed)
            mine = {k: c for k, c in cells.items() if k[1] == view.name}
            assert mine and all(c.status == "bad" for c in mine.values()), (view.name, damage)
            assert all(c.status == "ok" for k, c in cells.items() if k[1] != view.name)


def test_cli_emit_all_then_inspect_reports_consistency(tmp_path: Path) -> None:
    out = tmp_path / "set"
    result = run_cli("emit", "all", "-o", out)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "config.json").read_text())
    assert record["config"] == config_to_dict(DEFAULT_VM)
    assert record["config"]["platform"]["mtrr"]["policy"] == "reference"
    assert set(record["settings"]["artifacts"]) <= {p.name for p in out.iterdir()}
    result = run_cli("inspect", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✗" not in result.stdout and "consistent" in result.stdout
    result = run_cli("inspect", out, "--format", "json")
    assert json.loads(result.stdout)["consistent"] is True


def test_cli_inspect_exits_1_and_names_the_cell_when_an_artifact_disagrees(
    tmp_path: Path,
) -> None:
    resolved = resolve(DEFAULT_VM)
    files = build_artifact_set(resolved, SETTINGS)
    bad_layout, _ = shrink_high(resolved)
    files["layout.json"] = build_artifact_set(bad_layout, SETTINGS)["layout.json"]
    write_directory_atomic(tmp_path / "set", files)
    result = run_cli("inspect", tmp_path / "set")
    assert result.returncode == 1
    assert "✗ layout.json / chipset high: 0x1_8000_0000-0x1_9fe0_0000" in result.stdout
    report = json.loads(run_cli("inspect", tmp_path / "set", "--format", "json").stdout)
    cell = next(r for r in report["rows"] if r["range"] == "chipset high")["views"]
    assert cell["layout.json"]["status"] == "bad"


def test_a_changed_config_record_is_checked_against_its_own_resolution(tmp_path: Path) -> None:
    """The recorded config is the source of truth: editing it makes the artifacts stale."""
    write_directory_atomic(tmp_path / "set", build_artifact_set(resolve(DEFAULT_VM), SETTINGS))
    record = json.loads((tmp_path / "set" / "config.json").read_text())
    record["config"]["node_mem_sizes"] = [8 * GIB]
    (tmp_path / "set" / "config.json").write_text(json.dumps(record))
    result = run_cli("inspect", tmp_path / "set")
    assert result.returncode == 1
    assert "✗" in result.stdout


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{", "config.json: cannot read"),
        ('{"format": "other"}', "not a vmlayout artifact set"),
        (
            '{"format": "vmlayout-artifact-set", "config": {}, "settings": {}}',
            "settings",
        ),
    ],
)
def test_a_bad_config_record_is_a_one_line_error(
    tmp_path: Path, content: str, fragment: str
) -> None:
    (tmp_path / "config.json").write_text(content)
    assert_one_line_error(run_cli("inspect", tmp_path), fragment)


def test_emit_all_loads_back_with_every_recorded_file(tmp_path: Path) -> None:
    files = build_artifact_set(resolve(DEFAULT_VM), SETTINGS)
    write_directory_atomic(tmp_path / "set", files)
    loaded = load_artifact_set(tmp_path / "set")
    assert loaded.config == DEFAULT_VM
    assert set(loaded.files) == set(files) - {"config.json"}


def test_an_edited_mtrr_register_turns_the_mtrr_cell_red() -> None:
    resolved = resolve(DEFAULT_VM)
    files = build_artifact_set(resolved, SETTINGS)
    doc = json.loads(files["mtrr.json"])
    doc["msrs"][-1][1] ^= 1 << 40  # one mask bit of the last variable pair
    files["mtrr.json"] = json.dumps(doc).encode()
    cells = check_files(resolved, files)
    assert cells[("MTRR registers", "MTRR")].status == "bad"
    assert [k for k, c in cells.items() if c.status == "bad"] == [("MTRR registers", "MTRR")]


def test_an_edited_pcat_item_turns_the_pcat_cell_red() -> None:
    resolved = resolve(DEFAULT_VM)
    files = build_artifact_set(resolved, SETTINGS)
    doc = json.loads(files["pcat.json"])
    doc["items"][0][1] += 1
    files["pcat.json"] = json.dumps(doc).encode()
    cells = check_files(resolved, files)
    assert [k for k, c in cells.items() if c.status == "bad"] == [("PCAT items", "PCAT")]


def test_reference_mtrr_findings_are_warnings_unless_strict(tmp_path: Path) -> None:
    """Spec 03 §4.2: the reference set leaves the low window WB once RAM > 128 MiB."""
    out = tmp_path / "set"
    assert run_cli("emit", "all", "-o", out).returncode == 0
    relaxed = run_cli("inspect", out)
    assert relaxed.returncode == 0
    assert "warning: MTRR: chipset low: [0xf800_0000, 0x1_0000_0000) (128 MiB) is WB" in (
        relaxed.stdout
    )
    strict = run_cli("inspect", out, "--strict")
    assert strict.returncode == 1
    assert "error: MTRR: chipset low" in strict.stdout


def test_the_exact_mtrr_policy_gives_a_set_without_findings(tmp_path: Path) -> None:
    out = tmp_path / "set"
    assert run_cli("emit", "all", "-o", out, "--mtrr-policy", "exact").returncode == 0
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["platform"]["mtrr"]["policy"] == "exact"
    result = run_cli("inspect", out, "--strict")
    assert result.returncode == 0, result.stdout
    assert "warning" not in result.stdout and "error" not in result.stdout


RANDOM_CONFIGS = st.fixed_dictionaries(
    {
        "arch": st.sampled_from(["x86_64", "aarch64"]),
        "node_mem_sizes": st.lists(
            st.integers(1, 1024).map(lambda n: n * 8 * MIB), min_size=1, max_size=3
        ),
        "chipset_high_mmio_size": st.sampled_from([0, 2 * MIB, 512 * MIB]),
        "vtl2_chipset_mmio_size": st.sampled_from([0, 64 * MIB]),
        "virtio_mmio_count": st.sampled_from([0, 2]),
        "pcie_root_complexes": st.sampled_from(
            [
                [],
                [
                    {
                        "name": "rc0",
                        "segment": 0,
                        "start_bus": 0,
                        "end_bus": 63,
                        "low_mmio": {"size": 16 * MIB},
                        "high_mmio": {"size": 256 * MIB},
                    }
                ],
            ]
        ),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(RANDOM_CONFIGS)
def test_every_fresh_artifact_set_is_consistent(config: dict[str, object]) -> None:
    """All twelve views, for random layouts of both architectures, agree."""
    try:
        resolved = resolve(config_from_dict(config))
    except VmLayoutError:
        return
    files = build_artifact_set(resolved, SETTINGS)
    cells = check_files(resolved, files)
    assert {k: c for k, c in cells.items() if c.status != "ok"} == {}
