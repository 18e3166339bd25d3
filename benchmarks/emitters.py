"""Emitter and inspector timings for `benchmarks/run.py` (median µs per call)."""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.timing import median_seconds
from vmlayout.acpi.decode import chipset_from_dsdt
from vmlayout.acpi.dsdt import build_acpi_tables
from vmlayout.artifacts import ArtifactSet, EmitSettings, build_artifact_set, settings_from_json
from vmlayout.config import DEFAULT_VM, config_from_dict, config_to_dict
from vmlayout.devicetree.linux import build_linux_dtb, parse_linux_chipset
from vmlayout.devicetree.paravisor import (
    build_paravisor_dtb,
    memory_map,
    parse_paravisor_chipset,
)
from vmlayout.firmware.e820 import build_e820, encode_e820
from vmlayout.firmware.memtype import (
    Loader,
    check_layout,
    effective_intervals,
    exact_variable_mtrrs,
    layout_expectations,
    mtrr_state,
)
from vmlayout.firmware.pcat import PcatConfig
from vmlayout.firmware.uefi import decode_config_blob, encode_config_blob
from vmlayout.inspect.crosscheck import all_views, compare
from vmlayout.policy import resolve

Row = tuple[str, float, str]


def _us(fn: Callable[[], object], repeat: int = 15, inner: int = 20) -> float:
    return median_seconds(fn, repeat, inner) * 1e6


def bench_rows() -> list[Row]:
    import json
    from pathlib import Path

    r = resolve(DEFAULT_VM)
    arm = resolve(
        config_from_dict(
            {**config_to_dict(DEFAULT_VM), "arch": "aarch64", "chipset_low_mmio_size": 0}
        )
    )
    ram, chipset = r.memory_layout.ram, r.chipset
    blob = encode_config_blob(ram, chipset)
    tables = build_acpi_tables(r)
    linux = build_linux_dtb(arm.memory_layout.ram, arm.chipset)
    para = build_paravisor_dtb(memory_map(ram), chipset)
    state = mtrr_state(r)
    files = build_artifact_set(r, EmitSettings())
    record = json.loads(files["config.json"])
    artifacts = ArtifactSet(
        DEFAULT_VM, settings_from_json(record["settings"], Path("config.json")), files
    )

    def analyze() -> object:
        intervals = effective_intervals(state, 46)
        return check_layout(intervals, layout_expectations(r))

    return [
        ("UEFI blob encode (default VM)", _us(lambda: encode_config_blob(ram, chipset)), "µs"),
        ("UEFI blob decode", _us(lambda: decode_config_blob(blob)), "µs"),
        ("E820 build + encode", _us(lambda: encode_e820(build_e820(r.memory_layout))), "µs"),
        ("PCAT items", _us(lambda: PcatConfig(r.memory_layout, chipset).items()), "µs"),
        ("MTRR state, reference (UEFI loader)", _us(lambda: mtrr_state(r, Loader.UEFI)), "µs"),
        ("MTRR exact policy", _us(lambda: exact_variable_mtrrs(r)), "µs"),
        ("MTRR effective-type analysis + check", _us(analyze), "µs"),
        ("ACPI: build all tables", _us(lambda: build_acpi_tables(r)), "µs"),
        (
            "ACPI: decode DSDT chipset device",
            _us(lambda: chipset_from_dsdt(tables["DSDT.aml"])),
            "µs",
        ),
        (
            "DT: build arm64 Linux tree",
            _us(lambda: build_linux_dtb(arm.memory_layout.ram, arm.chipset)),
            "µs",
        ),
        ("DT: parse arm64 Linux tree", _us(lambda: parse_linux_chipset(linux)), "µs"),
        (
            "DT: build paravisor tree",
            _us(lambda: build_paravisor_dtb(memory_map(ram), chipset)),
            "µs",
        ),
        ("DT: parse paravisor tree", _us(lambda: parse_paravisor_chipset(para)), "µs"),
        (
            "emit all (x86 default VM, in process)",
            _us(lambda: build_artifact_set(r, EmitSettings()), 7, 5),
            "µs",
        ),
        (
            "inspect DIR cross-check (12 views)",
            _us(lambda: compare(artifacts, r, all_views(), False), 7, 5),
            "µs",
        ),
    ]
