"""`resolve` with devices and `vmlayout fit`, end to end by subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import assert_one_line_error, run_cli
from vmlayout.config import load_config
from vmlayout.pci_layout import assign_resolved
from vmlayout.policy import resolve

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "gpus.toml"


def test_resolve_json_adds_the_pci_result_to_root_complexes_with_devices() -> None:
    result = run_cli("resolve", EXAMPLE, "--format", "json")
    assert result.returncode == 0, result.stderr
    (rc,) = json.loads(result.stdout)["pcie_root_complexes"]
    expected = assign_resolved(resolve(load_config(EXAMPLE)))["rc0"].to_json()
    assert rc["pci"] == expected
    assert len(rc["pci"]["bars"]) == 8 * 3 + 1


def test_resolve_without_devices_has_no_pci_key() -> None:
    result = run_cli("resolve", "--format", "json")
    assert "pci" not in json.loads(result.stdout)["pcie_root_complexes"][0]


def test_resolve_table_lists_bars_and_bridge_windows_under_their_root_complex() -> None:
    result = run_cli("resolve", EXAMPLE)
    assert result.returncode == 0, result.stderr
    bar1 = next(line for line in result.stdout.splitlines() if line.startswith("rc0 03:00.0 BAR1"))
    assert bar1.split()[-4:] == ["64", "GiB", "64-bit", "pref"]
    assert any(line.startswith("rc0 00:00.0 pref") for line in result.stdout.splitlines())


def test_resolve_exits_2_naming_the_size_fit_would_choose(tmp_path: Path) -> None:
    small = tmp_path / "small.toml"
    small.write_text(EXAMPLE.read_text().replace('size = "512 MiB"', 'size = "100 MiB"'))
    result = run_cli("resolve", small)
    assert_one_line_error(
        result,
        "mmio_exhaustion: rc0: low_mmio MMIO exhaustion: need 0x8100000 bytes "
        "(alignment 0x1000000), have 0x6400000",
        "`vmlayout fit` would choose low_mmio = 144 MiB",
    )


def test_fit_prints_before_and_after_and_writes_only_new_sizes(tmp_path: Path) -> None:
    fitted = tmp_path / "fitted.toml"
    result = run_cli("fit", EXAMPLE, "-o", fitted)
    assert result.returncode == 0, result.stderr
    assert "low_mmio   512 MiB  144 MiB" in result.stdout
    assert "fits a 46-bit host physical address width" in result.stdout
    before = EXAMPLE.read_text().splitlines()
    after = fitted.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [
        ('low_mmio = { size = "512 MiB" }', 'low_mmio = { size = "144 MiB" }'),
        ('high_mmio = { size = "2 TiB" }', 'high_mmio = { size = "1 TiB" }'),
    ]
    assert run_cli("resolve", fitted).returncode == 0


def test_fit_of_a_json_config_writes_json(tmp_path: Path) -> None:
    from vmlayout.config import config_to_dict

    source = tmp_path / "gpus.json"
    source.write_text(json.dumps(config_to_dict(load_config(EXAMPLE))))
    fitted = tmp_path / "fitted.json"
    assert run_cli("fit", source, "-o", fitted).returncode == 0
    rc = json.loads(fitted.read_text())["pcie_root_complexes"][0]
    assert rc["low_mmio"] == {"size": 144 << 20}


def test_fit_exits_2_when_the_host_width_is_too_small(tmp_path: Path) -> None:
    fitted = tmp_path / "fitted.toml"
    result = run_cli("fit", EXAMPLE, "--host-phys-bits", "40", "-o", fitted)
    assert result.returncode == 2
    assert "does NOT fit a 40-bit host" in result.stdout
    # 0x110_7000_0000 is above 2**40 and below 2**41.
    assert "at least 41 bits hold the layout" in result.stderr
    assert not fitted.exists()


def test_fit_exits_2_when_32_bit_bars_exceed_the_space_below_4_gib(tmp_path: Path) -> None:
    config = tmp_path / "big.toml"
    config.write_text(
        "[[pcie_root_complexes]]\nname = 'rc0'\n"
        "[[pcie_root_complexes.devices]]\ntype = 'endpoint'\ndevice = 0\n"
        "bars = [{index = 0, size = '2G'}, {index = 1, size = '2G'}, {index = 2, size = '2G'}]\n"
    )
    assert_one_line_error(run_cli("fit", config), "fit_impossible", "below 4 GiB")


HUGE_BARS = """
[[pcie_root_complexes]]
[[pcie_root_complexes.devices]]
type = "endpoint"
device = 0
bars = [{ index = 0, size = "8192 PiB", bits = 64, prefetchable = true },
        { index = 2, size = "8192 PiB", bits = 64, prefetchable = true }]
"""


def test_bars_beyond_the_address_space_are_one_error_line_in_every_command(
    tmp_path: Path,
) -> None:
    """Issue 20: two 2**63-byte BARs crashed resolve, emit all, fit and diff; a corpus
    line of them aborted the whole run instead of being one failing line."""
    from tests.fuzzing import assert_one_line_error as one_line
    from tests.fuzzing import run_main

    config = tmp_path / "huge.toml"
    config.write_text(HUGE_BARS)
    need = f"need {1 << 64:#x} bytes"
    one_line(run_main("resolve", config), "mmio_exhaustion", need)
    one_line(run_main("emit", "all", config, "-o", tmp_path / "set"), "mmio_exhaustion", need)
    one_line(run_main("fit", config), "fit_impossible", "no high_mmio size")
    one_line(run_main("diff", config, EXAMPLE), "mmio_exhaustion")
    from vmlayout.config import config_to_dict, load_config

    lines = [
        {"id": "huge", "config": config_to_dict(load_config(config))},
        {"id": "fine", "config": {}},
    ]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(line) + "\n" for line in lines))
    blessed = run_main("diff", "--corpus", corpus, "--bless")
    assert blessed.status == 0 and "Traceback" not in blessed.stderr, blessed
    outcome = run_main("diff", "--corpus", corpus, "--format", "json")
    assert outcome.status == 0, outcome
    assert json.loads(outcome.stdout)["total"] == 2


def test_inspect_reads_the_set_emit_all_wrote_for_a_config_with_count(tmp_path: Path) -> None:
    """config.json records the devices as the config gave them (`count` groups), so it
    stays the config's size and `inspect` reads it back."""
    from tests.fuzzing import run_main

    leaf = {"index": 0, "size": 4096, "bits": 64, "prefetchable": True}
    endpoints = {"type": "endpoint", "device": 0, "count": 32, "bars": [leaf]}
    ports = {"type": "switch_downstream", "device": 0, "count": 32, "children": [endpoints]}
    rc = {"end_bus": 255, "devices": [ports], "high_mmio": {"size": "64 GiB"}}
    config = tmp_path / "count.json"
    config.write_text(json.dumps({"pcie_root_complexes": [rc]}))
    out = tmp_path / "set"
    assert run_main("emit", "all", config, "-o", out).status == 0
    record = json.loads((out / "config.json").read_text())
    (written,) = record["config"]["pcie_root_complexes"][0]["devices"]
    assert written["count"] == 32 and written["children"][0]["count"] == 32
    inspected = run_main("inspect", out)
    assert inspected.status == 0, inspected
