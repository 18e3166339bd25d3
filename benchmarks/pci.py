"""PCI assignment and `fit` timings for `benchmarks/run.py`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from benchmarks.timing import median_seconds
from vmlayout.config import load_config
from vmlayout.devices import Bar, FunctionKind, PciFunction, count_functions
from vmlayout.pci import AssignmentParams, assign_functions
from vmlayout.pci_layout.fit import fit_config
from vmlayout.ranges import GIB, MIB, TIB, MemoryRange

Row = tuple[str, float, str]
ROOT = Path(__file__).resolve().parent.parent


def large_topology() -> tuple[PciFunction, ...]:
    """4 root ports, each a switch with 31 downstream ports to an 8-function endpoint."""
    endpoint = tuple(
        PciFunction(
            FunctionKind.ENDPOINT,
            0,
            f,
            (Bar(0, 64 * 1024), Bar(1, 256 * MIB, 64, True), Bar(4, 16 * 1024, 64, False)),
        )
        for f in range(8)
    )
    downstream = tuple(
        PciFunction(FunctionKind.SWITCH_DOWNSTREAM, d, children=endpoint) for d in range(31)
    )
    upstream = PciFunction(FunctionKind.SWITCH_UPSTREAM, 0, children=downstream)
    return tuple(PciFunction(FunctionKind.ROOT_PORT, d, children=(upstream,)) for d in range(4))


def _ms(fn: Callable[[], object], repeat: int = 5, inner: int = 1) -> float:
    return median_seconds(fn, repeat, inner) * 1e3


def bench_rows() -> list[Row]:
    topology = large_topology()
    params = AssignmentParams(
        0, 255, MemoryRange(0x8000_0000, 0xF000_0000), MemoryRange(64 * GIB, 64 * GIB + 4 * TIB)
    )
    count = count_functions(topology)
    example = load_config(ROOT / "examples" / "gpus.toml")
    return [
        (
            f"PCI assignment, {count} functions (one root complex)",
            _ms(lambda: assign_functions(topology, params)),
            "ms",
        ),
        ("fit examples/gpus.toml (8 GPUs, 2 switches)", _ms(lambda: fit_config(example)), "ms"),
    ]
