"""CEDT, the CXL Early Discovery Table: per CXL host bridge its component registers
(CHBS, the resolved CHBCR window) and one fixed memory window (CFMWS, the resolved HDM
window) interleaved over that bridge alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmlayout.acpi.tables import HeaderFlavour, build_table
from vmlayout.binfmt import Struct
from vmlayout.errors import VmLayoutError
from vmlayout.ranges import MemoryRange

CEDT_FLAVOUR = HeaderFlavour(b"MSFTVM", b"CEDT01\0\0", 1, b"MSFT", 0x01000000)
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
CHBCR_SIZE = 0x1_0000
HPA_ALIGNMENT = 0x1000_0000  # 256 MiB
CHBS_CXL_2_0 = 1  # host bridge of CXL 2.0+ root ports: CHBCR holds component registers


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
        body += CHBS.pack(
            type=0,
            reserved=0,
            length=CHBS.size,
            uid=bridge.uid,
            cxl_version=CHBS_CXL_2_0,
            reserved2=0,
            base=bridge.chbcr.start,
            size=bridge.chbcr.size,
        )
        body += CFMWS.pack(
            type=1,
            reserved=0,
            length=CFMWS.size + 4,
            reserved2=0,
            base=bridge.hdm.start,
            size=bridge.hdm.size,
            eniw=0,
            interleave_arithmetic=0,
            reserved3=0,
            hbig=0,
            window_restrictions=window_restrictions,
            qtg_id=0,
        )
        body += bridge.uid.to_bytes(4, "little")
    return build_table(b"CEDT", 2, body, CEDT_FLAVOUR)
