"""`vmlayout inspect` for PCAT values (`emit pcat --format json` or `emit all`'s
pcat.json): the config items by name and the CMOS image's memory fields and checksums.

A CMOS image whose stored checksums do not match its bytes is what makes the BIOS
reset the CMOS to its own defaults at POST, so it is reported with exit status 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vmlayout.errors import VmLayoutError
from vmlayout.inspect.binaries import json_document, sniffed_object


def sniff(path: Path, data: bytes | None) -> bool:
    doc = sniffed_object(data, path.name)
    return doc is not None and "items" in doc and isinstance(doc.get("cmos"), str)


def _items(doc: dict[str, Any]) -> dict[int, int]:
    """Items as {id: value}: `emit pcat` writes {"0x00": v}, pcat.json [[id, v], ...]."""
    raw = doc["items"]
    try:
        pairs = raw.items() if isinstance(raw, dict) else raw
        return {int(str(k), 0): int(v) for k, v in pairs}
    except (TypeError, ValueError):
        raise VmLayoutError("invalid_artifact", "pcat: items are not (id, value) pairs") from None


def inspect(path: Path, data: bytes | None, fmt: str) -> tuple[str, int]:
    from vmlayout.firmware.pcat import PcatItem, decode_cmos

    assert data is not None
    doc = json_document(data, path.name)
    items = _items(doc)
    try:
        image = bytes.fromhex(doc["cmos"])
    except ValueError:
        raise VmLayoutError("invalid_artifact", "pcat: cmos is not a hex string") from None
    cmos = decode_cmos(image)
    status = 0 if cmos["checksum_ok"] and cmos["extended_checksum_ok"] else 1
    names = {int(i): i.name for i in PcatItem}
    if fmt == "json":
        out = {
            "kind": "pcat",
            "items": {names.get(k, f"{k:#04x}"): v for k, v in items.items()},
            "cmos": cmos,
        }
        return json.dumps(out) + "\n", status
    lines = [f"{path.name}: PCAT BIOS values"]
    lines += [f"  {k:#04x}  {names.get(k, '?'):<28}  {v:#x} ({v})" for k, v in items.items()]
    lines.append(
        f"  CMOS: base memory {cmos['base_memory_kib']} KiB, extended memory "
        f"{cmos['extended_memory_mib']} MiB"
    )
    for key, label in (("checksum", "checksum 0x2E"), ("extended_checksum", "checksum 0x3E")):
        verdict = "ok" if cmos[f"{key}_ok"] else "WRONG: the BIOS would reset the CMOS"
        lines.append(f"  CMOS {label}: {cmos[key]:#06x} {verdict}")
    return "\n".join(lines) + "\n", status
