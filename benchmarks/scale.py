"""Scale rows for `benchmarks/run.py`: the hostile-input sizes of issue 11 (10,000 root
complexes to validate, 20,000 NUMA nodes to resolve and draw) and the former traps of
issue 20 (AML nesting; `fit` over 512 root complexes, nested `count` refused; huge
JSON/TOML configs, big JSON views, the MTRR approximation, long corpora), timed in
process."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from benchmarks.timing import median_seconds
from vmlayout.cli import main
from vmlayout.config import config_from_dict
from vmlayout.errors import VmLayoutError
from vmlayout.inputs import parse_json
from vmlayout.inspect.corpus import check_corpus

Row = tuple[str, float, str]


def _validate_overlapping_root_complexes() -> None:
    rcs = [{"segment": i, "start_bus": 0, "end_bus": 0} for i in range(10_000)]
    rcs.append({"segment": 9_999, "start_bus": 0, "end_bus": 0})
    try:
        config_from_dict({"pcie_root_complexes": rcs})
    except VmLayoutError:
        return
    raise AssertionError("the overlap was not found")


def _fit_512_root_complexes() -> None:
    """Issue 20: `fit` resolved the config once per window and try (38-51 s)."""
    from vmlayout.pci_layout.fit import fit_config

    bars = [
        {"index": 0, "size": "1 MiB"},
        {"index": 1, "size": "4 GiB", "bits": 64, "prefetchable": True},
    ]
    rcs = [{"segment": i, "devices": [{"type": "endpoint", "device": 0, "bars": bars}]}
           for i in range(512)]  # fmt: skip
    fit_config(config_from_dict({"node_mem_sizes": ["4 GiB"], "pcie_root_complexes": rcs}))


def _refuse_nested_count() -> None:
    """Issue 20: six levels of `count = 32` (32**6 functions) took 30 s and 1.3 GB."""
    node: dict[str, object] = {"type": "endpoint", "device": 0, "count": 32}
    for _ in range(6):
        node = {"type": "switch_downstream", "device": 0, "count": 32, "children": [node]}
    try:
        config_from_dict({"pcie_root_complexes": [{"devices": [node]}]})
    except VmLayoutError:
        return
    raise AssertionError("the expansion was not refused")


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


def _inspect(path: Path, status: int) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        if main(["inspect", str(path)]) != status:
            raise AssertionError(f"vmlayout inspect {path}: not exit {status}")


def _hostile_aml_rows(tmp: Path) -> list[Row]:
    """Issue 20's AML traps: nesting past the reader's limit (once a RecursionError),
    and a definition block at the object limit."""
    from vmlayout.acpi.aml import Device, Integer, Name, encode_pkglength
    from vmlayout.acpi.decode import AML_MAX_OBJECTS
    from vmlayout.acpi.sdt import DSDT_FLAVOUR, build_table

    deep = Name("_UID", Integer(0)).encode()
    for _ in range(1_200):  # inside-out: the object model's encoder recurses
        inner = b"S___" + deep
        deep = b"\x10" + encode_pkglength(len(inner)) + inner  # ScopeOp
    nested = tmp / "nested" / "DSDT.aml"
    nested.parent.mkdir()
    nested.write_bytes(build_table(b"DSDT", 2, deep, DSDT_FLAVOUR))
    many = tmp / "many" / "DSDT.aml"
    many.parent.mkdir()
    devices = Device("D", ()).encode() * AML_MAX_OBJECTS
    many.write_bytes(build_table(b"DSDT", 2, devices, DSDT_FLAVOUR))
    nested_s = median_seconds(lambda: _inspect(nested, 2), 3)
    many_s = median_seconds(lambda: _inspect(many, 0), 3)
    return [
        ("inspect a DSDT of 1,200 nested Scopes (refused)", nested_s * 1e3, "ms"),
        (f"inspect a DSDT of {AML_MAX_OBJECTS:,} devices (the limit)", many_s * 1e3, "ms"),
    ]


def _cli_status(*args: str) -> int:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return main(list(args))


def _refused(*args: str) -> None:
    if _cli_status(*args) != 2:
        raise AssertionError(f"vmlayout {' '.join(args)} was not refused")


def _mtrr_config(path: Path) -> None:
    """128 NUMA nodes of odd sizes (2 MiB multiples): an exact MTRR set of hundreds of
    registers, so `--mtrr-count 255 --mtrr-approximate` has to search."""
    sizes = [f"{(i * 2654435761 % 4095 + 1) * 2} MiB" for i in range(128)]
    path.write_text(json.dumps({"node_mem_sizes": sizes}))


def issue_20_rows(tmp: Path) -> list[Row]:
    """Each former trap of issue 20 (before: minutes and gigabytes), timed once fixed."""
    braces, toml, corpus = tmp / "braces.json", tmp / "ints.toml", tmp / "empty.jsonl"
    braces.write_text('{"node_mem_sizes": [' + "{}," * 20_000_000 + "{}]}")  # 60 MB
    toml.write_text("node_mem_sizes = [" + "0," * 30_000_000 + "0]\n")  # 60 MB
    corpus.write_text("{}\n" * 200_000)
    set_dir, mtrr = tmp / "set", tmp / "mtrr.json"
    _cli(
        "emit",
        "all",
        str(Path(__file__).parent.parent / "examples" / "gpus.toml"),
        "-o",
        str(set_dir),
    )
    pci = tmp / "big-pci.json"
    pci.write_bytes((set_dir / "pci.json").read_bytes().rstrip() + b" " * (20 << 20))
    _mtrr_config(mtrr)
    approximate = ("--mtrr-policy", "exact", "--mtrr-count", "255", "--mtrr-approximate")
    zeros = b"[" + b"0," * 30_000_000 + b"0]"  # 60 MB
    zeros_s = median_seconds(lambda: parse_json(zeros, "zeros"), 3)
    braces_s = median_seconds(lambda: _refused("resolve", str(braces)), 3)
    toml_s = median_seconds(lambda: _refused("resolve", str(toml)), 3)
    pci_s = median_seconds(lambda: _cli("inspect", str(pci)), 3)
    mtrr_s = median_seconds(lambda: _cli("emit", "mtrr-state", str(mtrr), *approximate), 3)
    corpus_s = median_seconds(
        lambda: _cli_status("diff", "--corpus", str(corpus), "--max", "3", "--jobs", "1"), 1
    )
    corpus_mib = _traced_peak_mib(lambda: check_corpus(corpus, jobs=1, keep=3, progress=False))
    return [
        ("refuse a 60 MB JSON config of {} (was 28 s, 2.9 GB)", braces_s * 1e3, "ms"),
        ("refuse a 60 MB TOML integer array (was 164 s, 2.5 GB)", toml_s * 1e3, "ms"),
        ("parse a 60 MB JSON array of zeros (was 45 s: a hook per number)", zeros_s * 1e3, "ms"),
        ("inspect a 20 MiB pci.json (was refused above 16 MiB)", pci_s * 1e3, "ms"),
        (
            "emit mtrr-state, 128 nodes, exact, 255 registers approximated (was 8-48 s)",
            mtrr_s * 1e3,
            "ms",
        ),
        (
            "diff --corpus of 200,000 `{}` lines, --max 3 (per line)",
            corpus_s / 200_000 * 1e6,
            "us",
        ),
        (
            "diff --corpus of 200,000 lines: peak traced memory (was ~330 B a line)",
            corpus_mib,
            "MiB",
        ),
    ]


def _traced_peak_mib(fn: Callable[[], object]) -> float:
    """The peak of Python allocations during `fn` (tracemalloc), in MiB."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / (1 << 20)
    finally:
        tracemalloc.stop()


