"""Cross-check an `emit all` directory: every view must describe the same layout.

Each firmware view is produced by a different encoder and read by a different guest
component, so a bug in one of them silently gives the guest a second, contradictory
memory map. Here every artifact is decoded back with the project's own decoders and
compared, row by row, with a fresh resolution of the recorded config — the single
source of truth. Ranges are compared after merging adjacent pieces, because views
legitimately split the same memory differently (E820 carves the BIOS area out of RAM,
SRAT splits at the low MMIO gap); only the bytes described matter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from vmlayout.arch import Arch, ProcessorIds
from vmlayout.artifacts import CONFIG_FILE, ArtifactSet, EmitSettings, load_artifact_set
from vmlayout.errors import VmLayoutError
from vmlayout.inputs import shown
from vmlayout.inspect.dtb import require_tree
from vmlayout.policy import ResolvedLayout
from vmlayout.ranges import FOUR_GIB, MemoryRange, format_address
from vmlayout.report import placed_to_json

#: A row's value: the merged non-empty ranges a view describes for it, or, for
#: register rows, a tuple of (msr, value) pairs.
RowValue = tuple[Any, ...]


def merge_ranges(ranges: Any) -> tuple[MemoryRange, ...]:
    """Sorted, non-empty, with touching or overlapping pieces joined."""
    out: list[MemoryRange] = []
    for r in sorted(r for r in ranges if not r.is_empty()):
        if out and r.start <= out[-1].end:
            out[-1] = MemoryRange(out[-1].start, max(out[-1].end, r.end))
        else:
            out.append(r)
    return tuple(out)


#: (VP index, vNUMA node) of every processor: SRAT's affinity entries and the device
#: trees' CPU nodes against the config's processors section.
VP_ROW = "VP vnodes"
#: The facts of the processors and platform sections that several views state: every
#: view that states one must state the config's value.
VP_COUNT_ROW = "VP count"
#: (VP index, APIC id / MPIDR): MADT, the device trees' `cpu@` reg.
VP_IDS_ROW = "VP ids"
GIC_DIST_ROW = "GIC distributor"
GIC_REDIST_ROW = "GIC redistributors"
GIC_MSI_ROW = "GIC MSI frame"
TIMER_ROW = "timer PPI"
SERIAL_ROW = "serial ports"
#: (name, start, end) of every placement: layout.json's `placed` list.
PLACED_ROW = "placed ranges"
PLATFORM_ROWS = (
    VP_COUNT_ROW, VP_IDS_ROW, GIC_DIST_ROW, GIC_REDIST_ROW, GIC_MSI_ROW, TIMER_ROW, SERIAL_ROW,
)  # fmt: skip
#: Rows whose values are lists: the table shows a count, the detail lists them.
REGISTER_ROWS = (
    "MTRR registers", "PCAT items", "PCAT CMOS", "PCIe segments", VP_ROW, VP_IDS_ROW, PLACED_ROW,
)  # fmt: skip
#: Each ACPI view's table checksums: a bad checksum is its own ✗, the rows are still
#: decoded and compared.
CHECKSUM_ROW = "table checksum"


def expected_rows(
    resolved: ResolvedLayout, settings: EmitSettings | None = None
) -> dict[str, RowValue]:
    """What every view must agree on, from the re-resolved layout (and, for register
    rows, the recorded emitter settings)."""
    layout = resolved.memory_layout
    rows: dict[str, RowValue] = {}
    for vnode in sorted({r.vnode for r in layout.ram}):
        rows[f"RAM node {vnode}"] = merge_ranges(r.range for r in layout.ram if r.vnode == vnode)
    rows["RAM"] = merge_ranges(r.range for r in layout.ram)
    rows["chipset low"] = merge_ranges([resolved.chipset.low])
    rows["chipset high"] = merge_ranges([resolved.chipset.high])
    rows["chipset vtl2"] = merge_ranges([resolved.chipset.vtl2])
    for rc in resolved.pcie_root_complexes:
        rows[f"ECAM {rc.name}"] = merge_ranges([rc.ecam])
        rows[f"{rc.name} low MMIO"] = merge_ranges([rc.low_mmio])
        rows[f"{rc.name} high MMIO"] = merge_ranges([rc.high_mmio])
    rows.update(iommu_rows(resolved, resolved.iommu_ranges))
    rows.update(cxl_rows(resolved.pcie_root_complexes))
    if resolved.pcie_root_complexes:
        # (root-complex index, segment): what MCFG, SSDT `_SEG` and IORT must agree on
        rows["PCIe segments"] = tuple(
            (i, rc.segment) for i, rc in enumerate(resolved.pcie_root_complexes)
        )
    if layout.vtl2_range is not None:
        rows["VTL2 memory"] = merge_ranges([layout.vtl2_range])
    if settings is not None and {"SRAT.aml", "paravisor.dtb"} & set(settings.artifacts):
        rows[VP_ROW] = _expected_vp_vnodes(resolved)
    if settings is not None:
        rows.update(platform_rows(resolved))
    if settings is not None and "layout.json" in settings.artifacts:
        rows[PLACED_ROW] = tuple(
            (str(p["name"]), p["start"], p["end"]) for p in placed_to_json(resolved.placed)
        )
    if settings is not None and any(_is_table_file(name) for name in settings.artifacts):
        rows[CHECKSUM_ROW] = ()  # per view: every table's checksum ok (see `compare`)
    if settings is not None and "mtrr.json" in settings.artifacts:
        rows["MTRR registers"] = _expected_mtrrs(resolved)
    if settings is not None and "pcat.json" in settings.artifacts:
        rows["PCAT items"] = _expected_pcat(resolved)
        rows["PCAT CMOS"] = _expected_cmos(resolved)
    if settings is not None and "pci.json" in settings.artifacts:
        from vmlayout.pci_layout.check import expected_pci_rows

        rows.update(expected_pci_rows(resolved))
    return rows


def _is_table_file(name: str) -> bool:
    return name.endswith(".aml") or name == "RSDP.bin"


def _expected_vp_vnodes(resolved: ResolvedLayout) -> RowValue:
    """(VP, vNUMA node) per VP by the one placement rule and the config's processors."""
    config = resolved.config
    return tuple(enumerate(config.processors.vnodes(len(config.node_mem_sizes), config.arch)))


