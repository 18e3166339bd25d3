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

from vmlayout.artifacts import ArtifactSet, load_artifact_set
from vmlayout.errors import VmLayoutError
from vmlayout.policy import ResolvedLayout
from vmlayout.ranges import MemoryRange, format_address

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


def expected_rows(resolved: ResolvedLayout) -> dict[str, RowValue]:
    """What every view must agree on, from the re-resolved layout."""
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
    return rows


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
            msr, reg = item
            parts.append(f"{msr:#x}={reg:#x}")
    return ", ".join(parts)


def compare(
    artifacts: ArtifactSet, resolved: ResolvedLayout, views: tuple[View, ...], strict: bool
) -> CrossCheckReport:
    expected = expected_rows(resolved)
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
        line = [row, describe(report.expected.get(row, ()))]
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
            rows[f"ECAM {rc['name']}"] = merge_ranges(
                [_pair_range(rc["ecam"], f"pcie_root_complexes[{i}].ecam")]
            )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise VmLayoutError("invalid_artifact", f"layout.json: malformed ({error})") from None
    return rows


LAYOUT_VIEW = View(
    name="layout.json",
    files=("layout.json",),
    covers=lambda row: True,
    read=read_layout_json,
)


def all_views() -> tuple[View, ...]:
    """Every view, in column order; `compare` keeps those whose files the set records."""
    return (LAYOUT_VIEW,)


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