def bench_rows() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        aml_rows = _hostile_aml_rows(Path(tmp))
        issue_20 = issue_20_rows(Path(tmp))
        config = Path(tmp) / "numa.json"
        config.write_text(json.dumps({"node_mem_sizes": ["1G"] * 20_000}))
        resolve_s = median_seconds(lambda: _cli("resolve", str(config)), 3)
        map_s = median_seconds(lambda: _cli("map", str(config), "-o", f"{tmp}/m.svg"), 3)
    validate_s = median_seconds(_validate_overlapping_root_complexes, 3)
    fit_s = median_seconds(_fit_512_root_complexes, 3)
    count_s = median_seconds(_refuse_nested_count, 3)
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / "layout.json"
        saved.write_text(json.dumps(_many_root_complex_layout(3_000)))
        diff_s = median_seconds(lambda: _cli("diff", str(saved), str(saved)), 3)
    return [
        *aml_rows,
        *issue_20,
        ("diff two saved layouts of 3,000 root complexes (was 34 s)", diff_s * 1e3, "ms"),
        ("validate 10,000 root complexes (one overlap)", validate_s * 1e3, "ms"),
        ("resolve 20,000 NUMA nodes (CLI, in process)", resolve_s * 1e3, "ms"),
        ("map 20,000 NUMA nodes to SVG (CLI, in process)", map_s * 1e3, "ms"),
        ("map / resolve, 20,000 NUMA nodes (target: about 1x)", map_s / resolve_s, "x"),
        ("fit 512 root complexes (was 38-51 s)", fit_s * 1e3, "ms"),
        ("refuse 6 nested count = 32 (32^6 functions; was 30 s)", count_s * 1e3, "ms"),
    ]
