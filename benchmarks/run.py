"""Speed of vmlayout, printed as a table (or one JSON object with --json).

Measured, never asserted: targets are noted beside each row. Run from the repository
root: `python benchmarks/run.py [--json] [--quick]`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from benchmarks.timing import median_seconds  # noqa: E402
from vmlayout.allocator import LayoutBuilder, Placement  # noqa: E402
from vmlayout.config import DEFAULT_VM, config_from_dict  # noqa: E402
from vmlayout.errors import VmLayoutError  # noqa: E402
from vmlayout.policy import (  # noqa: E402
    DynamicMmio,
    RootComplexConfig,
    VmConfig,
    Vtl2Layout,
    resolve,
)
from vmlayout.ranges import GIB, MIB  # noqa: E402

VECTORS = ROOT / "tests" / "vectors"
Row = tuple[str, float, str]
#: Benchmark modules of the emitter stages, each with `bench_rows() -> list[Row]`.
EXTRA_MODULES = ("benchmarks.emitters", "benchmarks.x86", "benchmarks.pci", "benchmarks.scale")


def large_vm() -> VmConfig:
    return VmConfig(
        node_mem_sizes=tuple(16 * GIB for _ in range(64)),
        pcie_root_complexes=tuple(
            RootComplexConfig(
                name=f"rc{i}",
                segment=i // 4,
                start_bus=(i % 4) * 64,
                end_bus=(i % 4) * 64 + 63,
                low_mmio=DynamicMmio(32 * MIB),
                high_mmio=DynamicMmio(16 * GIB),
            )
            for i in range(16)
        ),
        virtio_mmio_count=1024,
        vtl2_chipset_mmio_size=GIB,
        vtl2_layout=Vtl2Layout(64 * MIB, 2 * MIB),
        vtl2_framebuffer_size=8 * MIB,
        physical_address_size=52,
    )


def allocator_run(n: int) -> None:
    builder = LayoutBuilder()
    quarter = n // 4
    for i in range(quarter):
        builder.request(f"m32-{i}", 0x1000, 0x1000 << (i % 3), Placement.MMIO32)
        builder.ram(f"ram{i}", 2 * MIB, 2 * MIB)
        builder.request(f"m64-{i}", 2 * MIB, 1 << (12 + i % 10), Placement.MMIO64)
        builder.request(f"post-{i}", 0x1000, 0x1000, Placement.POST_MMIO)
    builder.allocate()


def vector_configs() -> list[VmConfig]:
    path = VECTORS / "resolver.jsonl"
    return [config_from_dict(json.loads(line)["config"]) for line in path.open()]


def resolve_all(configs: list[VmConfig]) -> None:
    for config in configs:
        with contextlib.suppress(VmLayoutError):
            resolve(config)


def corpus_seconds(size: int) -> float:
    """Check `size` saved layouts (the resolver vectors, repeated) with two workers."""
    import tempfile

    from vmlayout.inspect.corpus import check_corpus

    lines = (VECTORS / "resolver.jsonl").read_text().splitlines()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.jsonl"
        path.write_text("\n".join(lines[i % len(lines)] for i in range(size)) + "\n")
        start = time.perf_counter()
        summary = check_corpus(path, jobs=2, progress=False)
        elapsed = time.perf_counter() - start
    assert summary.ok, summary.failures[:1]
    return elapsed


def cold_start(args: list[str], repeat: int) -> float:
    def once() -> None:
        subprocess.run(args, check=True, capture_output=True)

    once()
    return median_seconds(once, repeat)


def measure(quick: bool) -> tuple[list[Row], dict[str, Any]]:
    rows: list[Row] = []
    summary: dict[str, Any] = {}
    repeat = 5 if quick else 15

    default = median_seconds(lambda: resolve(DEFAULT_VM), repeat, 200) * 1e6
    rows.append(("resolve default VM (median; target < 1000 µs)", default, "µs"))
    big = large_vm()
    rows.append(
        (
            "resolve large VM: 64 vnodes, 16 RCs, 1024 virtio, VTL2",
            median_seconds(lambda: resolve(big), repeat, 5) * 1e6,
            "µs",
        )
    )

    configs = vector_configs()
    per_config = median_seconds(lambda: resolve_all(configs), repeat) / len(configs) * 1e6
    summary["resolve_vectors_us_per_config"] = per_config
    rows.append(
        (
            f"resolve vector configs, mean per config (n={len(configs)}; ref ≈ 8 µs)",
            per_config,
            "µs",
        )
    )

    for n in (1_000, 10_000) if quick else (1_000, 10_000, 100_000):
        seconds = median_seconds(partial(allocator_run, n), 1 if n >= 100_000 else 3)
        rows.append((f"allocator, {n} requests (10k target < 1 s)", seconds * 1e3, "ms"))
        rows.append(
            (
                f"allocator, {n} requests, time / (n log2 n)",
                seconds / (n * math.log2(n)) * 1e9,
                "ns",
            )
        )

    base = cold_start([sys.executable, "-c", "pass"], repeat)
    cli = cold_start([sys.executable, "-m", "vmlayout", "resolve", "--format", "json"], repeat)
    rows.append(("python -c pass (cold start)", base * 1e3, "ms"))
    rows.append(
        ("vmlayout resolve --format json (cold start; target < 3x python)", cli * 1e3, "ms")
    )
    rows.append(("CLI cold start / python -c pass", cli / base, "x"))
    summary["cli_cold_start_ratio"] = cli / base

    corpus_size = 20_000 if quick else 100_000
    seconds = corpus_seconds(corpus_size)
    rows.append(
        (f"diff --corpus, {corpus_size} configs, 2 jobs (100k target < 60 s)", seconds, "s")
    )
    rows.append(("diff --corpus throughput", corpus_size / seconds, "configs/s"))

    for name in EXTRA_MODULES:
        rows.extend(importlib.import_module(name).bench_rows())
    for label, value, unit in rows:
        summary[label] = {"value": value, "unit": unit}
    return rows, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, no 100k run")
    args = parser.parse_args()
    rows, summary = measure(args.quick)
    if args.json:
        print(json.dumps(summary, indent=2, ensure_ascii=False))
        return 0
    width = max(len(label) for label, _, _ in rows)
    print(f"{'benchmark':<{width}}  {'value':>12}  unit")
    print(f"{'-' * width}  {'-' * 12}  ----")
    for label, value, unit in rows:
        print(f"{label:<{width}}  {value:>12.2f}  {unit}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