def _on(flag: bool) -> RowValue:
    return ("on",) if flag else ("off",)


def platform_rows(resolved: ResolvedLayout) -> dict[str, RowValue]:
    """The processors and platform facts more than one view states, from the config."""
    from vmlayout.arch import InterruptController

    config = resolved.config
    cpus, platform = config.processors, config.platform
    rows: dict[str, RowValue] = {
        VP_COUNT_ROW: (cpus.vp_count,),
        VP_IDS_ROW: tuple(enumerate(cpus.processor_ids(config.arch))),
        SERIAL_ROW: _on(platform.serial),
    }
    if config.arch.spec.interrupt_controller is InterruptController.GIC:
        gic = platform.gic
        rows[GIC_DIST_ROW] = (gic.distributor_base,)
        rows[GIC_REDIST_ROW] = (gic.redistributors_base,)
        frame = {"its": gic.its_base, "v2m": gic.v2m_frame_base}.get(gic.msi)
        rows[GIC_MSI_ROW] = () if frame is None else (frame,)
        rows[TIMER_ROW] = (gic.virt_timer_ppi,)
    return rows


def iommu_rows(resolved: ResolvedLayout, ranges: Any) -> dict[str, RowValue]:
    """`IOMMU <rc>` rows: the resolver places one IOMMU per root complex that asks for
    one, in config order, so the n-th range belongs to the n-th such root complex."""
    names = [rc.name for rc in resolved.config.pcie_root_complexes if rc.iommu is not None]
    if len(names) != len(ranges):
        return {"IOMMU count": ((len(ranges), "ranges for", len(names), "root complexes"),)}
    return {f"IOMMU {name}": merge_ranges([r]) for name, r in zip(names, ranges, strict=True)}


def _expected_mtrrs(resolved: ResolvedLayout) -> RowValue:
    from vmlayout.artifacts import mtrr_state_of

    try:
        state = mtrr_state_of(resolved)
    except VmLayoutError as error:
        return (("error", error.message),)
    return tuple((w.msr, w.value) for w in state.to_msrs())


def _expected_pcat(resolved: ResolvedLayout) -> RowValue:
    from vmlayout.firmware.pcat import PcatConfig

    try:
        items = PcatConfig(resolved.memory_layout, resolved.chipset).items()
    except VmLayoutError as error:
        return (("error", error.message),)
    return tuple((int(k), v) for k, v in items.items())


def _expected_cmos(resolved: ResolvedLayout) -> RowValue:
    from vmlayout.firmware.pcat import PcatConfig

    try:
        image = PcatConfig(resolved.memory_layout, resolved.chipset).cmos_image()
    except VmLayoutError as error:
        return (("error", error.message),)
    return _cmos_pairs(image)


def _cmos_pairs(image: bytes) -> RowValue:
    """(offset, byte) of every non-zero CMOS byte: the image is mostly zero."""
    return tuple((offset, value) for offset, value in enumerate(image) if value)


def ram_rows_by_node(pieces: Any) -> dict[str, RowValue]:
    """`RAM node N` rows and the `RAM` row from (range, vnode) pairs."""
    by_node: dict[int, list[MemoryRange]] = {}
    for r, vnode in pieces:
        by_node.setdefault(vnode, []).append(r)
    rows: dict[str, RowValue] = {
        f"RAM node {vnode}": merge_ranges(by_node[vnode]) for vnode in sorted(by_node)
    }
    rows["RAM"] = merge_ranges(r for r, _ in pieces)
    return rows


@dataclass(frozen=True, slots=True)
class View:
    """One column: an artifact family and how to read the rows it describes."""

    name: str
    files: tuple[str, ...]
    #: Row-name predicate: which expected rows this view is responsible for.
    covers: Callable[[str], bool]
    #: Decode the artifacts into row values (raises VmLayoutError on bad bytes).
    read: Callable[[ArtifactSet, ResolvedLayout], dict[str, RowValue]]
    #: Memory-type findings etc.: reported as warnings unless --strict.
    findings: Callable[[ArtifactSet, ResolvedLayout], list[str]] | None = None


@dataclass(frozen=True, slots=True)
class Cell:
    status: str  # "ok", "bad" or "" (row not described by this view)
    detail: str = ""


@dataclass(frozen=True, slots=True)
class CrossCheckReport:
    views: tuple[str, ...]
    rows: tuple[str, ...]
    cells: Mapping[tuple[str, str], Cell]
    expected: Mapping[str, RowValue]
    warnings: tuple[str, ...]
    strict: bool
    problems: tuple[str, ...] = field(default=())

    @property
    def disagreements(self) -> list[tuple[str, str, Cell]]:
        return [
            (row, view, cell) for (row, view), cell in self.cells.items() if cell.status == "bad"
        ]

    @property
    def consistent(self) -> bool:
        if self.disagreements:
            return False
        return not (self.strict and self.warnings)


def describe(value: RowValue) -> str:
    if not value:
        return "absent"
    parts = []
    for item in value:
        if isinstance(item, MemoryRange):
            parts.append(f"{format_address(item.start)}-{format_address(item.end)}")
        elif isinstance(item, tuple) and len(item) == 2:
            key, reg = item
            numbers = isinstance(key, int) and isinstance(reg, int)
            parts.append(f"{key:#x}={reg:#x}" if numbers else f"{key}: {reg}")
        elif isinstance(item, int) and not isinstance(item, bool) and item > 0xFFFF:
            parts.append(format_address(item))  # a GIC frame's base
        else:  # any other row value (a view's own tuple) is shown as it is
            parts.append(str(item))
    return ", ".join(parts)


