"""`vmlayout inspect` for ACPI tables: one table file, or a directory of them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vmlayout.acpi.decode import decode_rsdp, decode_table
from vmlayout.acpi.rsdp import RSDP_SIGNATURE
from vmlayout.acpi.sdt import OEM_IDS
from vmlayout.acpi.summary import describe_platform, platform_lines
from vmlayout.acpi.tables import TABLES, kind_of
from vmlayout.errors import VmLayoutError
from vmlayout.inputs import read_bytes
from vmlayout.ranges import format_address, format_size


def sniff(path: Path, data: bytes | None) -> bool:
    if data is None:
        return any((path / kind.file).is_file() for kind in TABLES)
    return kind_of(data) is not None


def describe_table(name: str, data: bytes) -> dict[str, Any]:
    """Header fields, checksum verdict and the layout a table carries."""
    if data.startswith(RSDP_SIGNATURE):
        rsdp = decode_rsdp(data)
        return {
            "file": name,
            "signature": "RSD PTR",
            "checksum_ok": rsdp.checksum_ok,
            "xsdt_address": rsdp.xsdt_address,
        }
    table = decode_table(data, name)
    h = table.header
    out: dict[str, Any] = {
        "file": name,
        "signature": table.signature,
        "length": h["length"],
        "revision": h["revision"],
        "checksum": h["checksum"],
        "checksum_ok": table.checksum_ok,
        "oem_id": h["oem_id"].decode("latin-1").rstrip("\0"),
        "oem_table_id": h["oem_table_id"].decode("latin-1").rstrip("\0"),
        "creator_id": h["creator_id"].decode("latin-1"),
        "origin": "vmlayout" if h["oem_id"] in OEM_IDS else "foreign",
    }
    try:
        out.update(describe_platform(table))
    except VmLayoutError as error:
        if out["origin"] == "vmlayout":
            raise
        # Another VMM's table: its header and checksum decoded, its body is not laid
        # out as vmlayout writes it. Say so; it is foreign, not undecodable.
        out["note"] = f"foreign table: its body is not vmlayout's ({error.message})"
    return out


def _text(doc: dict[str, Any]) -> list[str]:
    if doc["signature"] == "RSD PTR":
        verdict = "ok" if doc["checksum_ok"] else "BAD"
        return [f"{doc['file']}: RSDP, checksums {verdict}, XSDT at {doc['xsdt_address']:#x}"]
    verdict = "ok" if doc["checksum_ok"] else "BAD"
    foreign = ", foreign (not written by vmlayout)" if doc.get("origin") == "foreign" else ""
    lines = [
        f"{doc['file']}: {doc['signature']} rev {doc['revision']}, {doc['length']} bytes, "
        f"checksum {doc['checksum']:#04x} {verdict}, {doc['oem_id']}/{doc['oem_table_id']}"
        f"{foreign}"
    ]
    if "note" in doc:
        lines.append(f"  {doc['note']}")

    def span(start: int, end: int) -> str:
        return f"{format_address(start)} - {format_address(end)} ({format_size(end - start)})"

    for m in doc.get("memory", []):
        lines.append(f"  memory node {m['vnode']}: {span(m['start'], m['end'])}")
    for e in doc.get("ecam", []):
        lines.append(
            f"  ECAM segment {e['segment']} buses {e['start_bus']}-{e['end_bus']} base "
            f"{format_address(e['base'])}: {span(e['start'], e['end'])}"
        )
    for d in doc.get("devices", []):
        for start, end in d["memory"]:
            lines.append(f"  {d['path']} _CRS memory {span(start, end)}")
    return lines + platform_lines(doc)


def inspect(path: Path, data: bytes | None, fmt: str) -> tuple[str, int]:
    if data is None:
        docs = []
        for file in sorted(path.iterdir()):
            if file.suffix in (".aml", ".bin") and file.is_file():
                content = read_bytes(file, "invalid_input")
                if sniff(file, content):
                    docs.append(describe_table(file.name, content))
        if not docs:
            raise VmLayoutError("unrecognised_input", f"{path}: no ACPI tables")
    else:
        docs = [describe_table(path.name, data)]
    status = 0 if all(d["checksum_ok"] for d in docs) else 1
    if fmt == "json":
        return json.dumps({"kind": "acpi", "tables": docs}) + "\n", status
    return "\n".join(line for d in docs for line in _text(d)) + "\n", status
