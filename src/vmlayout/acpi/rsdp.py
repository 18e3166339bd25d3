"""The root of the tables: the RSDP (ACPI 2.0+, pointing at the XSDT only) and the
XSDT listing every other table but the DSDT (which the FADT points at)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vmlayout.acpi.sdt import Table, bad, build_table, checksum, expect_signature
from vmlayout.binfmt import Struct

RSDP_SIGNATURE = b"RSD PTR "
#: The ACPI 1.0 part the first checksum covers, then the 2.0 extension.
RSDP_V1 = Struct(
    "RSDP 1.0",
    (
        ("signature", "8s"),
        ("checksum", "B"),
        ("oem_id", "6s"),
        ("revision", "B"),
        ("rsdt_address", "I"),
    ),
)
RSDP = Struct(
    "RSDP",
    (
        ("v1", RSDP_V1),
        ("length", "I"),
        ("xsdt_address", "Q"),
        ("extended_checksum", "B"),
        ("reserved", "3s"),
    ),
)
RSDP_OEM_ID = b"HVLITE"
RSDP_REVISION = 2
XSDT_ENTRY = Struct("XSDT entry", (("address", "Q"),))


def build_rsdp(xsdt_gpa: int) -> bytes:
    """Both checksums: the 1.0 one over the first 20 bytes, the extended one over all."""
    v1: dict[str, Any] = {
        "signature": RSDP_SIGNATURE,
        "oem_id": RSDP_OEM_ID,
        "revision": RSDP_REVISION,
        "rsdt_address": 0,
    }
    v1["checksum"] = checksum(RSDP_V1.pack(checksum=0, **v1))
    fields: dict[str, Any] = {"v1": v1, "length": RSDP.size, "xsdt_address": xsdt_gpa}
    return RSDP.pack(extended_checksum=checksum(RSDP.pack(extended_checksum=0, **fields)), **fields)


@dataclass(frozen=True, slots=True)
class Rsdp:
    revision: int
    oem_id: bytes
    xsdt_address: int
    checksum_ok: bool


def decode_rsdp(data: bytes) -> Rsdp:
    if len(data) != RSDP.size:
        raise bad("RSDP", f"{len(data)} bytes, expected {RSDP.size}")
    fields = RSDP.unpack(data)
    v1 = fields["v1"]
    if v1["signature"] != RSDP_SIGNATURE:
        raise bad("RSDP", "signature is not 'RSD PTR '")
    ok = checksum(data[: RSDP_V1.size]) == 0 and checksum(data) == 0
    return Rsdp(v1["revision"], v1["oem_id"], fields["xsdt_address"], ok)


def build_xsdt(table_gpas: list[int]) -> bytes:
    return build_table(b"XSDT", 1, b"".join(XSDT_ENTRY.pack(address=g) for g in table_gpas))


def decode_xsdt(table: Table) -> list[int]:
    """The table addresses, in order."""
    expect_signature(table, "XSDT")
    body = table.body
    if len(body) % XSDT_ENTRY.size:
        raise bad("XSDT", f"body of {len(body)} bytes is not a list of 8-byte addresses")
    return [
        XSDT_ENTRY.unpack(body, offset, "XSDT")["address"]
        for offset in range(0, len(body), XSDT_ENTRY.size)
    ]


def summarize_xsdt(table: Table) -> dict[str, Any]:
    return {"tables": decode_xsdt(table)}
