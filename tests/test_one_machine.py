"""One VM, one set of views: every view of an `emit all` set carries the processors the
config describes — read here with independent tools (dtc, `iasl -d`) and a plain walk of
the UEFI blob, not with vmlayout's decoders — and `inspect DIR` notices when any one
view (or layout.json's placed list) is edited."""

from __future__ import annotations

import json
import re
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fuzzing import run_main
from tests.tools import require_tool

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

#: Configs of both architectures with several vNUMA nodes, root complexes and (x86)
#: a VTL2 window, so every view is written.
CONFIGS: dict[str, dict[str, Any]] = {
    "x86_64": {
        "node_mem_sizes": ["2G", "2G"],
        "vtl2_chipset_mmio_size": "1G",
        "pcie_root_complexes": [{"name": "rc0"}, {"name": "rc1", "segment": 1}],
    },
    "aarch64": {
        "arch": "aarch64",
        "node_mem_sizes": ["2G", "1G", "1G"],
        "pcie_root_complexes": [{"name": "rc0", "iommu": "smmu"}],
    },
}


def _emit(tmp_path: Path, arch: str, *options: str, config: dict[str, Any] | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "vm.json"
    source.write_text(json.dumps(config or CONFIGS[arch]))
    out = tmp_path / "set"
    outcome = run_main("emit", "all", source, "-o", out, *options)
    assert outcome.status == 0, outcome
    return out


def _iasl_dump(tool: str, directory: Path, table: str) -> str:
    subprocess.run(
        [tool, "-d", f"{table}.aml"], cwd=directory, capture_output=True, check=True, timeout=60
    )
    return (directory / f"{table}.dsl").read_text(encoding="utf-8", errors="replace")


def _madt_processors(dump: str) -> list[int]:
    """Local APIC ids (x86) or GICC processor UIDs (arm64) as iasl prints them."""
    apic = re.findall(r"Local Apic ID : ([0-9A-F]+)", dump)
    if apic:
        return [int(x, 16) for x in apic]
    return [int(x, 16) for x in re.findall(r"Processor UID : ([0-9A-F]+)", dump)]


def _dtc_cpu_regs(tool: str, blob: Path) -> list[int]:
    """`reg` of every node with device_type "cpu", as dtc prints the tree."""
    dts = subprocess.run(
        [tool, "-I", "dtb", "-O", "dts", str(blob)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    nodes = re.findall(r"cpu@[0-9a-f]+ \{([^{}]*)\}", dts)
    cpus = [n for n in nodes if 'device_type = "cpu"' in n]
    return [int(re.search(r"reg = <(0x[0-9a-f]+)>", n).group(1), 16) for n in cpus]  # type: ignore[union-attr]


def _uefi_processor_count(blob: bytes) -> int:
    """Walk the blob's (type u32, length u32) structures by hand; ProcessorInformation
    (type 0x13) starts with max_processor_count, then processor_count."""
    offset = 0
    while offset + 8 <= len(blob):
        kind, length = struct.unpack_from("<II", blob, offset)
        if kind == 0x13:
            return int(struct.unpack_from("<I", blob, offset + 12)[0])
        assert length >= 8
        offset += length
    raise AssertionError("no ProcessorInformation structure")


@pytest.mark.parametrize("arch", ["x86_64", "aarch64"])
@pytest.mark.parametrize("vp_count", range(1, 9))
def test_every_view_carries_the_configured_processors(
    tmp_path: Path, arch: str, vp_count: int
) -> None:
    iasl = require_tool("iasl", "acpica-tools")
    dtc = require_tool("dtc", "device-tree-compiler")
    out = _emit(tmp_path, arch, "--vp-count", str(vp_count))
    madt = _madt_processors(_iasl_dump(iasl, out, "APIC"))
    expected_ids = list(range(vp_count)) if arch == "x86_64" else list(range(1, vp_count + 1))
    assert madt == expected_ids  # APIC id = VP index; GICC UID = VP + 1
    assert _iasl_dump(iasl, out, "DSDT").count('"ACPI0007"') == vp_count
    srat = _iasl_dump(iasl, out, "SRAT")
    kind = "Processor Local APIC/SAPIC Affinity" if arch == "x86_64" else "GICC Affinity"
    assert srat.count(kind) == vp_count
    assert _uefi_processor_count((out / "uefi-config.bin").read_bytes()) == vp_count
    tree = "paravisor.dtb" if arch == "x86_64" else "linux.dtb"
    assert _dtc_cpu_regs(dtc, out / tree) == list(range(vp_count))  # APIC id / MPIDR
    assert run_main("inspect", out).status == 0


def test_the_config_file_sections_reach_every_view(tmp_path: Path) -> None:
    """`[processors]` and `[platform]` in the file, no option: the same as the options."""
    config = {
        **CONFIGS["aarch64"],
        "processors": {"vp_count": 3, "vps_per_socket": 2},
        "platform": {"serial": True, "gic": {"timer_ppi": 27}},
    }
    by_file = _emit(tmp_path / "file", "aarch64", config=config)
    by_options = _emit(
        tmp_path / "options",
        "aarch64",
        "--vp-count",
        "3",
        "--vps-per-socket",
        "2",
        "--serial",
        "--timer-ppi",
        "27",
    )
    for name in ("APIC.aml", "GTDT.aml", "DSDT.aml", "linux.dtb", "uefi-config.bin"):
        assert (by_file / name).read_bytes() == (by_options / name).read_bytes(), name
    record = json.loads((by_options / "config.json").read_text())["config"]
    assert record["processors"] == {"vp_count": 3, "vps_per_socket": 2, "smt": False}
    assert record["platform"]["serial"] is True
    assert record["platform"]["gic"]["timer_ppi"] == 27


def _swap(target: Path, source: Path, name: str) -> None:
    (target / name).write_bytes((source / name).read_bytes())


#: (arch, file, cross-check row that must turn ✗, options of the foreign set)
EDITS = [
    ("x86_64", "APIC.aml", "VP count", ("--vp-count", "3")),
    ("x86_64", "DSDT.aml", "VP count", ("--vp-count", "3")),
    ("x86_64", "SRAT.aml", "VP vnodes", ("--vp-count", "3")),
    ("x86_64", "uefi-config.bin", "VP count", ("--vp-count", "3")),
    ("x86_64", "paravisor.dtb", "VP ids", ("--vp-count", "3")),
    ("x86_64", "DSDT.aml", "serial ports", ("--serial",)),
    ("x86_64", "uefi-config.bin", "serial ports", ("--serial",)),
    ("aarch64", "APIC.aml", "VP ids", ("--vp-count", "3")),
    ("aarch64", "linux.dtb", "VP count", ("--vp-count", "3")),
    ("aarch64", "uefi-config.bin", "VP count", ("--vp-count", "3")),
    ("aarch64", "GTDT.aml", "timer PPI", ("--timer-ppi", "27")),
    ("aarch64", "linux.dtb", "timer PPI", ("--timer-ppi", "27")),
    ("aarch64", "APIC.aml", "GIC distributor", ("--gic-distributor-base", "0x8000000")),
    ("aarch64", "linux.dtb", "GIC redistributors", ("--gic-redistributors-base", "0x80a0000")),
    ("aarch64", "uefi-config.bin", "GIC distributor", ("--gic-distributor-base", "0x8000000")),
    ("aarch64", "APIC.aml", "GIC MSI frame", ("--gic-its-base", "0x8080000")),
    ("aarch64", "linux.dtb", "serial ports", ("--serial",)),
]


@pytest.mark.parametrize(("arch", "name", "row", "options"), EDITS)
def test_inspect_names_the_view_whose_processors_or_platform_differ(
    tmp_path: Path, arch: str, name: str, row: str, options: tuple[str, ...]
) -> None:
    """A file from a set made with other processor/platform choices (valid bytes, good
    checksums) is a ✗ in exactly that view's cell of the row, and exit 1."""
    good = _emit(tmp_path / "good", arch, "--vp-count", "4")
    other = _emit(tmp_path / "other", arch, "--vp-count", "4", *options)
    _swap(good, other, name)
    outcome = run_main("inspect", good, "--format", "json")
    assert outcome.status == 1, outcome.stdout
    report = json.loads(outcome.stdout)
    cells = {r["range"]: r["views"] for r in report["rows"]}
    bad = [(r, v) for r, views in cells.items() for v, c in views.items() if c["status"] == "bad"]
    view = {
        "APIC.aml": "MADT",
        "DSDT.aml": "DSDT",
        "SRAT.aml": "SRAT",
        "GTDT.aml": "GTDT",
        "uefi-config.bin": "UEFI",
        "linux.dtb": "DT linux",
        "paravisor.dtb": "DT paravisor",
    }[name]
    assert (row, view) in bad, bad
    assert {v for _, v in bad} == {view}, bad
    assert cells[row][view]["detail"], "a ✗ names the value it saw"


def test_a_placement_moved_in_layout_json_is_a_disagreement(tmp_path: Path) -> None:
    """Moving vtl2 by 1 GiB in layout.json's `placed` list (what `diff` would call a
    break) is a ✗ in layout.json's `placed ranges` row."""
    out = _emit(tmp_path, "x86_64")
    doc = json.loads((out / "layout.json").read_text())
    vtl2 = next(p for p in doc["placed"] if "vtl2" in p["name"])
    vtl2["start"] += 1 << 30
    vtl2["end"] += 1 << 30
    (out / "layout.json").write_text(json.dumps(doc))
    outcome = run_main("inspect", out, "--format", "json")
    assert outcome.status == 1
    rows = {r["range"]: r["views"] for r in json.loads(outcome.stdout)["rows"]}
    assert rows["placed ranges"]["layout.json"]["status"] == "bad"
    assert "vtl2" in rows["placed ranges"]["layout.json"]["detail"]
