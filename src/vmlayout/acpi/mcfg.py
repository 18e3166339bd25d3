"""The MCFG: one ECAM allocation per PCIe root complex, its base the address bus 0
would have (the bus-0 base rule), so bus `b` sits at base + (b << 20)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from vmlayout.acpi.sdt import Table, bad, build_table, checked_range, expect_signature
from vmlayout.binfmt import Packed, Struct
from vmlayout.ranges import MemoryRange

MCFG_BODY = Struct("MCFG body", (("reserved", "8s"),))
MCFG_ENTRY = Struct(
    "MCFG allocation",
    (
        ("base", "Q"),
        ("segment", "H"),
        ("start_bus", "B"),
        ("end_bus", "B"),
        ("reserved", "I"),
    ),
)
MCFG_REVISION = 1
ECAM_BUS_SHIFT = 20


@dataclass(frozen=True, slots=True)
class McfgEntry(Packed):
    LAYOUT: ClassVar[Struct] = MCFG_ENTRY

    base: int
    segment: int
    start_bus: int
    end_bus: int

    @property
    def ecam(self) -> MemoryRange:
        """The ECAM bytes of the listed buses (the bus-0 base rule undone)."""
        if self.end_bus < self.start_bus:
            raise bad("MCFG", f"entry for segment {self.segment}: end bus below start bus")
        start = self.base + (self.start_bus << ECAM_BUS_SHIFT)
        size = (self.end_bus - self.start_bus + 1) << ECAM_BUS_SHIFT
        return checked_range(start, size, f"MCFG entry for segment {self.segment}")


def build_mcfg(entries: list[tuple[int, int, int, int]]) -> bytes:
    """(bus-0 ECAM base, segment, start bus, end bus) per root complex."""
    body = MCFG_BODY.pack() + b"".join(McfgEntry(*e).pack() for e in entries)
    return build_table(b"MCFG", MCFG_REVISION, body)


def decode_mcfg(table: Table) -> list[McfgEntry]:
    expect_signature(table, "MCFG")
    body = table.body
    if len(body) < MCFG_BODY.size or (len(body) - MCFG_BODY.size) % MCFG_ENTRY.size:
        raise bad("MCFG", f"body of {len(body)} bytes is not 8 + 16·n")
    return [
        McfgEntry.unpack(body, offset, "MCFG")
        for offset in range(MCFG_BODY.size, len(body), MCFG_ENTRY.size)
    ]


def summarize_mcfg(table: Table) -> dict[str, Any]:
    return {
        "ecam": [
            {
                "base": e.base,
                "segment": e.segment,
                "start_bus": e.start_bus,
                "end_bus": e.end_bus,
                "start": e.ecam.start,
                "end": e.ecam.end,
            }
            for e in decode_mcfg(table)
        ]
    }
