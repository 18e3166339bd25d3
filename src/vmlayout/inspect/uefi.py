"""`vmlayout inspect` for UEFI config blobs: the structures, and the layout they carry."""

from __future__ import annotations

import json
from pathlib import Path

from vmlayout.firmware.uefi import (
    UefiBlob,
    UefiStructure,
    decode_config_blob,
    has_config_blob_header,
)
from vmlayout.ranges import format_address, format_size


def sniff(path: Path, data: bytes | None) -> bool:
    return data is not None and has_config_blob_header(data)


def _summary(s: UefiStructure) -> str:
    """Scalar fields as name=value; lists (memory entries, MMIO ranges) by count, since
    their addresses are printed in full below."""
    parts = []
    for name, value in s.fields.items():
        if isinstance(value, int):
            parts.append(f"{name}={value:#x}")
        elif isinstance(value, str):
            parts.append(f"{name}={value}")
        elif isinstance(value, list):
            parts.append(f"{len(value)} {name}")
    return " ".join(parts)


def blob_to_json(blob: UefiBlob) -> dict[str, object]:
    def jsonable(value: object) -> object:
        if isinstance(value, bytes):
            return value.hex()
        if isinstance(value, dict):
            return {k: jsonable(v) for k, v in value.items()}
        if isinstance(value, list):
            return [jsonable(v) for v in value]
        return value

    return {
        "kind": "uefi-config-blob",
        "structures": [
            {
                "offset": s.offset,
                "type": s.structure_type,
                "name": s.name,
                "length": s.length,
                "fields": jsonable(s.fields),
            }
            for s in blob.structures
        ],
        "memory_map": [[r.start, r.end] for r in blob.memory_map],
        "mmio_ranges": None
        if blob.mmio_ranges is None
        else {"low": blob.mmio_ranges[0].to_pair(), "high": blob.mmio_ranges[1].to_pair()},
    }


def inspect(path: Path, data: bytes | None, fmt: str) -> tuple[str, int]:
    assert data is not None
    blob = decode_config_blob(data)
    if fmt == "json":
        return json.dumps(blob_to_json(blob)) + "\n", 0
    lines = [f"UEFI config blob, {len(data)} bytes, {len(blob.structures)} structures"]
    for s in blob.structures:
        lines.append(f"  {s.offset:#06x}  {s.name:<24} length {s.length:<4} {_summary(s)}")
    for r in blob.memory_map:
        lines.append(
            f"memory  {format_address(r.start):>22} - {format_address(r.end):<22} "
            f"{format_size(r.size)}"
        )
    if blob.mmio_ranges is not None:
        for name, r in zip(("low", "high"), blob.mmio_ranges, strict=True):
            lines.append(
                f"mmio {name:<4} {format_address(r.start):>20} - {format_address(r.end):<22} "
                f"{format_size(r.size)}"
            )
    return "\n".join(lines) + "\n", 0
