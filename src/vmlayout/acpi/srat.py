"""The SRAT: which vNUMA node (proximity domain) each RAM range and each processor
belongs to. Processors: a local APIC entry per VP whose APIC id fits 8 bits, an x2APIC
entry otherwise (x86_64), a GICC entry keyed by ACPI processor UID (aarch64)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from vmlayout.acpi.sdt import (
    Table,
    UnknownEntry,
    bad,
    build_table,
    checked_range,
    entries,
    expect_signature,
    require_length,
    typed_header,
)
from vmlayout.arch import Arch
from vmlayout.binfmt import Packed, Struct
from vmlayout.ranges import MemoryRange

SRAT_BODY = Struct("SRAT body", (("table_revision", "I"), ("reserved", "Q")))
SRAT_REVISION = 3
SRAT_TABLE_REVISION = 1


class AffinityFlags(enum.IntFlag):
    ENABLED = 1 << 0
    HOT_PLUGGABLE = 1 << 1
    NON_VOLATILE = 1 << 2


class SratEntry(Packed):
    __slots__ = ()
    TYPE: ClassVar[int]


LAPIC_AFFINITY = Struct(
    "SRAT local APIC affinity",
    (
        ("type", "B"),
        ("length", "B"),
        ("proximity_domain_low", "B"),
        ("apic_id", "B"),
        ("flags", "I"),
        ("sapic_eid", "B"),
        ("proximity_domain_high", "3s"),
        ("clock_domain", "I"),
    ),
)


@dataclass(frozen=True, slots=True)
class LocalApicAffinity(SratEntry):
    """The proximity domain is split: bits 7:0, then 31:8 in three more bytes."""

    TYPE: ClassVar[int] = 0
    LAYOUT: ClassVar[Struct] = LAPIC_AFFINITY
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, LAPIC_AFFINITY)

    apic_id: int
    proximity_domain_low: int
    proximity_domain_high: bytes = bytes(3)
    flags: AffinityFlags = AffinityFlags.ENABLED
    sapic_eid: int = 0
    clock_domain: int = 0

    @staticmethod
    def of(apic_id: int, vnode: int) -> LocalApicAffinity:
        return LocalApicAffinity(apic_id, vnode & 0xFF, (vnode >> 8).to_bytes(3, "little"))

    @property
    def proximity_domain(self) -> int:
        return self.proximity_domain_low | int.from_bytes(self.proximity_domain_high, "little") << 8

    @property
    def processor_id(self) -> int:
        return self.apic_id


MEMORY_AFFINITY = Struct(
    "SRAT memory affinity",
    (
        ("type", "B"),
        ("length", "B"),
        ("proximity_domain", "I"),
        ("reserved", "H"),
        ("base", "Q"),
        ("size", "Q"),
        ("reserved2", "I"),
        ("flags", "I"),
        ("reserved3", "Q"),
    ),
)


@dataclass(frozen=True, slots=True)
class MemoryAffinity(SratEntry):
    TYPE: ClassVar[int] = 1
    LAYOUT: ClassVar[Struct] = MEMORY_AFFINITY
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, MEMORY_AFFINITY)

    base: int
    size: int
    proximity_domain: int
    flags: AffinityFlags = AffinityFlags.ENABLED


X2APIC_AFFINITY = Struct(
    "SRAT x2APIC affinity",
    (
        ("type", "B"),
        ("length", "B"),
        ("reserved", "H"),
        ("proximity_domain", "I"),
        ("x2apic_id", "I"),
        ("flags", "I"),
        ("clock_domain", "I"),
        ("reserved2", "I"),
    ),
)


@dataclass(frozen=True, slots=True)
class X2ApicAffinity(SratEntry):
    TYPE: ClassVar[int] = 2
    LAYOUT: ClassVar[Struct] = X2APIC_AFFINITY
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, X2APIC_AFFINITY)

    x2apic_id: int
    proximity_domain: int
    flags: AffinityFlags = AffinityFlags.ENABLED
    clock_domain: int = 0

    @property
    def processor_id(self) -> int:
        return self.x2apic_id


GICC_AFFINITY = Struct(
    "SRAT GICC affinity",
    (
        ("type", "B"),
        ("length", "B"),
        ("proximity_domain", "I"),
        ("uid", "I"),
        ("flags", "I"),
        ("clock_domain", "I"),
    ),
)


@dataclass(frozen=True, slots=True)
class GiccAffinity(SratEntry):
    TYPE: ClassVar[int] = 3
    LAYOUT: ClassVar[Struct] = GICC_AFFINITY
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, GICC_AFFINITY)

    uid: int
    proximity_domain: int
    flags: AffinityFlags = AffinityFlags.ENABLED
    clock_domain: int = 0

    @property
    def processor_id(self) -> int:
        return self.uid


SRAT_ENTRY_TYPES: dict[int, type[SratEntry]] = {
    cls.TYPE: cls for cls in (LocalApicAffinity, MemoryAffinity, X2ApicAffinity, GiccAffinity)
}
ProcessorAffinity = LocalApicAffinity | X2ApicAffinity | GiccAffinity


def srat_of(
    memory: list[tuple[int, int, int]], processors: list[tuple[int, int]], arch: Arch
) -> list[SratEntry]:
    """Processor entries first (in VP order), then one memory entry per RAM range."""
    out: list[SratEntry] = []
    for ident, vnode in processors:
        if arch.spec.srat_processor_type == GiccAffinity.TYPE:
            out.append(GiccAffinity(uid=ident, proximity_domain=vnode))
        elif ident <= 0xFE:
            out.append(LocalApicAffinity.of(ident, vnode))
        else:
            out.append(X2ApicAffinity(x2apic_id=ident, proximity_domain=vnode))
    out += [MemoryAffinity(base, size, vnode) for base, size, vnode in memory]
    return out


def build_srat(
    memory: list[tuple[int, int, int]], processors: list[tuple[int, int]], arch: Arch
) -> bytes:
    """`memory` = (base, size, vnode) per RAM range in layout order; `processors` =
    (APIC id or GICC UID, vnode) per VP."""
    body = SRAT_BODY.pack(table_revision=SRAT_TABLE_REVISION)
    body += b"".join(e.pack() for e in srat_of(memory, processors, arch))
    return build_table(b"SRAT", SRAT_REVISION, body)


def decode_srat_entries(table: Table) -> list[SratEntry | UnknownEntry]:
    """Every entry, typed; an entry may be longer than its record."""
    expect_signature(table, "SRAT")
    body = table.body
    out: list[SratEntry | UnknownEntry] = []
    for entry in entries(body, SRAT_BODY.size, "SRAT"):
        cls = SRAT_ENTRY_TYPES.get(entry.type)
        if cls is None:
            out.append(UnknownEntry(entry.type, entry.length))
            continue
        if cls is MemoryAffinity and entry.length != MEMORY_AFFINITY.size:
            raise bad("SRAT", f"memory entry at {entry.table_offset:#x} has length {entry.length}")
        require_length(entry, cls.LAYOUT.size, "SRAT", cls.__name__)
        out.append(cls.unpack(body, entry.offset, "SRAT"))
    return out


@dataclass(frozen=True, slots=True)
class SratMemory:
    range: MemoryRange
    vnode: int
    flags: int


def decode_srat(table: Table) -> tuple[list[SratMemory], list[tuple[int, int]]]:
    """(memory affinity entries as ranges, (type, length) of the other entries)."""
    memory: list[SratMemory] = []
    others: list[tuple[int, int]] = []
    for e in decode_srat_entries(table):
        if isinstance(e, MemoryAffinity):
            memory_range = checked_range(e.base, e.size, "SRAT memory entry", empty_ok=True)
            memory.append(SratMemory(memory_range, e.proximity_domain, e.flags))
        elif isinstance(e, UnknownEntry):
            others.append((e.type, e.length))
        else:
            others.append((e.TYPE, e.LAYOUT.size))
    return memory, others


def decode_srat_processors(table: Table, enabled_only: bool = False) -> list[tuple[int, int]]:
    """(APIC id, x2APIC id or GICC ACPI UID; vnode) of every processor affinity entry
    (with `enabled_only`, of those whose Enabled flag is set: the ones an OS uses)."""
    return [
        (e.processor_id, e.proximity_domain)
        for e in decode_srat_entries(table)
        if isinstance(e, LocalApicAffinity | X2ApicAffinity | GiccAffinity)
        and (not enabled_only or AffinityFlags.ENABLED in e.flags)
    ]
