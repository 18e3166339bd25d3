"""Scale rows for `benchmarks/run.py`: the hostile-input sizes of issue 11 (10,000 root
complexes to validate, 20,000 NUMA nodes to resolve and draw), timed in process."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

from benchmarks.timing import median_seconds
from vmlayout.cli import main
from vmlayout.config import config_from_dict
from vmlayout.errors import VmLayoutError

Row = tuple[str, float, str]


def _validate_overlapping_root_complexes() -> None:
    rcs = [{"segment": i, "start_bus": 0, "end_bus": 0} for i in range(10_000)]
    rcs.append({"segment": 9_999, "start_bus": 0, "end_bus": 0})
    try:
        config_from_dict({"pcie_root_complexes": rcs})
    except VmLayoutError:
        return
    raise AssertionError("the overlap was not found")


def _cli(*args: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if main(list(args)) != 0:
            raise AssertionError(f"vmlayout {' '.join(args)} failed")


def _many_root_complex_layout(count: int) -> dict[str, object]:
    """A saved layout (the shape `resolve --format json` writes) with `count` root
    complexes, each its own segment with a 1 MiB ECAM block above 4 GiB."""
    from vmlayout.policy import resolve
    from vmlayout.report import resolved_to_json

    layout = resolved_to_json(resolve(config_from_dict({})))
    base = 1 << 40
    placed = list(layout["placed"])
    rcs = []
    for i in range(count):
        ecam = [base + i * (1 << 20), base + (i + 1) * (1 << 20)]
        placed.append({"name": f"pcie-seg{i + 1}-ecam", "kind": "mmio64", "start": ecam[0],
                       "end": ecam[1]})  # fmt: skip
        empty = [0, 0]
        rcs.append({"name": f"rc{i}", "ecam": ecam, "low_mmio": empty, "high_mmio": empty,
                    "cxl_hdm": empty, "cxl_chbcr": empty})  # fmt: skip
    layout["placed"] = placed
    layout["pcie_root_complexes"] = rcs
    return layout


def bench_rows() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "numa.json"
        config.write_text(json.dumps({"node_mem_sizes": ["1G"] * 20_000}))
        resolve_s = median_seconds(lambda: _cli("resolve", str(config)), 3)
        map_s = median_seconds(lambda: _cli("map", str(config), "-o", f"{tmp}/m.svg"), 3)
    validate_s = median_seconds(_validate_overlapping_root_complexes, 3)
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "layout.json"
        saved.write_text(json.dumps(_many_root_complex_layout(3_000)))
        diff_s = median_seconds(lambda: _cli("diff", str(saved), str(saved)), 3)
    return [
        ("diff two saved layouts of 3,000 root complexes (was 34 s)", diff_s * 1e3, "ms"),
        ("validate 10,000 root complexes (one overlap)", validate_s * 1e3, "ms"),
        ("resolve 20,000 NUMA nodes (CLI, in process)", resolve_s * 1e3, "ms"),
        ("map 20,000 NUMA nodes to SVG (CLI, in process)", map_s * 1e3, "ms"),
        ("map / resolve, 20,000 NUMA nodes (target: about 1x)", map_s / resolve_s, "x"),
    ]
