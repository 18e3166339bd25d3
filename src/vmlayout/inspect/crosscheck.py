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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmlayout.artifacts import ArtifactSet, EmitSettings, load_artifact_set
from vmlayout.errors import VmLayoutError
from vmlayout.policy import ResolvedLayout
from vmlayout.ranges import FOUR_GIB, MemoryRange, format_address

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


REGISTER_ROWS = ("MTRR registers", "PCAT items")


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
    if settings is not None and "mtrr.json" in settings.artifacts:
        rows["MTRR registers"] = _expected_mtrrs(resolved, settings)
    if settings is not None and "pcat.json" in settings.artifacts:
        rows["PCAT items"] = _expected_pcat(resolved)
    return rows


def _expected_mtrrs(resolved: ResolvedLayout, settings: EmitSettings) -> RowValue:
    from vmlayout.firmware.memtype import Loader, mtrr_state

    try:
        state = mtrr_state(
            resolved, Loader(settings.mtrr_loader), settings.mtrr_policy, settings.mtrr_count
        )
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
        else:
            key, reg = item
            parts.append(f"{key:#x}={reg:#x}" if isinstance(reg, int) else f"{key}: {reg}")
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
                failure = f"undecodable: {error.message}"
        if observed is not None:
            for row in observed:
                if row not in expected and view.covers(row):
                    extra_rows[row] = ()
        for row in [*expected, *extra_rows]:
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
        shown = f"{len(want)} values" if row in REGISTER_ROWS else describe(want)
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
    def value(v: RowValue) -> list[Any]:
        return [[x.start, x.end] if isinstance(x, MemoryRange) else [x[0], x[1]] for x in v]

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
    try:
        data = json.loads(artifacts.files["layout.json"])
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
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise VmLayoutError("invalid_artifact", f"layout.json: malformed ({error})") from None
    return rows


LAYOUT_VIEW = View(
    name="layout.json",
    files=("layout.json",),
    covers=lambda row: row not in REGISTER_ROWS,
    read=read_layout_json,
)


def _is_chipset(row: str) -> bool:
    return row in ("chipset low", "chipset high", "chipset other")


def _is_ram(row: str) -> bool:
    return row == "RAM" or row.startswith("RAM node ")


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
    from vmlayout.acpi.decode import decode_table, require_checksum

    table = decode_table(artifacts.files[name], name)
    require_checksum(table, name)
    return table


def read_dsdt(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.acpi.decode import chipset_from_dsdt

    _, ranges = chipset_from_dsdt(artifacts.files["DSDT.aml"])
    return _split_chipset(ranges)


def read_srat(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.acpi.decode import decode_srat

    memory, _ = decode_srat(_table(artifacts, "SRAT.aml"))
    return ram_rows_by_node([(m.range, m.vnode) for m in memory])


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
    return {f"ECAM {n}": merge_ranges([e.ecam]) for n, e in zip(names, entries, strict=True)}


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
    return rows


def read_e820(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.firmware.e820 import decode_e820, e820_ranges

    return {"RAM": merge_ranges(e820_ranges(decode_e820(artifacts.files["e820.bin"])))}


def _json(artifacts: ArtifactSet, name: str) -> Any:
    try:
        return json.loads(artifacts.files[name])
    except (ValueError, UnicodeDecodeError) as error:
        raise VmLayoutError("invalid_artifact", f"{name}: not JSON ({error})") from None


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
    return {"PCAT items": _pairs(_json(artifacts, "pcat.json"), "items", "pcat.json")}


def read_uefi(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.firmware.uefi import decode_config_blob

    blob = decode_config_blob(artifacts.files["uefi-config.bin"])
    if blob.mmio_ranges is None:
        raise VmLayoutError("invalid_artifact", "uefi-config.bin: no MmioRanges structure")
    return {"RAM": merge_ranges(blob.memory_map), **_split_chipset(blob.mmio_ranges)}


def read_linux_dtb(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.devicetree.fdt import read_fdt
    from vmlayout.devicetree.linux import chipset_from_linux_tree, ram_from_linux_tree

    root = read_fdt(artifacts.files["linux.dtb"])
    chipset = chipset_from_linux_tree(root)
    return {
        "RAM": merge_ranges(ram_from_linux_tree(root)),
        **_split_chipset((chipset.low, chipset.high)),
    }


def read_paravisor_dtb(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.devicetree.paravisor import chipset_from_host_tree, parse_host_tree

    tree = parse_host_tree(artifacts.files["paravisor.dtb"])
    chipset = chipset_from_host_tree(tree)
    return {
        **ram_rows_by_node([(e.range, e.vnode) for e in tree.memory]),
        **_split_chipset((chipset.low, chipset.high)),
        "chipset vtl2": merge_ranges([chipset.vtl2]),
    }


def read_igvm_mmio(artifacts: ArtifactSet, resolved: ResolvedLayout) -> dict[str, RowValue]:
    from vmlayout.devicetree.paravisor import decode_mmio_ranges

    return _split_chipset(decode_mmio_ranges(artifacts.files["igvm-mmio-ranges.bin"]))


def all_views() -> tuple[View, ...]:
    """Every view, in column order; `compare` keeps those whose files the set records."""
    return (
        LAYOUT_VIEW,
        View("DSDT", ("DSDT.aml",), _is_chipset, read_dsdt),
        View("SSDT", ("SSDT.aml",), _is_rc, read_ssdt),
        View("SRAT", ("SRAT.aml",), _is_ram, read_srat),
        View("MCFG", ("MCFG.aml",), lambda row: row.startswith("ECAM "), read_mcfg),
        View("E820", ("e820.bin",), lambda row: row == "RAM", read_e820),
        View(
            "MTRR",
            ("mtrr.json",),
            lambda row: row == "MTRR registers",
            read_mtrr,
            findings=mtrr_findings,
        ),
        View("PCAT", ("pcat.json",), lambda row: row == "PCAT items", read_pcat),
        View(
            "UEFI",
            ("uefi-config.bin",),
            lambda row: row == "RAM" or _is_chipset(row),
            read_uefi,
        ),
        View(
            "DT linux",
            ("linux.dtb",),
            lambda row: row == "RAM" or _is_chipset(row),
            read_linux_dtb,
        ),
        View(
            "DT paravisor",
            ("paravisor.dtb",),
            lambda row: _is_ram(row) or row.startswith("chipset "),
            read_paravisor_dtb,
        ),
        View("IGVM", ("igvm-mmio-ranges.bin",), _is_chipset, read_igvm_mmio),
    )


def inspect_directory(directory: Path, fmt: str, strict: bool) -> tuple[str, int]:
    """`vmlayout inspect DIR` on an `emit all` directory: exit status 1 on any
    disagreement (and, with `strict`, on any memory-type finding)."""
    from vmlayout.policy import resolve

    artifacts = load_artifact_set(directory)
    report = compare(artifacts, resolve(artifacts.config), all_views(), strict)
    status = 0 if report.consistent else 1
    if fmt == "json":
        return json.dumps(report_to_json(report)) + "\n", status
    return render_table(report), status
