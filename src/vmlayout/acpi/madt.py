"""The MADT (signature APIC): the interrupt controllers and one processor entry per
VP. x86_64: IO-APIC, interrupt source overrides, LAPIC NMI, local (x2)APICs; aarch64:
GIC distributor, one GICC per VP with its redistributor, the v2m MSI frame or the ITS.

Each entry type is a typed record (`Packed`) with one field table for both
directions; `SUMMARY` names what `inspect` shows of it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from vmlayout.acpi.sdt import (
    Table,
    UnknownEntry,
    bad,
    build_table,
    entries,
    expect_signature,
    require_length,
    typed_header,
)
from vmlayout.arch import Arch, InterruptController
from vmlayout.binfmt import Packed, Struct
from vmlayout.platform import DEFAULT_GIC, GIC_REDISTRIBUTOR_SIZE, GicPlatform
from vmlayout.topology import mpidr_of
from vmlayout.zones import IOAPIC_BASE, LAPIC_BASE

MADT_BODY = Struct("MADT body", (("local_apic_address", "I"), ("flags", "I")))
MADT_REVISION = 5
#: The SCI's ISA IRQ and GSI (the FADT's SCI_INT), and the PIT's IRQ0 -> GSI 2.
SCI_IRQ = 9
PIT_GSI = 2


class MadtFlags(enum.IntFlag):
    NONE = 0
    PCAT_COMPAT = 1 << 0


class ProcessorFlags(enum.IntFlag):
    """Local APIC, x2APIC and GICC flags."""

    ENABLED = 1 << 0
    ONLINE_CAPABLE = 1 << 1


class MpsIntiFlags(enum.IntFlag):
    """Interrupt source override / NMI polarity (bits 1:0) and trigger mode (3:2)."""

    NONE = 0
    ACTIVE_HIGH = 0b01
    ACTIVE_LOW = 0b11
    EDGE = 0b01 << 2
    LEVEL = 0b11 << 2


class GicMsiFlags(enum.IntFlag):
    SPI_COUNT_BASE_SELECT = 1 << 0


class MadtEntry(Packed):
    """An MADT entry type: its type code, its `inspect` name and the fields shown."""

    __slots__ = ()
    TYPE: ClassVar[int]
    KIND: ClassVar[str]
    SUMMARY: ClassVar[tuple[str, ...]]

    def summary(self) -> dict[str, Any]:
        return {"type": self.KIND, **{key: int(getattr(self, key)) for key in self.SUMMARY}}


LOCAL_APIC = Struct(
    "MADT local APIC",
    (("type", "B"), ("length", "B"), ("uid", "B"), ("apic_id", "B"), ("flags", "I")),
)


@dataclass(frozen=True, slots=True)
class LocalApic(MadtEntry):
    TYPE: ClassVar[int] = 0x0
    KIND: ClassVar[str] = "local_apic"
    LAYOUT: ClassVar[Struct] = LOCAL_APIC
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, LOCAL_APIC)
    SUMMARY: ClassVar[tuple[str, ...]] = ("uid", "apic_id", "flags")

    uid: int
    apic_id: int
    flags: ProcessorFlags = ProcessorFlags.ENABLED


IO_APIC = Struct(
    "MADT IO-APIC",
    (
        ("type", "B"),
        ("length", "B"),
        ("id", "B"),
        ("reserved", "B"),
        ("base", "I"),
        ("gsi_base", "I"),
    ),
)


@dataclass(frozen=True, slots=True)
class IoApic(MadtEntry):
    TYPE: ClassVar[int] = 0x1
    KIND: ClassVar[str] = "io_apic"
    LAYOUT: ClassVar[Struct] = IO_APIC
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, IO_APIC)
    SUMMARY: ClassVar[tuple[str, ...]] = ("id", "base", "gsi_base")

    id: int
    base: int
    gsi_base: int


INTERRUPT_OVERRIDE = Struct(
    "MADT interrupt source override",
    (("type", "B"), ("length", "B"), ("bus", "B"), ("source", "B"), ("gsi", "I"), ("flags", "H")),
)


@dataclass(frozen=True, slots=True)
class InterruptOverride(MadtEntry):
    TYPE: ClassVar[int] = 0x2
    KIND: ClassVar[str] = "interrupt_override"
    LAYOUT: ClassVar[Struct] = INTERRUPT_OVERRIDE
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, INTERRUPT_OVERRIDE)
    SUMMARY: ClassVar[tuple[str, ...]] = ("source", "gsi", "flags")

    source: int
    gsi: int
    flags: MpsIntiFlags = MpsIntiFlags.NONE
    bus: int = 0  # ISA


LOCAL_APIC_NMI = Struct(
    "MADT local APIC NMI",
    (("type", "B"), ("length", "B"), ("uid", "B"), ("flags", "H"), ("lint", "B")),
)


@dataclass(frozen=True, slots=True)
class LocalApicNmi(MadtEntry):
    TYPE: ClassVar[int] = 0x4
    KIND: ClassVar[str] = "local_apic_nmi"
    LAYOUT: ClassVar[Struct] = LOCAL_APIC_NMI
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, LOCAL_APIC_NMI)
    SUMMARY: ClassVar[tuple[str, ...]] = ()

    uid: int
    lint: int
    flags: MpsIntiFlags = MpsIntiFlags.NONE


LOCAL_X2APIC = Struct(
    "MADT local x2APIC",
    (
        ("type", "B"),
        ("length", "B"),
        ("reserved", "H"),
        ("apic_id", "I"),
        ("flags", "I"),
        ("uid", "I"),
    ),
)


@dataclass(frozen=True, slots=True)
class LocalX2Apic(MadtEntry):
    TYPE: ClassVar[int] = 0x9
    KIND: ClassVar[str] = "local_x2apic"
    LAYOUT: ClassVar[Struct] = LOCAL_X2APIC
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, LOCAL_X2APIC)
    SUMMARY: ClassVar[tuple[str, ...]] = ("apic_id", "flags", "uid")

    apic_id: int
    uid: int
    flags: ProcessorFlags = ProcessorFlags.ENABLED


GICC = Struct(
    "MADT GICC",
    (
        ("type", "B"),
        ("length", "B"),
        ("reserved", "H"),
        ("cpu_interface_number", "I"),
        ("uid", "I"),
        ("flags", "I"),
        ("parking_protocol_version", "I"),
        ("performance_gsiv", "I"),
        ("parked_address", "Q"),
        ("base", "Q"),
        ("gicv", "Q"),
        ("gich", "Q"),
        ("vgic_maintenance_interrupt", "I"),
        ("gicr_base", "Q"),
        ("mpidr", "Q"),
        ("power_efficiency_class", "B"),
        ("reserved2", "B"),
        ("spe_overflow_interrupt", "H"),
    ),
)


@dataclass(frozen=True, slots=True)
class Gicc(MadtEntry):
    TYPE: ClassVar[int] = 0xB
    KIND: ClassVar[str] = "gicc"
    LAYOUT: ClassVar[Struct] = GICC
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, GICC)
    SUMMARY: ClassVar[tuple[str, ...]] = ("uid", "flags", "gicr_base", "mpidr")

    uid: int
    gicr_base: int
    mpidr: int
    flags: ProcessorFlags = ProcessorFlags.ENABLED
    cpu_interface_number: int = 0
    parking_protocol_version: int = 0
    performance_gsiv: int = 0
    parked_address: int = 0
    base: int = 0
    gicv: int = 0
    gich: int = 0
    vgic_maintenance_interrupt: int = 0
    power_efficiency_class: int = 0
    spe_overflow_interrupt: int = 0


GICD = Struct(
    "MADT GIC distributor",
    (
        ("type", "B"),
        ("length", "B"),
        ("reserved", "H"),
        ("gic_id", "I"),
        ("base", "Q"),
        ("reserved2", "I"),
        ("version", "B"),
        ("reserved3", "3s"),
    ),
)


@dataclass(frozen=True, slots=True)
class Gicd(MadtEntry):
    TYPE: ClassVar[int] = 0xC
    KIND: ClassVar[str] = "gicd"
    LAYOUT: ClassVar[Struct] = GICD
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, GICD)
    SUMMARY: ClassVar[tuple[str, ...]] = ("base", "version")

    base: int
    version: int
    gic_id: int = 0


GIC_MSI_FRAME = Struct(
    "MADT GIC MSI frame",
    (
        ("type", "B"),
        ("length", "B"),
        ("reserved", "H"),
        ("frame_id", "I"),
        ("base", "Q"),
        ("flags", "I"),
        ("spi_count", "H"),
        ("spi_base", "H"),
    ),
)


@dataclass(frozen=True, slots=True)
class GicMsiFrame(MadtEntry):
    TYPE: ClassVar[int] = 0xD
    KIND: ClassVar[str] = "gic_msi_frame"
    LAYOUT: ClassVar[Struct] = GIC_MSI_FRAME
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, GIC_MSI_FRAME)
    SUMMARY: ClassVar[tuple[str, ...]] = ("base", "spi_count", "spi_base")

    base: int
    spi_count: int
    spi_base: int
    flags: GicMsiFlags = GicMsiFlags.SPI_COUNT_BASE_SELECT
    frame_id: int = 0


GIC_ITS = Struct(
    "MADT GIC ITS",
    (
        ("type", "B"),
        ("length", "B"),
        ("reserved", "H"),
        ("id", "I"),
        ("base", "Q"),
        ("reserved2", "I"),
    ),
)


@dataclass(frozen=True, slots=True)
class GicIts(MadtEntry):
    TYPE: ClassVar[int] = 0xF
    KIND: ClassVar[str] = "gic_its"
    LAYOUT: ClassVar[Struct] = GIC_ITS
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, GIC_ITS)
    SUMMARY: ClassVar[tuple[str, ...]] = ("id", "base")

    id: int
    base: int


#: Every entry type vmlayout writes and reads, by type code.
MADT_ENTRY_TYPES: dict[int, type[MadtEntry]] = {
    cls.TYPE: cls
    for cls in (
        LocalApic,
        IoApic,
        InterruptOverride,
        LocalApicNmi,
        LocalX2Apic,
        Gicc,
        Gicd,
        GicMsiFrame,
        GicIts,
    )
}
GIC_VERSION = 3


@dataclass(frozen=True, slots=True)
class Madt:
    local_apic_address: int
    flags: MadtFlags
    entries: tuple[MadtEntry | UnknownEntry, ...]

    def encode(self) -> bytes:
        body = MADT_BODY.pack(local_apic_address=self.local_apic_address, flags=self.flags)
        for entry in self.entries:
            if isinstance(entry, UnknownEntry):
                raise TypeError("an unknown MADT entry cannot be written")
            body += entry.pack()
        return build_table(b"APIC", MADT_REVISION, body)


def madt_of(
    vp_count: int,
    arch: Arch,
    gic: GicPlatform = DEFAULT_GIC,
    ioapic: bool = True,
    pic: bool = False,
    pit: bool = False,
) -> Madt:
    """x86: IO-APIC, SCI override, optional PIT override, LAPIC NMI, one local (x2)APIC
    per VP (APIC id = VP index, UID = VP + 1); aarch64: GICv3 distributor, one GICC per
    VP (UID = VP + 1) with its redistributor, then the v2m frame or the ITS."""
    out: list[MadtEntry | UnknownEntry] = []
    if arch.spec.interrupt_controller is InterruptController.GIC:
        out.append(Gicd(base=gic.distributor_base, version=GIC_VERSION))
        out += [
            Gicc(
                uid=vp + 1,
                gicr_base=gic.redistributors_base + vp * GIC_REDISTRIBUTOR_SIZE,
                mpidr=mpidr_of(vp),
            )
            for vp in range(vp_count)
        ]
        if gic.msi == "v2m":
            v2m_base, _ = gic.spi_layout(0)
            assert v2m_base is not None
            out.append(GicMsiFrame(gic.v2m_frame_base, gic.v2m_spi_count, v2m_base))
        elif gic.msi == "its":
            out.append(GicIts(id=0, base=gic.its_base))
        return Madt(0, MadtFlags.NONE, tuple(out))
    if ioapic:
        out.append(IoApic(id=0, base=IOAPIC_BASE, gsi_base=0))
    out.append(InterruptOverride(SCI_IRQ, SCI_IRQ, MpsIntiFlags.ACTIVE_HIGH | MpsIntiFlags.LEVEL))
    if pit:
        out.append(InterruptOverride(0, PIT_GSI))
    out.append(LocalApicNmi(uid=1, lint=1))
    for vp in range(vp_count):
        if vp <= 0xFE:  # both the APIC id and the UID (VP + 1) fit the 8-bit entry
            out.append(LocalApic(uid=vp + 1, apic_id=vp))
        else:
            out.append(LocalX2Apic(apic_id=vp, uid=vp + 1))
    return Madt(LAPIC_BASE, MadtFlags.PCAT_COMPAT if pic else MadtFlags.NONE, tuple(out))


def build_madt(
    vp_count: int,
    arch: Arch,
    gic: GicPlatform = DEFAULT_GIC,
    ioapic: bool = True,
    pic: bool = False,
    pit: bool = False,
) -> bytes:
    return madt_of(vp_count, arch, gic, ioapic, pic, pit).encode()


def decode_madt(table: Table) -> Madt:
    """Every MADT entry as its typed record; entries of other types by number. An
    entry may be longer than its record (later ACPI revisions append fields)."""
    expect_signature(table, "APIC")
    body = table.body
    if len(body) < MADT_BODY.size:
        raise bad("APIC", "body shorter than the local interrupt controller header")
    header = MADT_BODY.unpack(body, 0, "APIC")
    out: list[MadtEntry | UnknownEntry] = []
    for entry in entries(body, MADT_BODY.size, "APIC"):
        cls = MADT_ENTRY_TYPES.get(entry.type)
        if cls is None:
            out.append(UnknownEntry(entry.type, entry.length))
            continue
        require_length(entry, cls.LAYOUT.size, "APIC", cls.KIND)
        out.append(cls.unpack(body, entry.offset, "APIC"))
    return Madt(header["local_apic_address"], MadtFlags(header["flags"]), tuple(out))


def summarize_madt(table: Table) -> dict[str, Any]:
    return {
        "entries": [
            {"type": e.type} if isinstance(e, UnknownEntry) else e.summary()
            for e in decode_madt(table).entries
        ]
    }
