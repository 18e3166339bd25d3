"""ACPI tables (spec 04 §2): header and checksum, RSDP/XSDT, FADT, MADT, SRAT, MCFG.

Field tables are declared once (`Struct`) and shared with the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmlayout.binfmt import Struct
from vmlayout.errors import VmLayoutError

HEADER = Struct(
    "ACPI table header",
    (
        ("signature", "4s"),
        ("length", "I"),
        ("revision", "B"),
        ("checksum", "B"),
        ("oem_id", "6s"),
        ("oem_table_id", "8s"),
        ("oem_revision", "I"),
        ("creator_id", "4s"),
        ("creator_revision", "I"),
    ),
)
RSDP = Struct(
    "RSDP",
    (
        ("signature", "8s"),
        ("checksum", "B"),
        ("oem_id", "6s"),
        ("revision", "B"),
        ("rsdt_address", "I"),
        ("length", "I"),
        ("xsdt_address", "Q"),
        ("extended_checksum", "B"),
        ("reserved", "3s"),
    ),
)
SRAT_BODY = Struct("SRAT body", (("table_revision", "I"), ("reserved", "Q")))
SRAT_MEMORY = Struct(
    "SRAT memory affinity",
    (
        ("type", "B"),
        ("length", "B"),
        ("proximity_domain", "I"),
        ("reserved1", "H"),
        ("base", "Q"),
        ("size", "Q"),
        ("reserved2", "I"),
        ("flags", "I"),
        ("reserved3", "Q"),
    ),
)
SRAT_LAPIC = Struct(
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
SRAT_GICC = Struct(
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
GAS = Struct(
    "generic address",
    (
        ("space_id", "B"),
        ("bit_width", "B"),
        ("bit_offset", "B"),
        ("access_size", "B"),
        ("address", "Q"),
    ),
)


@dataclass(frozen=True, slots=True)
class HeaderFlavour:
    oem_id: bytes
    oem_table_id: bytes
    oem_revision: int
    creator_id: bytes
    creator_revision: int


DSDT_FLAVOUR = HeaderFlavour(b"MSFTVM", b"DSDT01\0\0", 1, b"MSFT", 0x05000000)
SSDT_FLAVOUR = HeaderFlavour(b"MSFTVM", b"SSDT01\0\0", 1, b"MSFT", 0x01000000)
STANDARD_FLAVOUR = HeaderFlavour(b"HVLITE", b"HVLITETB", 0, b"MSHV", 0)


def checksum(data: bytes | bytearray) -> int:
    return -sum(data) & 0xFF


def build_table(
    signature: bytes, revision: int, body: bytes, flavour: HeaderFlavour = STANDARD_FLAVOUR
) -> bytes:
    """Header + body with length and checksum filled in."""
    length = HEADER.size + len(body)
    if length >= 1 << 32:
        raise VmLayoutError("acpi_error", f"{signature.decode()}: table too large")
    header = HEADER.pack(
        signature=signature,
        length=length,
        revision=revision,
        checksum=0,
        oem_id=flavour.oem_id,
        oem_table_id=flavour.oem_table_id,
        oem_revision=flavour.oem_revision,
        creator_id=flavour.creator_id,
        creator_revision=flavour.creator_revision,
    )
    table = bytearray(header + body)
    table[9] = checksum(table)
    return bytes(table)


def build_srat(
    memory: list[tuple[int, int, int]], processors: list[tuple[int, int]], aarch64: bool
) -> bytes:
    """`memory` = (base, size, vnode) per RAM range in layout order; `processors` =
    (APIC id or GICC UID, vnode) per VP."""
    body = SRAT_BODY.pack(table_revision=1, reserved=0)
    for ident, vnode in processors:
        if aarch64:
            body += SRAT_GICC.pack(
                type=3, length=18, proximity_domain=vnode, uid=ident, flags=1, clock_domain=0
            )
        elif ident <= 0xFE:
            body += SRAT_LAPIC.pack(
                type=0,
                length=16,
                proximity_domain_low=vnode & 0xFF,
                apic_id=ident,
                flags=1,
                sapic_eid=0,
                proximity_domain_high=(vnode >> 8).to_bytes(3, "little"),
                clock_domain=0,
            )
        else:
            body += (
                bytes((2, 24, 0, 0))
                + vnode.to_bytes(4, "little")
                + ident.to_bytes(4, "little")
                + (1).to_bytes(4, "little")
                + bytes(8)
            )
    for base, size, vnode in memory:
        body += SRAT_MEMORY.pack(
            type=1,
            length=40,
            proximity_domain=vnode,
            reserved1=0,
            base=base,
            size=size,
            reserved2=0,
            flags=1,
            reserved3=0,
        )
    return build_table(b"SRAT", 3, body)


def build_mcfg(entries: list[tuple[int, int, int, int]]) -> bytes:
    """(bus-0 ECAM base, segment, start bus, end bus) per root complex."""
    body = bytes(8) + b"".join(
        MCFG_ENTRY.pack(base=b, segment=s, start_bus=lo, end_bus=hi, reserved=0)
        for b, s, lo, hi in entries
    )
    return build_table(b"MCFG", 1, body)


def _gas(space: int, width: int, access: int, address: int) -> bytes:
    return GAS.pack(
        space_id=space, bit_width=width, bit_offset=0, access_size=access, address=address
    )


FADT_SIZE = 276
PM_BASE = 0x400
SCI_IRQ = 9


def build_fadt(dsdt_gpa: int, aarch64: bool, hypervisor_vendor: int = 0) -> bytes:
    table = bytearray(FADT_SIZE - HEADER.size)

    def put(offset: int, data: bytes) -> None:
        table[offset - HEADER.size : offset - HEADER.size + len(data)] = data

    if aarch64:
        put(112, (1 << 20).to_bytes(4, "little"))
        put(129, (3).to_bytes(2, "little"))
        put(131, b"\x03")
        put(268, hypervisor_vendor.to_bytes(8, "little"))
    else:
        put(46, SCI_IRQ.to_bytes(2, "little"))
        put(88, bytes((4, 2, 0, 4, 4)))
        put(96, (101).to_bytes(2, "little") + (1001).to_bytes(2, "little"))
        put(112, (0x85B5).to_bytes(4, "little"))
        put(116, _gas(1, 8, 1, PM_BASE + 0x33))
        put(128, b"\x01")
        put(148, _gas(1, 32, 2, PM_BASE))
        put(172, _gas(1, 16, 2, PM_BASE + 0x04))
        put(208, _gas(1, 32, 3, PM_BASE + 0x08))
        put(220, _gas(1, 32, 2, PM_BASE + 0x0C))
    put(140, dsdt_gpa.to_bytes(8, "little"))
    return build_table(b"FACP", 6, bytes(table))


def build_madt(vp_count: int, aarch64: bool) -> bytes:
    """A minimal valid MADT: x86 IO-APIC, SCI override, LAPIC NMI and one local APIC
    per VP (APIC id = VP index); aarch64 a GICv3 distributor and one GICC per VP."""
    if aarch64:
        body = (0).to_bytes(4, "little") + (0).to_bytes(4, "little")
        body += bytes((0xC, 24, 0, 0)) + (0).to_bytes(4, "little")
        body += (0xFFFF_0000).to_bytes(8, "little") + (0).to_bytes(4, "little")
        body += bytes((3, 0, 0, 0))
        for vp in range(vp_count):
            gicc = bytearray(80)
            gicc[0], gicc[1] = 0xB, 80
            gicc[4:8] = (vp).to_bytes(4, "little")  # CPU interface number
            gicc[8:12] = (vp + 1).to_bytes(4, "little")  # ACPI processor UID
            gicc[12:16] = (1).to_bytes(4, "little")  # enabled
            gicc[68:76] = (vp).to_bytes(8, "little")  # MPIDR
            body += bytes(gicc)
        return build_table(b"APIC", 5, body)
    body = (0xFEE0_0000).to_bytes(4, "little") + (0).to_bytes(4, "little")
    body += bytes((1, 12, 0, 0)) + (0xFEC0_0000).to_bytes(4, "little") + (0).to_bytes(4, "little")
    body += (
        bytes((2, 10, 0, SCI_IRQ)) + SCI_IRQ.to_bytes(4, "little") + (0x000D).to_bytes(2, "little")
    )
    body += bytes((4, 6, 1, 0, 0, 1))
    for vp in range(vp_count):
        if vp <= 0xFE and vp + 1 <= 255:
            body += bytes((0, 8, vp + 1, vp)) + (1).to_bytes(4, "little")
        else:
            body += (
                bytes((9, 16, 0, 0))
                + vp.to_bytes(4, "little")
                + (1).to_bytes(4, "little")
                + (vp + 1).to_bytes(4, "little")
            )
    return build_table(b"APIC", 5, body)


def build_xsdt(table_gpas: list[int]) -> bytes:
    return build_table(b"XSDT", 1, b"".join(g.to_bytes(8, "little") for g in table_gpas))


def build_rsdp(xsdt_gpa: int) -> bytes:
    rsdp = bytearray(
        RSDP.pack(
            signature=b"RSD PTR ",
            checksum=0,
            oem_id=b"HVLITE",
            revision=2,
            rsdt_address=0,
            length=36,
            xsdt_address=xsdt_gpa,
            extended_checksum=0,
            reserved=bytes(3),
        )
    )
    rsdp[8] = checksum(rsdp[:20])
    rsdp[32] = checksum(rsdp)
    return bytes(rsdp)
