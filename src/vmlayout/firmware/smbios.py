"""A minimal SMBIOS 3.0 blob (entry point + BIOS Information + End-of-Table) for a Linux
direct boot.

Not part of the reference: a direct-booted Linux gets no SMBIOS from it, so
`dmi_get_bios_year()` is unknown and Linux ignores an MCFG entry above 4 GiB ("MCFG
region … is above 4GB, ignored"), which vmlayout's default ECAM is. A BIOS Information
structure with a release date of 2010 or later makes Linux use that ECAM. The blob is
laid out at one address, the table right after the 24-byte entry point; the default is
the start of the legacy scan area Linux searches for the `_SM3_` anchor
([0xF0000, 1 MiB), reserved in vmlayout's E820).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vmlayout.binfmt import Struct
from vmlayout.errors import VmLayoutError
from vmlayout.platform import BIOS_DATE, SMBIOS_DEFAULT_BIOS_DATE, SMBIOS_SCAN_AREA
from vmlayout.ranges import format_address

#: Where Linux (without EFI) scans for the entry point, 16-byte aligned; the year from
#: which Linux trusts an MCFG entry above 4 GiB (declared with the platform section).
SCAN_AREA = SMBIOS_SCAN_AREA
DEFAULT_ADDRESS = SCAN_AREA[0]
DEFAULT_BIOS_DATE = SMBIOS_DEFAULT_BIOS_DATE

ENTRY_POINT = Struct(
    "SMBIOS 3.0 entry point",
    (
        ("anchor", "5s"),
        ("checksum", "B"),
        ("length", "B"),
        ("major", "B"),
        ("minor", "B"),
        ("docrev", "B"),
        ("revision", "B"),
        ("reserved", "B"),
        ("table_max_size", "I"),
        ("table_address", "Q"),
    ),
)
#: SMBIOS 2.0 layout of Type 0 (BIOS Information), enough for the release date.
BIOS_INFORMATION = Struct(
    "SMBIOS BIOS Information",
    (
        ("type", "B"),
        ("length", "B"),
        ("handle", "H"),
        ("vendor", "B"),
        ("version", "B"),
        ("segment", "H"),
        ("release_date", "B"),
        ("rom_size", "B"),
        ("characteristics", "Q"),
    ),
)
END_OF_TABLE = Struct("SMBIOS End-of-Table", (("type", "B"), ("length", "B"), ("handle", "H")))
#: Characteristics bit 3: "BIOS characteristics not supported".
CHARACTERISTICS_NOT_SUPPORTED = 1 << 3


def build_smbios(address: int = DEFAULT_ADDRESS, bios_date: str = DEFAULT_BIOS_DATE) -> bytes:
    """Entry point at `address`, structure table right after it."""
    if not BIOS_DATE.fullmatch(bios_date):
        raise VmLayoutError("invalid_argument", f"--bios-date: {bios_date!r} is not MM/DD/YYYY")
    if address % 16 or not 0 <= address < 1 << 64:
        raise VmLayoutError(
            "invalid_argument", f"--smbios-address: {address:#x} is not 16-byte aligned"
        )
    bios = BIOS_INFORMATION.pack(
        type=0,
        length=BIOS_INFORMATION.size,
        handle=0,
        vendor=1,
        version=2,
        segment=0xF000,
        release_date=3,
        rom_size=0,
        characteristics=CHARACTERISTICS_NOT_SUPPORTED,
    )
    strings = b"vmlayout\0direct boot\0" + bios_date.encode() + b"\0\0"
    end = END_OF_TABLE.pack(type=127, length=END_OF_TABLE.size, handle=1) + b"\0\0"
    table = bios + strings + end
    fields = {
        "anchor": b"_SM3_",
        "checksum": 0,
        "length": ENTRY_POINT.size,
        "major": 3,
        "minor": 0,
        "docrev": 0,
        "revision": 1,
        "reserved": 0,
        "table_max_size": len(table),
        "table_address": address + ENTRY_POINT.size,
    }
    fields["checksum"] = -sum(ENTRY_POINT.pack(**fields)) & 0xFF  # bytes sum to 0
    return ENTRY_POINT.pack(**fields) + table


def decode_smbios(blob: bytes) -> tuple[int, str]:
    """(table address, BIOS release date) of a blob `build_smbios` wrote, checked: the
    anchor, the entry point's checksum, and a BIOS Information structure whose third
    string is the date."""
    what = "smbios.bin"
    if len(blob) < ENTRY_POINT.size + BIOS_INFORMATION.size or blob[:5] != b"_SM3_":
        raise VmLayoutError("invalid_artifact", f"{what}: no SMBIOS 3.0 entry point")
    entry = ENTRY_POINT.unpack(blob)
    if sum(blob[: ENTRY_POINT.size]) & 0xFF:
        raise VmLayoutError("invalid_artifact", f"{what}: entry point checksum is wrong")
    bios = BIOS_INFORMATION.unpack(blob, ENTRY_POINT.size)
    if bios["type"] != 0 or bios["length"] != BIOS_INFORMATION.size:
        raise VmLayoutError("invalid_artifact", f"{what}: the table does not start with Type 0")
    start = ENTRY_POINT.size + BIOS_INFORMATION.size
    strings = blob[start : start + 256].split(b"\0")
    index = bios["release_date"]
    if not 1 <= index <= len(strings) or not BIOS_DATE.fullmatch(
        date := strings[index - 1].decode("ascii", "replace")
    ):
        raise VmLayoutError("invalid_artifact", f"{what}: no BIOS release date")
    return int(entry["table_address"]), date


# --- as a view of `emit all` (vmlayout.artifacts.VIEWS) ----------------------------------


def smbios_of(resolved: Any) -> bytes | None:
    """The blob of the VM `resolved` describes: one only when its platform gives a BIOS
    date (the reference's direct boot has no SMBIOS)."""
    date = resolved.config.platform.x86.bios_date
    return build_smbios(DEFAULT_ADDRESS, date) if date else None


def sniff(path: Path, data: bytes | None) -> bool:
    return data is not None and data[:5] == b"_SM3_"


def inspect(path: Path, data: bytes | None, fmt: str) -> tuple[str, int]:
    assert data is not None
    table_address, date = decode_smbios(data)
    if fmt == "json":
        doc = {"kind": "smbios", "table_address": table_address, "bios_date": date}
        return json.dumps(doc) + "\n", 0
    return (
        f"{path.name}: SMBIOS 3.0, table at {format_address(table_address)}, "
        f"BIOS release date {date} (Linux trusts an MCFG entry above 4 GiB from 2010)\n",
        0,
    )
