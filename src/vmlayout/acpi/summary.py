"""What `inspect` shows of a table: the decoded fields a reader checks against the
layout and the platform options, as JSON-ready values (each table kind's `summarize`)
and as text lines."""

from __future__ import annotations

from typing import Any

from vmlayout.acpi.sdt import Table
from vmlayout.acpi.tables import TABLES_BY_SIGNATURE
from vmlayout.ranges import format_address, format_size

#: The text of each SLIT distance byte: a 64 MiB SLIT has 64 Mi of them to print.
_BYTE_TEXT = tuple(str(value) for value in range(256))


def _span(start: int, end: int) -> str:
    return f"{format_address(start)} - {format_address(end)} ({format_size(end - start)})"


def describe_platform(table: Table) -> dict[str, Any]:
    """The decoded content of one table, keyed by what it describes (its kind's
    `summarize`; nothing for a signature vmlayout does not write)."""
    kind = TABLES_BY_SIGNATURE.get(table.signature.encode("ascii"))
    if kind is None or kind.summarize is None:
        return {}
    return kind.summarize(table)


def platform_lines(doc: dict[str, Any]) -> list[str]:
    """Indented text lines for a `describe_platform` result."""
    lines: list[str] = []
    for e in doc.get("entries", []):
        fields = ", ".join(
            f"{k} {v:#x}" if k in ("base", "gicr_base", "mpidr") else f"{k} {v}"
            for k, v in e.items()
            if k != "type"
        )
        lines.append(f"  {e['type']}: {fields}")
    for i, row in enumerate(doc.get("distances", [])):
        lines.append(f"  node {i} distances: {' '.join(map(_BYTE_TEXT.__getitem__, row))}")
    for w in doc.get("cxl", []):
        if w["chbcr"]:
            lines.append(f"  CXL host bridge {w['uid']} CHBCR: {_span(*w['chbcr'])}")
        if w["hdm"]:
            lines.append(f"  CXL host bridge {w['uid']} HDM window: {_span(*w['hdm'])}")
    for u in doc.get("iommus", []):
        buses = f" buses {u['buses'][0]}-{u['buses'][1]}" if u.get("buses") else ""
        ioapic = ", IO-APIC" if u["ioapic"] else ""
        lines.append(
            f"  IOMMU segment {u['segment']}{buses}: registers at "
            f"{format_address(u['base'])}{ioapic}"
        )
    for n in doc.get("nodes", []):
        extra = ""
        if n["kind"] == "smmuv3":
            extra = f" base {format_address(n['base'])}, SPIs {n['gsivs'][0]}/{n['gsivs'][1]}"
        elif n["kind"] == "root_complex":
            extra = f" segment {n['segment']}"
        targets = "".join(f" -> node {m[3]:#x} (+{m[2]:#x})" for m in n["mappings"])
        lines.append(f"  {n['kind']} {n['identifier']} at {n['offset']:#x}:{extra}{targets}")
    if "timers" in doc:
        t = doc["timers"]
        lines.append(
            f"  virtual EL1 timer GSIV {t['virtual_el1_gsiv']} flags {t['virtual_el1_flags']:#x}"
        )
    for p in doc.get("processors", []):
        lines.append(
            f"  processor node at {p['offset']:#x}: flags {p['flags']:#x}, parent "
            f"{p['parent']:#x}, ACPI id {p['acpi_processor_id']}"
        )
    return lines