def compare(
    artifacts: ArtifactSet, resolved: ResolvedLayout, views: tuple[View, ...], strict: bool
) -> CrossCheckReport:
    expected = expected_rows(resolved, artifacts.settings)
    cells: dict[tuple[str, str], Cell] = {}
    warnings: list[str] = []
    active: list[View] = []
    extra_rows: dict[str, RowValue] = {}
    for view in views:
        if not any(name in artifacts.settings.artifacts for name in view.files):
            continue
        active.append(view)
        missing = [n for n in view.files if n not in artifacts.files]
        observed: dict[str, RowValue] | None = None
        failure = ""
        if missing:
            failure = f"{', '.join(missing)} missing"
        else:
            try:
                observed = view.read(artifacts, resolved)
            except VmLayoutError as error:
                # a tree or table of another kind is named as such, not "undecodable"
                known = error.kind in ("wrong_tree", "foreign_table")
                failure = error.message if known else f"undecodable: {error.message}"
        if observed is not None:
            for row in observed:
                if row not in expected and view.covers(row):
                    extra_rows[row] = ()
        checksums = _checksum_value(artifacts, view) if _has_tables(view) else None
        for row in [*expected, *extra_rows]:
            if row == CHECKSUM_ROW:
                if checksums is not None:
                    bad = [f"{n}: {v}" for n, v in checksums if v != "ok"]
                    ok = checksums and not bad
                    detail = "; ".join(bad) or failure or "no table to check"
                    cells[(row, view.name)] = Cell("ok") if ok else Cell("bad", detail)
                continue
            if not view.covers(row):
                continue
            if observed is None:
                cells[(row, view.name)] = Cell("bad", failure)
                continue
            got = observed.get(row, ())
            want = expected.get(row, ())
            if got == want:
                cells[(row, view.name)] = Cell("ok")
            else:
                cells[(row, view.name)] = Cell("bad", f"{describe(got)} (want {describe(want)})")
        if observed is not None and view.findings is not None:
            warnings += [f"{view.name}: {w}" for w in view.findings(artifacts, resolved)]
    all_rows = tuple(
        row
        for row in [*expected, *extra_rows]
        if any((row, v.name) in cells for v in active) or row in expected
    )
    return CrossCheckReport(
        views=tuple(v.name for v in active),
        rows=all_rows,
        cells=cells,
        expected={**expected, **extra_rows},
        warnings=tuple(warnings),
        strict=strict,
    )


def render_table(report: CrossCheckReport) -> str:
    """Rows by views with ✓/✗ (· where the view does not describe the row), then the
    differing addresses and the warnings."""
    header = ["range", "expected", *report.views]
    body = []
    for row in report.rows:
        want = report.expected.get(row, ())
        many = row in REGISTER_ROWS or row.endswith(" assignment")  # `PCI <rc> assignment`
        shown = f"{len(want)} values" if many else describe(want)
        if row == CHECKSUM_ROW:
            shown = "every table's checksum ok"
        line = [row, shown]
        for view in report.views:
            cell = report.cells.get((row, view))
            line.append("·" if cell is None else ("✓" if cell.status == "ok" else "✗"))
        body.append(line)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    out = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *body]
    ]
    for row, view, cell in report.disagreements:
        out.append(f"✗ {view} / {row}: {cell.detail}")
    label = "error" if report.strict else "warning"
    out += [f"{label}: {w}" for w in report.warnings]
    if report.consistent:
        out.append(f"consistent: {len(report.views)} views agree on {len(report.rows)} ranges")
    else:
        count = len(report.disagreements) + (len(report.warnings) if report.strict else 0)
        out.append(f"INCONSISTENT: {count} disagreement(s)")
    return "\n".join(out) + "\n"


def report_to_json(report: CrossCheckReport) -> dict[str, Any]:
    def item(x: Any) -> Any:
        if isinstance(x, MemoryRange):
            return [x.start, x.end]
        return list(x) if isinstance(x, tuple) else x  # a pair, a placement, or a scalar

    def value(v: RowValue) -> list[Any]:
        return [item(x) for x in v]

    return {
        "consistent": report.consistent,
        "views": list(report.views),
        "rows": [
            {
                "range": row,
                "expected": value(report.expected.get(row, ())),
                "views": {
                    view: {"status": cell.status, "detail": cell.detail}
                    for view in report.views
                    if (cell := report.cells.get((row, view))) is not None
                },
            }
            for row in report.rows
        ],
        "warnings": list(report.warnings),
        "strict": report.strict,
    }


def _pair_range(value: Any, where: str) -> MemoryRange:
    try:
        start, end = value
        return MemoryRange(int(start), int(end))
    except (TypeError, ValueError):
        raise VmLayoutError("invalid_artifact", f"layout.json: {where}: not a range") from None


