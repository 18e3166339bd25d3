"""The library's tools (`vmlayout.where`, `explain`, `diff`, `fit`, `inspect`) return
frozen results holding exactly what the commands print with `--format json`."""

from __future__ import annotations

import dataclasses
import importlib
import json
from pathlib import Path

import pytest

import vmlayout
from tests.fuzzing import run_main
from vmlayout.output import write_directory_atomic

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GPUS = EXAMPLES / "gpus.toml"


def _cli_json(*argv: str | Path) -> object:
    out = run_main(*argv, "--format", "json")
    assert out.status in (0, 1), out.stderr
    return json.loads(out.stdout)


def _frozen(result: object) -> None:
    assert dataclasses.is_dataclass(result)
    field = dataclasses.fields(result)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(result, field, None)


def test_where_is_the_commands_json() -> None:
    config = {"arch": "aarch64", "processors": {"vp_count": 4}}
    result = vmlayout.where(0xEFFF_0000 + 3 * 0x2_0000, config)
    _frozen(result)
    assert result.zone is not None and result.zone.name == "gicr3"
    cli = _cli_json("where", "0xf0050000", "--arch", "aarch64", "--vp-count", "4")
    assert result.to_json() == cli


def test_explain_names_bars_and_addresses() -> None:
    bar = vmlayout.explain("rc0 3:0.0 BAR1", GPUS)
    _frozen(bar)
    assert bar.to_json() == _cli_json("explain", "rc0 03:00.0 BAR1", GPUS)
    ram = vmlayout.explain("ram0-extent1")
    assert ram.to_json() == _cli_json("explain", "ram0-extent1")
    assert vmlayout.explain("0xfec00000").zone.name == "ioapic"


def test_diff_takes_configs_mappings_and_saved_layouts(tmp_path: Path) -> None:
    a = {"node_mem_sizes": ["3G", "3G"]}
    b = {**a, "chipset_low_mmio_size": "256M"}
    result = vmlayout.diff(a, b)
    _frozen(result)
    assert result.compatible and [c.change.value for c in result.changes] == ["grew"]
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    assert result.to_json() == _cli_json("diff", tmp_path / "a.json", tmp_path / "b.json")
    saved = vmlayout.layout_json(vmlayout.resolve(a))
    assert vmlayout.diff(saved, b).to_json() == result.to_json()
    with pytest.raises(vmlayout.VmLayoutError, match="side B"):
        vmlayout.diff(a, {"node_mem_sizes": ["1K"]})


def test_fit_returns_the_fitted_config() -> None:
    result = vmlayout.fit(GPUS)
    _frozen(result)
    assert result.fits_host and isinstance(result.config, vmlayout.VmConfig)
    assert vmlayout.resolve(result.config).layout_top == result.layout_top


def test_inspect_works_whatever_was_imported_first(tmp_path: Path) -> None:
    write_directory_atomic(tmp_path / "set", vmlayout.artifact_set(vmlayout.resolve()))
    importlib.import_module("vmlayout.inspect.where")  # makes the package the attribute

    result = vmlayout.inspect(tmp_path / "set")
    _frozen(result)
    assert result.ok and result.report == _cli_json("inspect", tmp_path / "set")


@pytest.mark.parametrize(
    "call",
    [
        lambda: vmlayout.where("nowhere"),
        lambda: vmlayout.where(2.5),  # type: ignore[arg-type]
        lambda: vmlayout.where(-1),
        lambda: vmlayout.explain(7),  # type: ignore[arg-type]
        lambda: vmlayout.explain("no-such-range"),
        lambda: vmlayout.inspect(42),  # type: ignore[arg-type]
        lambda: vmlayout.inspect("/no/such/file"),
        lambda: vmlayout.fit({}, host_phys_bits="wide"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_raises_vmlayout_error(call: object) -> None:
    with pytest.raises(vmlayout.VmLayoutError):
        call()  # type: ignore[operator]
