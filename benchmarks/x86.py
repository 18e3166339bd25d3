"""x86 firmware timings beyond `benchmarks/emitters.py` (median µs per call): the
layout-only UEFI blob and the exact MTRR policy and analyzer on awkward layouts."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.timing import median_seconds
from vmlayout.config import DEFAULT_VM, config_from_dict, config_to_dict
from vmlayout.firmware.memtype import (
    Loader,
    MtrrState,
    effective_intervals,
    exact_variable_mtrrs,
    loader_state,
)
from vmlayout.firmware.uefi import encode_layout_blob
from vmlayout.policy import resolve
from vmlayout.ranges import GIB, MIB

Row = tuple[str, float, str]


def _us(fn: Callable[[], object], repeat: int = 15, inner: int = 20) -> float:
    return median_seconds(fn, repeat, inner) * 1e6


def bench_rows() -> list[Row]:
    r = resolve(DEFAULT_VM)
    # An awkward layout for the exact policy: four odd-sized NUMA nodes, no high window.
    numa = resolve(
        config_from_dict(
            {
                **config_to_dict(DEFAULT_VM),
                "node_mem_sizes": [3 * GIB + 6 * MIB, 5 * GIB + 2 * MIB, 7 * GIB, 1 * GIB],
                "chipset_high_mmio_size": 0,
            }
        )
    )
    ram, chipset = r.memory_layout.ram, r.chipset
    # A mask with eight clear bits in its middle matches 256 separate blocks.
    holes = MtrrState(0xC00, (), ((0x6, 0x3FF0_0FF0_0800), (0x1_0000_0000, 0x3FFF_F000_0800)))
    numa_exact = exact_variable_mtrrs(numa, count=64)
    exact_state = loader_state(Loader.UEFI, numa_exact)

    return [
        ("x86: UEFI blob encode, layout only", _us(lambda: encode_layout_blob(ram, chipset)), "µs"),
        (
            "x86: MTRR exact policy (4 odd NUMA nodes)",
            _us(lambda: exact_variable_mtrrs(numa, count=64)),
            "µs",
        ),
        (
            "x86: MTRR approximation, 2 registers (4 odd NUMA nodes)",
            _us(lambda: exact_variable_mtrrs(numa, count=2, approximate=True), 7, 5),
            "µs",
        ),
        (
            "x86: effective types (exact, 4 odd NUMA nodes)",
            _us(lambda: effective_intervals(exact_state, 46)),
            "µs",
        ),
        ("x86: effective types, 256-block mask", _us(lambda: effective_intervals(holes, 46)), "µs"),
    ]


if __name__ == "__main__":
    for name, value, unit in bench_rows():
        print(f"{name:<58} {value:>10.1f} {unit}")
