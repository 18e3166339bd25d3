"""PCI assignments under the compatibility model (`diff`, `diff --corpus`) and
`inspect pci.json` on its own."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.fuzzing import assert_contract, assert_one_line_error, run_main
from vmlayout.artifacts import EmitSettings, build_artifact_set
from vmlayout.config import config_from_dict, load_config
from vmlayout.inspect.corpus import check_case
from vmlayout.inspect.diff import (
    BusNumbers,
    Change,
    ChangeClass,
    RangeChange,
    Span,
    diff_layouts,
    is_compatible,
    pci_buses,
    pci_ranges,
)
from vmlayout.pci_layout import assign_resolved
from vmlayout.pci_layout.report import pci_rows
from vmlayout.policy import resolve
from vmlayout.report import resolved_to_json

ROOT = Path(__file__).resolve().parent.parent
GPUS = ROOT / "examples" / "gpus.toml"
MIB = 1 << 20


def _endpoint(device: int, *bars: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "endpoint", "device": device, "bars": list(bars), **extra}


def _config(devices: list[dict[str, Any]], preserve_bars: bool = False) -> dict[str, Any]:
    return {
        "node_mem_sizes": [4 << 30],
        "pcie_root_complexes": [
            {"name": "rc0", "preserve_bars": preserve_bars, "devices": devices}
        ],
    }


def _behind_port(first_bar: int) -> list[dict[str, Any]]:
    """A root port with an endpoint (BAR0 of `first_bar` bytes), then an endpoint on the
    root bus whose BAR0 the first one pushes up when it grows."""
    port = {
        "type": "root_port",
        "device": 0,
        "children": [
            _endpoint(
                0,
                {"index": 0, "size": first_bar},
                {"index": 2, "size": MIB, "bits": 64, "prefetchable": True},
            )
        ],
    }
    return [port, _endpoint(1, {"index": 0, "size": MIB})]


def layout_of(data: dict[str, Any]) -> dict[str, Any]:
    return resolved_to_json(resolve(config_from_dict(data)))


def by_name(changes: list[RangeChange]) -> dict[str, RangeChange]:
    return {c.name: c for c in changes}


def test_a_moved_bar_is_a_break_a_resized_bar_is_a_changed_device() -> None:
    before, after = layout_of(_config(_behind_port(MIB))), layout_of(_config(_behind_port(2 * MIB)))
    changes = by_name(diff_layouts(before, after))
    assert set(changes) == {"rc0 00:01.0 BAR0", "rc0 01:00.0 BAR0", "rc0 00:00.0 mem"}
    moved = changes["rc0 00:01.0 BAR0"]
    assert (moved.change, moved.change_class) == (Change.MOVED, ChangeClass.BREAK)
    assert moved.before == Span(0xF410_0000, 0xF420_0000)
    assert moved.after == Span(0xF420_0000, 0xF430_0000)
    assert "preserve_bars" in moved.reason and "0xf420_0000" in moved.reason
    resized = changes["rc0 01:00.0 BAR0"]  # 1 MiB -> 2 MiB: another device
    assert (resized.change, resized.change_class) == (Change.DEVICE_CHANGED, ChangeClass.BREAK)
    assert "2 MiB instead of 1 MiB" in resized.reason
    # The port's window grows up over [0xF410_0000, 0xF420_0000), where 00:01.0's BAR0
    # sat before: not free space, so not additive.
    window = changes["rc0 00:00.0 mem"]
    assert (window.change, window.change_class) == (Change.GREW, ChangeClass.BREAK)
    assert "rc0 00:01.0 BAR0" in window.reason
    assert not is_compatible(list(changes.values()))
    assert diff_layouts(before, before) == []


def test_a_shrunk_or_vanished_bar_is_a_break_a_new_one_is_additive() -> None:
    two = _behind_port(2 * MIB)
    one = _behind_port(MIB)
    shrank = by_name(diff_layouts(layout_of(_config(two)), layout_of(_config(one))))
    assert shrank["rc0 01:00.0 BAR0"].change is Change.DEVICE_CHANGED  # a resized BAR
    assert shrank["rc0 01:00.0 BAR0"].change_class is ChangeClass.BREAK
    fewer = [two[0], _endpoint(1)]  # the root-bus endpoint's BAR0 is gone
    gone = by_name(diff_layouts(layout_of(_config(two)), layout_of(_config(fewer))))
    assert [(c.change, c.change_class) for c in gone.values()] == [
        (Change.VANISHED, ChangeClass.BREAK)
    ]
    assert "rc0 00:01.0 BAR0" in gone
    back = diff_layouts(layout_of(_config(fewer)), layout_of(_config(two)))
    assert [(c.name, c.change, c.change_class) for c in back] == [
        ("rc0 00:01.0 BAR0", Change.APPEARED, ChangeClass.ADDITIVE)
    ]
    assert (
        diff_layouts(layout_of(_config(fewer)), layout_of(_config(two)), strict=True)[
            0
        ].change_class
        is ChangeClass.BREAK
    )


def test_fewer_vfs_change_the_device_a_break() -> None:
    def sriov(total_vfs: int) -> dict[str, Any]:
        vf_bar = {"index": 0, "size": 64 << 10, "bits": 64, "prefetchable": True}
        nic = _endpoint(
            0,
            {"index": 0, "size": MIB, "bits": 64, "prefetchable": True},
            sriov={"total_vfs": total_vfs, "vf_offset": 1, "vf_stride": 1, "vf_bars": [vf_bar]},
        )
        return _config([nic])

    changes = by_name(diff_layouts(layout_of(sriov(64)), layout_of(sriov(32))))
    region = changes["rc0 00:00.0 VF-BAR0"]
    # 64 x 64 KiB = 4 MiB of VF BAR0 before, 32 x 64 KiB = 2 MiB after.
    assert (region.change, region.change_class) == (Change.DEVICE_CHANGED, ChangeClass.BREAK)
    assert "2 MiB instead of 4 MiB" in region.reason


def test_a_renumbered_bridge_is_a_break_with_a_reason() -> None:
    nvme = {
        "type": "root_port",
        "device": 1,
        "children": [_endpoint(0, {"index": 0, "size": 16384})],
    }
    before = layout_of(_config([nvme]))
    after = layout_of(_config([{"type": "root_port", "device": 0}, nvme]))
    changes = by_name(diff_layouts(before, after))
    bus = changes["rc0 00:01.0 buses"]
    assert (bus.change, bus.change_class) == (Change.RENUMBERED, ChangeClass.BREAK)
    assert bus.before == BusNumbers(0, 1, 1) and bus.after == BusNumbers(0, 2, 2)
    assert "buses 01..01 -> buses 02..02" in bus.reason and "BDF" in bus.reason
    assert changes["rc0 00:00.0 buses"].change_class is ChangeClass.ADDITIVE  # the new port
    # The drive behind the renumbered port has a new BDF: its old BAR name is gone.
    assert changes["rc0 01:00.0 BAR0"].change is Change.VANISHED
    assert changes["rc0 02:00.0 BAR0"].change is Change.APPEARED
    as_json = bus.to_json()
    assert as_json["change"] == "renumbered"
    assert as_json["before"] == {"primary": 0, "secondary": 1, "subordinate": 1}


def test_diff_names_every_bar_and_window_as_resolve_prints_it() -> None:
    resolved = resolve(load_config(GPUS))
    rows = {
        (row.name, row.start, row.end)
        for rc, assignment in assign_resolved(resolved).items()
        for row in pci_rows(rc, assignment)
    }
    layout = resolved_to_json(resolved)
    assert {(name, span.start, span.end) for name, _, span in pci_ranges(layout)} == rows
    assert len(pci_buses(layout)) == 13
    assert "rc0 03:00.0 BAR1" in {name for name, _, _ in pci_ranges(layout)}


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_diff_reads_the_pci_assignment_from_saved_resolve_json(tmp_path: Path) -> None:
    before = _write(tmp_path / "a.json", _config(_behind_port(MIB), preserve_bars=True))
    after = _write(tmp_path / "b.json", _config(_behind_port(2 * MIB), preserve_bars=True))
    saved = tmp_path / "saved.json"
    outcome = run_main("resolve", before, "--format", "json")
    assert outcome.status == 0
    saved.write_text(outcome.stdout)
    for a in (before, saved):
        table = run_main("diff", a, after)
        assert table.status == 1 and "no differences" not in table.stdout
        rows = [line.split()[:4] for line in table.stdout.splitlines()[1:4]]
        assert ["break", "moved", "rc0", "00:01.0"] in rows
        verdict = json.loads(run_main("diff", a, after, "--format", "json").stdout)
        names = {c["name"]: c for c in verdict["changes"]}
        assert names["rc0 00:01.0 BAR0"]["class"] == "break"
        assert names["rc0 00:01.0 BAR0"]["before"] == [0xF410_0000, 0xF420_0000]
    same = run_main("diff", saved, before).stdout.splitlines()
    assert same[0] == "no differences: compatible" and "not compared" in same[1]


def test_corpus_status_of_a_moved_bar_is_break_not_changed() -> None:
    config = _config(_behind_port(2 * MIB))
    line = json.dumps(
        {"id": "gpu", "config": config, "expect": layout_of(_config(_behind_port(MIB)))}
    )
    result = check_case((1, line, False))
    assert result.status == "break", result
    assert "3 break(s)" in result.reason and "rc0 00:01.0 BAR0" in result.reason
    grown_only = copy.deepcopy(layout_of(config))
    window = grown_only["pcie_root_complexes"][0]["pci"]["bridge_windows"][0]
    window["mem"][1] -= MIB  # the saved window was smaller, at the same base
    additive = check_case((2, json.dumps({"config": config, "expect": grown_only}), False))
    assert additive.status == "additive", additive
    assert check_case((2, json.dumps({"config": config, "expect": grown_only}), True)).status == (
        "break"
    )


def test_malformed_pci_in_a_saved_layout_is_a_one_line_error(tmp_path: Path) -> None:
    good = layout_of(_config(_behind_port(MIB)))
    for key, value in (("address", "0x10"), ("size", -1), ("bdf", "rc0\n"), ("index", 7)):
        bad = copy.deepcopy(good)
        bad["pcie_root_complexes"][0]["pci"]["bars"][0][key] = value
        path = _write(tmp_path / "bad.json", bad)
        assert_one_line_error(run_main("diff", path, path), "not a saved vmlayout layout")
    bad = copy.deepcopy(good)
    bad["pcie_root_complexes"][0]["pci"]["buses"][0]["secondary"] = 256
    path = _write(tmp_path / "bad.json", bad)
    assert_one_line_error(run_main("diff", path, path), "rc0 00:00.0 buses: secondary")


# --- inspect pci.json ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def pci_json() -> dict[str, Any]:
    files = build_artifact_set(resolve(load_config(GPUS)), EmitSettings())
    doc = json.loads(files["pci.json"])
    assert isinstance(doc, dict)
    return doc


def test_inspect_pci_json_decodes_every_bar_window_and_bridge(
    tmp_path: Path, pci_json: dict[str, Any]
) -> None:
    path = _write(tmp_path / "pci.json", pci_json)
    table = run_main("inspect", path)
    assert table.status == 0, table
    assert table.stdout.startswith("pci.json: PCI assignment of 1 root complex(es)")
    assert "rc0 03:00.0 BAR1   0x20_0000_0000   0x30_0000_0000      64 GiB" in table.stdout
    assert "rc0 00:01.0 buses: primary 00, secondary 07, subordinate 0c" in table.stdout
    assert "consistent" in table.stdout
    doc = json.loads(run_main("inspect", path, "--format", "json").stdout)
    assert doc["kind"] == "pci" and doc["ok"] is True
    rc = doc["root_complexes"][0]
    names = {r["name"]: (r["start"], r["end"]) for r in rc["ranges"]}
    resolved = resolve(load_config(GPUS))
    rows = pci_rows("rc0", assign_resolved(resolved)["rc0"])
    assert names == {row.name: (row.start, row.end) for row in rows}
    assert rc["problems"] == [] and len(rc["buses"]) == 13


def test_inspect_pci_json_reports_nesting_problems_with_exit_1(
    tmp_path: Path, pci_json: dict[str, Any]
) -> None:
    doc = copy.deepcopy(pci_json)
    bars = doc["root_complexes"][0]["pci"]["bars"]
    bars[1]["address"] = bars[0]["address"]  # 03:00.0 BAR1 onto BAR0 (other pool too)
    path = _write(tmp_path / "pci.json", doc)
    table = run_main("inspect", path)
    assert table.status == 1
    assert "PROBLEM: 03:00.0 BAR0" in table.stdout and "overlaps" in table.stdout
    assert "INCONSISTENT" in table.stdout
    as_json = run_main("inspect", path, "--format", "json")
    assert as_json.status == 1 and json.loads(as_json.stdout)["ok"] is False


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (lambda d: d.__setitem__("root_complexes", 5), "root_complexes is not a list"),
        (lambda d: d["root_complexes"][0].__setitem__("name", "a\nb"), "no valid name"),
        (lambda d: d["root_complexes"][0].__setitem__("low_mmio", [5, 1]), "low_mmio"),
        (lambda d: d["root_complexes"][0].pop("pci"), "pci is missing"),
        (lambda d: d["root_complexes"][0]["pci"].pop("buses"), "pci.buses is missing"),
        (lambda d: d["root_complexes"][0]["pci"]["bars"][0].__setitem__("size", "x"), "size"),
        (lambda d: d["root_complexes"][0]["pci"]["bars"][0].pop("address"), "address"),
        (
            lambda d: d["root_complexes"][0]["pci"]["bars"][0].__setitem__("address", 2**64 - 16),
            "beyond 2^64",
        ),
        (lambda d: d["root_complexes"][0]["pci"].__setitem__("unscanned", [1]), "unscanned"),
        (lambda d: d["root_complexes"].append(d["root_complexes"][0]), "share a name"),
    ],
)
def test_inspect_pci_json_hostile_content_is_one_line(
    tmp_path: Path, pci_json: dict[str, Any], mutate: Any, fragment: str
) -> None:
    doc = copy.deepcopy(pci_json)
    mutate(doc)
    path = _write(tmp_path / "pci.json", doc)
    for fmt in ("table", "json"):
        assert_one_line_error(run_main("inspect", path, "--format", fmt), "pci.json", fragment)


def test_inspect_pci_json_bounded_nesting_and_garbage(tmp_path: Path) -> None:
    path = tmp_path / "pci.json"
    path.write_text('{"root_complexes": ' + "[" * 100 + "]" * 100 + "}")
    assert_one_line_error(run_main("inspect", path), "pci.json")
    path.write_text('{"root_complexes": [')
    assert_contract(run_main("inspect", path), (2,))
