"""CEDT, the CXL Early Discovery Table: per CXL host bridge its component registers
(CHBS, the resolved CHBCR window) and one fixed memory window (CFMWS, the resolved HDM
window) interleaved over that bridge alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from vmlayout.acpi.sdt import (
    CEDT_FLAVOUR,
    ENTRY_HEADER_U16,
    Table,
    bad,
    build_table,
    checked_range,
    entries,
    expect_signature,
    require_length,
    typed_header,
)
from vmlayout.binfmt import Packed, Struct
from vmlayout.errors import VmLayoutError
from vmlayout.ranges import MemoryRange

CEDT_REVISION = 2
CHBS = Struct(
    "CEDT CHBS",
    (
        ("type", "B"),
        ("reserved", "B"),
        ("length", "H"),
        ("uid", "I"),
        ("cxl_version", "I"),
        ("reserved2", "I"),
        ("base", "Q"),
        ("size", "Q"),
    ),
)
CFMWS = Struct(
    "CEDT CFMWS",
    (
        ("type", "B"),
        ("reserved", "B"),
        ("length", "H"),
        ("reserved2", "I"),
        ("base", "Q"),
        ("size", "Q"),
        ("eniw", "B"),
        ("interleave_arithmetic", "B"),
        ("reserved3", "H"),
        ("hbig", "I"),
        ("window_restrictions", "H"),
        ("qtg_id", "H"),
    ),
)
CFMWS_TARGET = Struct("CFMWS interleave target", (("uid", "I"),))
CHBS_TYPE, CFMWS_TYPE = 0, 1
CHBCR_SIZE = 0x1_0000
HPA_ALIGNMENT = 0x1000_0000  # 256 MiB
CHBS_CXL_2_0 = 1  # host bridge of CXL 2.0+ root ports: CHBCR holds component registers
#: Encoded interleave ways (ENIW) 0..7 are 2^ENIW ways; vmlayout writes and reads 1-way.
MAX_POWER_OF_TWO_ENIW = 8


class WindowRestrictions(enum.IntFlag):
    NONE = 0
    DEVICE_COHERENT = 1 << 0
    HOST_ONLY_COHERENT = 1 << 1
    VOLATILE = 1 << 2
    PERSISTENT = 1 << 3
    FIXED_DEVICE_CONFIGURATION = 1 << 4


@dataclass(frozen=True, slots=True)
class Chbs(Packed):
    LAYOUT: ClassVar[Struct] = CHBS
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(CHBS_TYPE, CHBS)

    uid: int
    base: int
    size: int
    cxl_version: int = CHBS_CXL_2_0


@dataclass(frozen=True, slots=True)
class CfmwsHeader(Packed):
    """The fixed part of a CFMWS; `length` covers the interleave target list after it."""

    LAYOUT: ClassVar[Struct] = CFMWS
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = (("type", CFMWS_TYPE),)

    length: int
    base: int
    size: int
    window_restrictions: WindowRestrictions = WindowRestrictions.NONE
    eniw: int = 0
    interleave_arithmetic: int = 0
    hbig: int = 0
    qtg_id: int = 0


@dataclass(frozen=True, slots=True)
class CxlHostBridge:
    uid: int
    hdm: MemoryRange
    chbcr: MemoryRange


def build_cedt(bridges: list[CxlHostBridge], window_restrictions: int = 0) -> bytes:
    """CHBS then CFMWS (one-way interleave, 256-byte granularity, target list = the
    bridge's UID) per bridge. The windows must be what CXL requires of them; the resolver
    guarantees it, a violation here is a bug."""
    body = b""
    for bridge in bridges:
        what = f"CXL host bridge {bridge.uid}"
        if (
            bridge.hdm.is_empty()
            or bridge.hdm.start % HPA_ALIGNMENT
            or bridge.hdm.size % HPA_ALIGNMENT
        ):
            raise VmLayoutError(
                "acpi_error", f"{what}: HDM window {bridge.hdm} is not 256 MiB aligned"
            )
        if bridge.chbcr.size != CHBCR_SIZE or bridge.chbcr.start % CHBCR_SIZE:
            raise VmLayoutError(
                "acpi_error", f"{what}: CHBCR {bridge.chbcr} is not one aligned 64 KiB"
            )
        body += Chbs(bridge.uid, bridge.chbcr.start, bridge.chbcr.size).pack()
        restrictions = WindowRestrictions(window_restrictions)
        cfmws = CfmwsHeader(
            CFMWS.size + CFMWS_TARGET.size, bridge.hdm.start, bridge.hdm.size, restrictions
        )
        body += cfmws.pack() + CFMWS_TARGET.pack(uid=bridge.uid)
    return build_table(b"CEDT", CEDT_REVISION, body, CEDT_FLAVOUR)


@dataclass(frozen=True, slots=True)
class CxlWindows:
    uid: int
    chbcr: MemoryRange | None = None
    hdm: MemoryRange | None = None


def decode_cedt(table: Table) -> list[CxlWindows]:
    """Per host bridge UID, its CHBCR (from CHBS) and fixed memory window (from the
    CFMWS whose target list names it), in UID order of first appearance."""
    expect_signature(table, "CEDT")
    body = table.body
    by_uid: dict[int, CxlWindows] = {}
    for entry in entries(body, 0, "CEDT", ENTRY_HEADER_U16):
        if entry.type == CHBS_TYPE:
            require_length(entry, CHBS.size, "CEDT", "CHBS")
            chbs = Chbs.unpack(body, entry.offset, "CEDT")
            old = by_uid.get(chbs.uid, CxlWindows(chbs.uid))
            chbcr = checked_range(chbs.base, chbs.size, "CEDT CHBS")
            by_uid[chbs.uid] = CxlWindows(chbs.uid, chbcr, old.hdm)
        elif entry.type == CFMWS_TYPE:
            require_length(entry, CFMWS.size + CFMWS_TARGET.size, "CEDT", "CFMWS")
            cfmws = CfmwsHeader.unpack(body, entry.offset, "CEDT")
            hdm = checked_range(cfmws.base, cfmws.size, "CEDT CFMWS")
            ways = 1 << cfmws.eniw if cfmws.eniw < MAX_POWER_OF_TWO_ENIW else 0
            if entry.length < CFMWS.size + CFMWS_TARGET.size * ways or ways != 1:
                raise bad(
                    "CEDT", f"CFMWS at {entry.table_offset:#x}: only 1-way windows are decoded"
                )
            uid = CFMWS_TARGET.unpack(body, entry.offset + CFMWS.size, "CEDT")["uid"]
            old = by_uid.get(uid, CxlWindows(uid))
            by_uid[uid] = CxlWindows(uid, old.chbcr, hdm)
    return list(by_uid.values())


def summarize_cedt(table: Table) -> dict[str, Any]:
    return {
        "cxl": [
            {
                "uid": w.uid,
                "chbcr": None if w.chbcr is None else [w.chbcr.start, w.chbcr.end],
                "hdm": None if w.hdm is None else [w.hdm.start, w.hdm.end],
            }
            for w in decode_cedt(table)
        ]
    }