def read_layout_json(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    """The saved `resolve --format json` output: catches a layout that moved between the
    vmlayout that wrote the set and the one checking it."""
    from vmlayout.inspect.diff import check_saved_layout

    try:
        # the one reader of saved layouts (diff, corpus, inspect layout.json, where)
        data = check_saved_layout(_json(artifacts, "layout.json"), "layout.json")
        ram = [
            (_pair_range((r["start"], r["end"]), f"ram[{i}]"), int(r["vnode"]))
            for i, r in enumerate(data["ram"])
        ]
        rows = ram_rows_by_node(ram)
        for key in ("low", "high", "vtl2"):
            rows[f"chipset {key}"] = merge_ranges(
                [_pair_range(data["chipset"][key], f"chipset.{key}")]
            )
        for i, rc in enumerate(data["pcie_root_complexes"]):
            for key, row in (
                ("ecam", "ECAM {}"),
                ("low_mmio", "{} low MMIO"),
                ("high_mmio", "{} high MMIO"),
            ):
                rows[row.format(rc["name"])] = merge_ranges(
                    [_pair_range(rc[key], f"pcie_root_complexes[{i}].{key}")]
                )
        iommus = [
            _pair_range(r, f"iommu.ranges[{i}]") for i, r in enumerate(data["iommu"]["ranges"])
        ]
        rows.update(iommu_rows(resolved, iommus))
        rows.update(
            cxl_rows(
                SimpleNamespace(
                    name=rc["name"],
                    cxl_hdm=_pair_range(rc["cxl_hdm"], f"pcie_root_complexes[{i}].cxl_hdm"),
                    cxl_chbcr=_pair_range(rc["cxl_chbcr"], f"pcie_root_complexes[{i}].cxl_chbcr"),
                )
                for i, rc in enumerate(data["pcie_root_complexes"])
            )
        )
        if data["vtl2"] is not None:
            rows["VTL2 memory"] = merge_ranges([_pair_range(data["vtl2"], "vtl2")])
        rows[PLACED_ROW] = tuple(
            (str(p["name"]), int(p["start"]), int(p["end"])) for p in data["placed"]
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise VmLayoutError("invalid_artifact", f"layout.json: malformed ({error})") from None
    return rows


LAYOUT_VIEW = View(
    name="layout.json",
    files=("layout.json",),
    covers=lambda row: (
        row == PLACED_ROW
        or (row not in REGISTER_ROWS and row not in PLATFORM_ROWS and not row.startswith("PCI "))
    ),
    read=read_layout_json,
)


def _is_chipset(row: str) -> bool:
    return row in ("chipset low", "chipset high", "chipset other")


def _is_ram(row: str) -> bool:
    return row == "RAM" or row.startswith("RAM node ")


def _is_iommu(row: str) -> bool:
    return row.startswith("IOMMU ")


def _is_cxl(row: str) -> bool:
    return row.startswith("CXL ")


def cxl_rows(complexes: Any) -> dict[str, RowValue]:
    """`CXL HDM <rc>` and `CXL CHBCR <rc>` for every CXL root complex (both windows are
    empty on the others)."""
    rows: dict[str, RowValue] = {}
    for rc in complexes:
        if not rc.cxl_hdm.is_empty():
            rows[f"CXL HDM {rc.name}"] = merge_ranges([rc.cxl_hdm])
        if not rc.cxl_chbcr.is_empty():
            rows[f"CXL CHBCR {rc.name}"] = merge_ranges([rc.cxl_chbcr])
    return rows


def _is_rc(row: str) -> bool:
    return row.startswith("ECAM ") or row.endswith(" low MMIO") or row.endswith(" high MMIO")


def _split_chipset(ranges: Any) -> dict[str, RowValue]:
    """Assign decoded windows by address, not by position: the low window is the one
    ending at 4 GiB, the high one lies above it; anything else is a disagreement
    (row `chipset other`, which the layout never has)."""
    rows: dict[str, list[MemoryRange]] = {"chipset low": [], "chipset high": []}
    for r in ranges:
        if r.is_empty():
            continue
        key = (
            "chipset low"
            if r.end == FOUR_GIB
            else "chipset high"
            if r.start >= FOUR_GIB
            else "chipset other"
        )
        rows.setdefault(key, []).append(r)
    return {k: merge_ranges(v) for k, v in rows.items()}


def _table(artifacts: ArtifactSet, name: str) -> Any:
    """The decoded table, whatever its checksum: a bad checksum is its own ✗ (row
    `table checksum`), and the rows are still compared, so the cell shows what changed."""
    from vmlayout.acpi.decode import decode_table

    return decode_table(artifacts.files[name], name)


def _has_tables(view: View) -> bool:
    return any(_is_table_file(name) for name in view.files)


def _checksum_value(artifacts: ArtifactSet, view: View) -> tuple[tuple[str, str], ...]:
    """`(file, "ok")` per table of the view, or what is wrong with its checksum."""
    from vmlayout.acpi.decode import decode_rsdp, decode_table

    out: list[tuple[str, str]] = []
    for name in view.files:
        data = artifacts.files.get(name)
        if data is None or not _is_table_file(name):
            continue
        try:
            if name == "RSDP.bin":
                ok = decode_rsdp(data).checksum_ok
                out.append((name, "ok" if ok else "bad"))
                continue
            table = decode_table(data, name)
        except VmLayoutError as error:
            out.append((name, f"undecodable: {error.message}"))
            continue
        if table.checksum_ok:
            out.append((name, "ok"))
        else:
            stored = table.header["checksum"]
            fixed = (stored - sum(data)) & 0xFF
            out.append((name, f"bad (stored {stored:#04x}, would be {fixed:#04x})"))
    return tuple(out)


def read_dsdt(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    """The chipset windows, the processor count and the UARTs, from one decode."""
    from vmlayout.acpi.decode import (
        chipset_of_devices,
        decode_definition_block,
        decode_table,
        require_checksum,
    )

    table = decode_table(artifacts.files["DSDT.aml"], "DSDT")
    require_checksum(table, "DSDT")
    devices = decode_definition_block(table)
    _, ranges = chipset_of_devices(devices)
    processors = [d for d in devices if d.names.get("_HID") == "ACPI0007"]
    serial = any(d.path.rsplit(".", 1)[-1].startswith("UAR") for d in devices)
    return {
        **_split_chipset(ranges),
        VP_COUNT_ROW: (len(processors),),
        SERIAL_ROW: _on(serial),
    }


def read_madt(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    """Processors (local APIC / x2APIC ids or GICC MPIDRs, in entry order) and, on arm64,
    the GIC frames."""
    from vmlayout.acpi.madt import (
        Gicc,
        Gicd,
        GicIts,
        GicMsiFrame,
        LocalApic,
        LocalX2Apic,
        decode_madt,
    )

    entries = decode_madt(_table(artifacts, "APIC.aml")).entries
    cpus = [e for e in entries if isinstance(e, LocalApic | LocalX2Apic | Gicc)]
    ids = [e.mpidr if isinstance(e, Gicc) else e.apic_id for e in cpus]
    rows: dict[str, RowValue] = {VP_COUNT_ROW: (len(ids),), VP_IDS_ROW: tuple(enumerate(ids))}
    gicd = [e.base for e in entries if isinstance(e, Gicd)]
    gicr = [e.gicr_base for e in cpus if isinstance(e, Gicc)]
    frames = [e.base for e in entries if isinstance(e, GicIts | GicMsiFrame)]
    if gicd or gicr:
        rows[GIC_DIST_ROW] = tuple(gicd)
        rows[GIC_REDIST_ROW] = (min(gicr),) if gicr else ()
        rows[GIC_MSI_ROW] = tuple(frames)
    return rows


def read_gtdt(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.acpi.decode import decode_gtdt

    return {TIMER_ROW: (decode_gtdt(_table(artifacts, "GTDT.aml")).virtual_el1_gsiv,)}


def read_srat(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.acpi.decode import decode_srat

    table = _table(artifacts, "SRAT.aml")
    memory, _ = decode_srat(table)
    rows = ram_rows_by_node([(m.range, m.vnode) for m in memory])
    rows[VP_ROW] = tuple(sorted(srat_processor_vnodes(table, resolved.arch)))
    return rows


def srat_processor_vnodes(table: Any, arch: Arch) -> list[tuple[int, int]]:
    """(VP index, vNUMA node) of every enabled processor: APIC ids are VP indices, GICC
    ACPI processor UIDs are VP + 1."""
    from vmlayout.acpi.decode import decode_srat_processors

    offset = 1 if arch.spec.processor_ids is ProcessorIds.MPIDR else 0
    return [(ident - offset, vnode) for ident, vnode in decode_srat_processors(table, True)]


def _rc_names(resolved: ResolvedLayout, count: int, what: str) -> list[str]:
    names = [rc.name for rc in resolved.pcie_root_complexes]
    if count != len(names):
        raise VmLayoutError(
            "invalid_artifact", f"{what}: {count} root complexes, the layout has {len(names)}"
        )
    return names


def read_mcfg(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.acpi.decode import decode_mcfg

    entries = decode_mcfg(_table(artifacts, "MCFG.aml"))
    names = _rc_names(resolved, len(entries), "MCFG")
    rows: dict[str, RowValue] = {
        f"ECAM {n}": merge_ranges([e.ecam]) for n, e in zip(names, entries, strict=True)
    }
    rows["PCIe segments"] = tuple((i, e.segment) for i, e in enumerate(entries))
    return rows


def read_ssdt(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.acpi.decode import decode_definition_block, device_memory

    devices = decode_definition_block(_table(artifacts, "SSDT.aml"))
    complexes = [d for d in devices if d.path != "\\VMOD"]
    names = _rc_names(resolved, len(complexes), "SSDT")
    rows: dict[str, RowValue] = {}
    for name, device in zip(names, complexes, strict=True):
        ranges = device_memory(device, "SSDT")
        if len(ranges) != 2:
            raise VmLayoutError(
                "invalid_artifact", f"SSDT: {device.path} has {len(ranges)} windows"
            )
        rows[f"{name} low MMIO"], rows[f"{name} high MMIO"] = (ranges[0],), (ranges[1],)
    reservation = [d for d in devices if d.path == "\\VMOD"]
    ecam = device_memory(reservation[0], "SSDT") if reservation else ()
    if len(ecam) != len(names):
        raise VmLayoutError("invalid_artifact", "SSDT: \\VMOD does not list one ECAM per complex")
    rows.update({f"ECAM {n}": (r,) for n, r in zip(names, ecam, strict=True)})
    rows["PCIe segments"] = tuple((i, d.names.get("_SEG")) for i, d in enumerate(complexes))
    return rows


def _iommu_by_index(resolved: ResolvedLayout, units: Any, what: str) -> dict[str, RowValue]:
    """`IOMMU <rc>` rows from IOMMU tables listing one unit per IOMMU root complex, in
    root-complex order (IVRS, DMAR)."""
    from vmlayout.acpi.decode import register_window
    from vmlayout.acpi.iommu import IOMMU_WINDOW_BYTES

    names = [rc.name for rc in resolved.config.pcie_root_complexes if rc.iommu is not None]
    if len(units) != len(names):
        raise VmLayoutError(
            "invalid_artifact", f"{what}: {len(units)} IOMMUs, the layout has {len(names)}"
        )
    size = IOMMU_WINDOW_BYTES[what]
    return {
        f"IOMMU {n}": (register_window(u.base, size, what),)
        for n, u in zip(names, units, strict=True)
    }


def read_ivrs(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.acpi.decode import decode_ivrs

    _, units = decode_ivrs(_table(artifacts, "IVRS.aml"))
    return _iommu_by_index(resolved, units, "IVRS")


def read_dmar(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.acpi.decode import decode_dmar

    _, units = decode_dmar(_table(artifacts, "DMAR.aml"))
    return _iommu_by_index(resolved, units, "DMAR")


def read_iort(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    """SMMUv3 nodes name their root complex by index (the node identifier)."""
    from vmlayout.acpi.decode import decode_iort, register_window
    from vmlayout.acpi.iommu import IOMMU_WINDOW_BYTES

    names = [rc.name for rc in resolved.pcie_root_complexes]
    rows: dict[str, RowValue] = {}
    nodes = decode_iort(_table(artifacts, "IORT.aml"))
    rows["PCIe segments"] = tuple(
        (n.identifier, n.segment) for n in nodes if n.kind == "root_complex"
    )
    for node in nodes:
        if node.kind != "smmuv3" or node.base is None:
            continue
        if node.identifier >= len(names):
            raise VmLayoutError(
                "invalid_artifact", f"IORT: SMMU for root complex {node.identifier} of {len(names)}"
            )
        window = register_window(node.base, IOMMU_WINDOW_BYTES["IORT"], "IORT")
        rows[f"IOMMU {names[node.identifier]}"] = (window,)
    return rows


def read_cedt(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    """CHBS/CFMWS name their host bridge by UID = root-complex index."""
    from vmlayout.acpi.decode import decode_cedt

    names = [rc.name for rc in resolved.pcie_root_complexes]
    rows: dict[str, RowValue] = {}
    for bridge in decode_cedt(_table(artifacts, "CEDT.aml")):
        if bridge.uid >= len(names):
            raise VmLayoutError(
                "invalid_artifact", f"CEDT: host bridge {bridge.uid} of {len(names)}"
            )
        name = names[bridge.uid]
        if bridge.hdm is not None:
            rows[f"CXL HDM {name}"] = (bridge.hdm,)
        if bridge.chbcr is not None:
            rows[f"CXL CHBCR {name}"] = (bridge.chbcr,)
    return rows


def read_e820(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.firmware.e820 import decode_e820, e820_ranges

    return {"RAM": merge_ranges(e820_ranges(decode_e820(artifacts.files["e820.bin"])))}


def _json(artifacts: ArtifactSet, name: str) -> Any:
    from vmlayout.inputs import parse_json

    return parse_json(artifacts.files[name], name, "invalid_artifact")


def _pairs(doc: Any, key: str, name: str) -> RowValue:
    try:
        pairs = tuple((int(a), int(b)) for a, b in doc[key])
    except (KeyError, TypeError, ValueError):
        raise VmLayoutError("invalid_artifact", f"{name}: {key} is not a list of pairs") from None
    return pairs


def read_mtrr(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    return {"MTRR registers": _pairs(_json(artifacts, "mtrr.json"), "msrs", "mtrr.json")}


def mtrr_findings(artifacts: ArtifactSet, resolved: ResolvedLayout) -> list[str]:
    """What the MTRRs really make of the layout (reference sets leave MMIO WB)."""
    from vmlayout.firmware.memtype import (
        MtrrState,
        check_layout,
        effective_intervals,
        layout_expectations,
    )
    from vmlayout.firmware.mtrr import MsrWrite

    msrs = read_mtrr(artifacts, resolved)["MTRR registers"]
    state = MtrrState.from_msrs([MsrWrite(a, b) for a, b in msrs])
    intervals = effective_intervals(state, resolved.config.physical_address_size)
    return [v.describe() for v in check_layout(intervals, layout_expectations(resolved))]


def read_pcat(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    doc = _json(artifacts, "pcat.json")
    rows = {"PCAT items": _pairs(doc, "items", "pcat.json")}
    try:
        image = bytes.fromhex(doc["cmos"])
    except (KeyError, TypeError, ValueError):
        raise VmLayoutError("invalid_artifact", "pcat.json: cmos is not a hex string") from None
    if len(image) != 256:
        raise VmLayoutError("invalid_artifact", f"pcat.json: cmos is {len(image)} bytes, not 256")
    rows["PCAT CMOS"] = _cmos_pairs(image)
    return rows


def read_uefi(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.firmware.uefi import Flag, StructureType, decode_config_blob

    blob = decode_config_blob(artifacts.files["uefi-config.bin"])
    if blob.mmio_ranges is None:
        raise VmLayoutError("invalid_artifact", "uefi-config.bin: no MmioRanges structure")
    rows: dict[str, RowValue] = {
        "RAM": merge_ranges(blob.memory_map),
        **_split_chipset(blob.mmio_ranges),
    }
    by_type = {st.structure_type: st.fields for st in blob.structures}
    info = by_type.get(StructureType.PROCESSOR_INFORMATION)
    rows[VP_COUNT_ROW] = () if info is None else (info["processor_count"],)
    flags = by_type.get(StructureType.FLAGS)
    if flags is not None:
        rows[SERIAL_ROW] = _on(bool(flags["flags"] >> Flag.SERIAL_CONTROLLERS_ENABLED & 1))
    gic = by_type.get(StructureType.GIC)
    if gic is not None:
        rows[GIC_DIST_ROW] = (gic["distributor_base"],)
        rows[GIC_REDIST_ROW] = (gic["redistributors_base"],)
    return rows


def read_linux_dtb(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.devicetree.fdt import read_fdt
    from vmlayout.devicetree.linux import (
        chipset_from_linux_tree,
        pcie_from_linux_tree,
        ram_from_linux_tree,
    )

    require_tree(artifacts.files["linux.dtb"], "linux", "linux.dtb")
    root = read_fdt(artifacts.files["linux.dtb"])
    chipset = chipset_from_linux_tree(root)
    rows: dict[str, RowValue] = {
        "RAM": merge_ranges(ram_from_linux_tree(root)),
        **_split_chipset((chipset.low, chipset.high)),
    }
    # a pcie@ node is the root complex with its segment and first bus; one nobody
    # configured keeps its node name, so it shows up as a row of its own
    names = {(rc.segment, rc.start_bus): rc.name for rc in resolved.pcie_root_complexes}
    for bridge in pcie_from_linux_tree(root):
        name = names.get((bridge.segment, bridge.start_bus), bridge.name)
        rows[f"ECAM {name}"] = merge_ranges([bridge.ecam])
        rows[f"{name} low MMIO"] = merge_ranges([bridge.low_mmio])
        rows[f"{name} high MMIO"] = merge_ranges([bridge.high_mmio])
        if bridge.smmu is not None:
            rows[f"IOMMU {name}"] = merge_ranges([bridge.smmu])
    rows.update(linux_dt_platform_rows(root))
    return rows


def _dt_cpu_ids(root: Any) -> list[int]:
    from vmlayout.devicetree.fdt import string

    cpus = root.child("cpus")
    nodes = [] if cpus is None else cpus.children
    return [
        int.from_bytes(n.prop("reg") or b"", "big")
        for n in nodes
        if n.prop("device_type") == string("cpu")
    ]


def linux_dt_platform_rows(root: Any) -> dict[str, RowValue]:
    """Processors (cpu@ reg = MPIDR), GIC frames, virtual timer PPI and UARTs."""
    ids = _dt_cpu_ids(root)
    rows: dict[str, RowValue] = {VP_COUNT_ROW: (len(ids),), VP_IDS_ROW: tuple(enumerate(ids))}
    from vmlayout.devicetree.fdt import cells, u64_array

    gic = next((c for c in root.children if c.name.startswith("intc@")), None)
    if gic is not None:
        reg = u64_array(gic.prop("reg") or b"", "GIC reg")  # (dist, size, redist, size)
        if len(reg) >= 4:
            rows[GIC_DIST_ROW] = (reg[0],)
            rows[GIC_REDIST_ROW] = (reg[2],)
        frames = [u64_array(c.prop("reg") or b"", f"{c.name} reg") for c in gic.children]
        rows[GIC_MSI_ROW] = tuple(f[0] for f in frames if f)
    timer = next((c for c in root.children if c.name == "timer"), None)
    if timer is not None:
        # (GIC_PPI, number - 16, flags): the virtual timer
        interrupts = cells(timer.prop("interrupts") or b"", "timer interrupts")
        if len(interrupts) >= 3:
            rows[TIMER_ROW] = (interrupts[1] + 16,)
    rows[SERIAL_ROW] = _on(_has_node(root, "uart@"))
    return rows


def _has_node(node: Any, prefix: str) -> bool:
    """Whether any node below `node` is named `prefix…` (the UARTs sit under /hvlite)."""
    stack = list(node.children)
    while stack:
        child = stack.pop()
        if child.name.startswith(prefix):
            return True
        stack.extend(child.children)
    return False


def read_paravisor_dtb(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.devicetree.paravisor import (
        VTL2_PROTECTABLE,
        chipset_from_host_tree,
        parse_host_tree,
    )

    require_tree(artifacts.files["paravisor.dtb"], "paravisor", "paravisor.dtb")
    tree = parse_host_tree(artifacts.files["paravisor.dtb"])
    chipset = chipset_from_host_tree(tree)
    vnodes = dt_cpu_vnodes(artifacts.files["paravisor.dtb"])
    vps = {
        VP_ROW: vnodes,
        VP_COUNT_ROW: (len(vnodes),),
        VP_IDS_ROW: tuple((vp, vp) for vp, _ in vnodes),  # reg is the VP index (APIC id)
    }
    vtl2 = [e.range for e in tree.memory if e.entry_type == VTL2_PROTECTABLE]
    return {
        **ram_rows_by_node(
            [(e.range, e.vnode) for e in tree.memory if e.entry_type != VTL2_PROTECTABLE]
        ),
        **({"VTL2 memory": merge_ranges(vtl2)} if vtl2 else {}),
        **_split_chipset((chipset.low, chipset.high)),
        "chipset vtl2": merge_ranges([chipset.vtl2]),
        **vps,
    }


def dt_cpu_vnodes(blob: bytes) -> RowValue:
    """(VP index from `reg`, `numa-node-id`) of every /cpus/cpu node."""
    from vmlayout.devicetree.fdt import read_fdt, string

    cpus = read_fdt(blob).child("cpus")
    out = []
    for node in () if cpus is None else cpus.children:
        if node.prop("device_type") != string("cpu"):
            continue
        reg, vnode = node.prop("reg"), node.prop("numa-node-id")
        if reg is None or len(reg) != 4 or vnode is None or len(vnode) != 4:
            raise VmLayoutError(
                "invalid_artifact", f"device tree: {node.name}: reg or numa-node-id missing"
            )
        out.append((int.from_bytes(reg, "big"), int.from_bytes(vnode, "big")))
    return tuple(sorted(out))


def read_igvm_mmio(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.devicetree.paravisor import decode_mmio_ranges

    return _split_chipset(decode_mmio_ranges(artifacts.files["igvm-mmio-ranges.bin"]))


def layout_columns() -> tuple[View, ...]:
    return (LAYOUT_VIEW,)


def acpi_columns() -> tuple[View, ...]:
    """One column per table that describes something another view also states."""
    return (
        View(
            "DSDT",
            ("DSDT.aml",),
            lambda row: _is_chipset(row) or row in (VP_COUNT_ROW, SERIAL_ROW),
            read_dsdt,
        ),
        View(
            "MADT",
            ("APIC.aml",),
            lambda row: (
                row in (VP_COUNT_ROW, VP_IDS_ROW, GIC_DIST_ROW, GIC_REDIST_ROW)
                or row == GIC_MSI_ROW
            ),
            read_madt,
        ),
        View("GTDT", ("GTDT.aml",), lambda row: row == TIMER_ROW, read_gtdt),
        View("SSDT", ("SSDT.aml",), lambda row: _is_rc(row) or row == "PCIe segments", read_ssdt),
        View("SRAT", ("SRAT.aml",), lambda row: _is_ram(row) or row == VP_ROW, read_srat),
        View(
            "MCFG",
            ("MCFG.aml",),
            lambda row: row.startswith("ECAM ") or row == "PCIe segments",
            read_mcfg,
        ),
        View("CEDT", ("CEDT.aml",), _is_cxl, read_cedt),
        View("IVRS", ("IVRS.aml",), _is_iommu, read_ivrs),
        View("DMAR", ("DMAR.aml",), _is_iommu, read_dmar),
        View(
            "IORT", ("IORT.aml",), lambda row: _is_iommu(row) or row == "PCIe segments", read_iort
        ),
    )


def e820_columns() -> tuple[View, ...]:
    return (View("E820", ("e820.bin",), lambda row: row == "RAM", read_e820),)


def mtrr_columns() -> tuple[View, ...]:
    return (
        View(
            "MTRR",
            ("mtrr.json",),
            lambda row: row == "MTRR registers",
            read_mtrr,
            findings=mtrr_findings,
        ),
    )


def pcat_columns() -> tuple[View, ...]:
    return (View("PCAT", ("pcat.json",), lambda row: row.startswith("PCAT "), read_pcat),)


def uefi_columns() -> tuple[View, ...]:
    return (
        View(
            "UEFI",
            ("uefi-config.bin",),
            lambda row: (
                row == "RAM"
                or _is_chipset(row)
                or row in (VP_COUNT_ROW, SERIAL_ROW, GIC_DIST_ROW, GIC_REDIST_ROW)
            ),
            read_uefi,
        ),
    )


def linux_dt_columns() -> tuple[View, ...]:
    return (
        View(
            "DT linux",
            ("linux.dtb",),
            lambda row: (
                row == "RAM"
                or _is_chipset(row)
                or _is_rc(row)
                or _is_iommu(row)
                or (row in PLATFORM_ROWS)
            ),
            read_linux_dtb,
        ),
    )


def paravisor_columns() -> tuple[View, ...]:
    return (
        View(
            "DT paravisor",
            ("paravisor.dtb",),
            lambda row: (
                _is_ram(row)
                or row.startswith("chipset ")
                or row in ("VTL2 memory", VP_ROW, VP_COUNT_ROW, VP_IDS_ROW)
            ),
            read_paravisor_dtb,
        ),
    )


def igvm_columns() -> tuple[View, ...]:
    return (View("IGVM", ("igvm-mmio-ranges.bin",), _is_chipset, read_igvm_mmio),)


def read_pci(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    """pci.json through the one reader `inspect pci.json` uses (same strictness), then
    its assignments and nesting as rows."""
    from vmlayout.inspect.pci import pci_view
    from vmlayout.pci_layout.check import read_pci_json

    pci_view(_json(artifacts, "pci.json"), "pci.json")
    return read_pci_json(artifacts, resolved)


def pci_columns() -> tuple[View, ...]:
    return (View("PCI", ("pci.json",), lambda row: row.startswith("PCI "), read_pci),)


def all_views() -> tuple[View, ...]:
    """Every column, in the view registry's order (`vmlayout.artifacts.VIEWS`); `compare`
    keeps those whose files the set records."""
    from vmlayout.artifacts import VIEWS

    return tuple(column for kind in VIEWS if kind.columns for column in kind.load_columns())


def directory_findings(
    directory: Path, artifacts: ArtifactSet, resolved: ResolvedLayout
) -> list[str]:
    """Files the record does not list (vmlayout did not write them), and listed files
    whose bytes are not what the record's config and settings produce (copied from
    another set, edited, or written by another vmlayout version): the views above say
    what they describe, this says where the set itself is not one piece."""
    from vmlayout.artifacts import build_artifact_set

    listed = {*artifacts.settings.artifacts, CONFIG_FILE}
    found = []
    try:
        present = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
    except OSError:
        present = []
    for name in present:
        if name not in listed:
            found.append(f"{name}: not written by vmlayout (not in config.json's artifact list)")
    try:
        fresh = build_artifact_set(resolved, replace(artifacts.settings, artifacts=()))
    except VmLayoutError as error:
        return [*found, f"config.json: its settings cannot be re-emitted: {error.message}"]
    for name in sorted(artifacts.files):
        if name == CONFIG_FILE:
            continue
        if name not in fresh:
            found.append(f"{name}: the recorded config and settings do not produce this file")
        elif fresh[name] != artifacts.files[name]:
            found.append(
                f"{name}: not the bytes the recorded config and settings produce "
                "(from another set, edited, or written by another vmlayout version)"
            )
    return found


def inspect_directory(directory: Path, fmt: str, strict: bool) -> tuple[str, int]:
    """`vmlayout inspect DIR` on an `emit all` directory: exit status 1 on any
    disagreement (and, with `strict`, on any memory-type finding)."""
    from vmlayout.policy import resolve

    artifacts = load_artifact_set(directory)
    try:
        resolved = resolve(artifacts.config)
    except VmLayoutError as error:
        raise VmLayoutError(
            "invalid_artifact",
            f"{shown(directory / CONFIG_FILE)}: its config no longer resolves (edited, or "
            f"from another vmlayout version): {error.kind}: {error.message}",
        ) from None
    report = compare(artifacts, resolved, all_views(), strict)
    extra = directory_findings(directory, artifacts, resolved)
    if extra:
        report = replace(report, warnings=(*report.warnings, *extra))
    status = 0 if report.consistent else 1
    # what Linux will make of these views (`check linux`): told, never counted
    from vmlayout.inspect.linux_findings import triggered

    linux = [(f, why) for f, why in triggered(resolved)]
    if fmt == "json":
        doc = report_to_json(report)
        doc["linux_findings"] = [
            {"finding": f.key, "message": f.message, "because": w} for f, w in linux
        ]
        return json.dumps(doc) + "\n", status
    notes = "".join(f"linux: {f.key}: {why}; the kernel says: {f.message}\n" for f, why in linux)
    return render_table(report) + notes, status
