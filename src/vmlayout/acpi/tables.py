"""ACPI tables (spec 04 §2): header and checksum, RSDP/XSDT, FADT, MADT, SRAT, SLIT,
MCFG, and the aarch64 GTDT and PPTT.

Field tables are declared once (`Struct`) and shared with the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmlayout.binfmt import Struct
from vmlayout.errors import VmLayoutError
from vmlayout.platform import DEFAULT_GIC, GIC_REDISTRIBUTOR_SIZE, GicPlatform

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
#: The OEM ids vmlayout (like the reference) writes: how a table of ours is recognised.
OEM_IDS = frozenset(f.oem_id for f in (DSDT_FLAVOUR, SSDT_FLAVOUR, STANDARD_FLAVOUR))


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


MADT_GICD = Struct(
    "MADT GIC distributor",
    (
        ("type", "B"),
        ("length", "B"),
        ("reserved", "H"),
        ("gic_id", "I"),
        ("base", "Q"),
        ("reserved2", "I"),
        ("gic_version", "B"),
        ("reserved3", "3s"),
    ),
)
MADT_GICC = Struct(
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
MADT_GIC_MSI_FRAME = Struct(
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
MADT_GIC_ITS = Struct(
    "MADT GIC ITS",
    (
        ("type", "B"),
        ("length", "B"),
        ("reserved", "H"),
        ("its_id", "I"),
        ("base", "Q"),
        ("reserved2", "I"),
    ),
)


def mpidr_of(vp: int) -> int:
    """MPIDR affinity fields (Aff0..Aff3 = the VP index's bytes), as ACPI lists them."""
    aff = vp.to_bytes(4, "little")
    return aff[0] | aff[1] << 8 | aff[2] << 16 | aff[3] << 32


def build_madt(
    vp_count: int,
    aarch64: bool,
    gic: GicPlatform = DEFAULT_GIC,
    ioapic: bool = True,
    pic: bool = False,
    pit: bool = False,
) -> bytes:
    """x86: IO-APIC, SCI override, optional PIT override, LAPIC NMI, one local (x2)APIC
    per VP (APIC id = VP index); aarch64: GICv3 distributor, one GICC per VP with its
    redistributor, then the v2m frame or the ITS."""
    if aarch64:
        body = (0).to_bytes(4, "little") + (0).to_bytes(4, "little")
        body += MADT_GICD.pack(
            type=0xC,
            length=MADT_GICD.size,
            reserved=0,
            gic_id=0,
            base=gic.distributor_base,
            reserved2=0,
            gic_version=3,
            reserved3=bytes(3),
        )
        for vp in range(vp_count):
            body += MADT_GICC.pack(
                type=0xB,
                length=MADT_GICC.size,
                reserved=0,
                cpu_interface_number=0,
                uid=vp + 1,
                flags=1,
                parking_protocol_version=0,
                performance_gsiv=0,
                parked_address=0,
                base=0,
                gicv=0,
                gich=0,
                vgic_maintenance_interrupt=0,
                gicr_base=gic.redistributors_base + vp * GIC_REDISTRIBUTOR_SIZE,
                mpidr=mpidr_of(vp),
                power_efficiency_class=0,
                reserved2=0,
                spe_overflow_interrupt=0,
            )
        if gic.msi == "v2m":
            v2m_base, _ = gic.spi_layout(0)
            assert v2m_base is not None
            body += MADT_GIC_MSI_FRAME.pack(
                type=0xD,
                length=MADT_GIC_MSI_FRAME.size,
                reserved=0,
                frame_id=0,
                base=gic.v2m_frame_base,
                flags=1,
                spi_count=gic.v2m_spi_count,
                spi_base=v2m_base,
            )
        elif gic.msi == "its":
            body += MADT_GIC_ITS.pack(
                type=0xF,
                length=MADT_GIC_ITS.size,
                reserved=0,
                its_id=0,
                base=gic.its_base,
                reserved2=0,
            )
        return build_table(b"APIC", 5, body)
    body = (0xFEE0_0000).to_bytes(4, "little") + int(pic).to_bytes(4, "little")
    if ioapic:
        body += bytes((1, 12, 0, 0)) + (0xFEC0_0000).to_bytes(4, "little") + bytes(4)
    body += (
        bytes((2, 10, 0, SCI_IRQ)) + SCI_IRQ.to_bytes(4, "little") + (0x000D).to_bytes(2, "little")
    )
    if pit:
        body += bytes((2, 10, 0, 0)) + (2).to_bytes(4, "little") + bytes(2)
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


def build_slit(node_count: int, distances: tuple[tuple[int, int, int], ...] = ()) -> bytes:
    """The node-distance matrix: 10 on the diagonal, 20 elsewhere, then each configured
    (from, to, distance) applied in order."""
    matrix = bytearray(10 if i == j else 20 for i in range(node_count) for j in range(node_count))
    for src, dst, distance in distances:
        matrix[src * node_count + dst] = distance
    return build_table(b"SLIT", 1, node_count.to_bytes(8, "little") + bytes(matrix))


GTDT_BODY = Struct(
    "GTDT body",
    (
        ("cnt_control_base", "Q"),
        ("reserved", "I"),
        ("secure_el1_gsiv", "I"),
        ("secure_el1_flags", "I"),
        ("non_secure_el1_gsiv", "I"),
        ("non_secure_el1_flags", "I"),
        ("virtual_el1_gsiv", "I"),
        ("virtual_el1_flags", "I"),
        ("el2_gsiv", "I"),
        ("el2_flags", "I"),
        ("cnt_read_base", "Q"),
        ("platform_timer_count", "I"),
        ("platform_timer_offset", "I"),
        ("virtual_el2_gsiv", "I"),
        ("virtual_el2_flags", "I"),
    ),
)
GTDT_TIMER_ACTIVE_LOW = 1 << 1


def build_gtdt(virt_timer_ppi: int) -> bytes:
    """Only the virtual EL1 timer (level, active low); no memory-mapped counter."""
    body = GTDT_BODY.pack(
        cnt_control_base=0xFFFF_FFFF_FFFF_FFFF,
        reserved=0,
        secure_el1_gsiv=0,
        secure_el1_flags=0,
        non_secure_el1_gsiv=0,
        non_secure_el1_flags=0,
        virtual_el1_gsiv=virt_timer_ppi,
        virtual_el1_flags=GTDT_TIMER_ACTIVE_LOW,
        el2_gsiv=0,
        el2_flags=0,
        cnt_read_base=0xFFFF_FFFF_FFFF_FFFF,
        platform_timer_count=0,
        platform_timer_offset=0,
        virtual_el2_gsiv=0,
        virtual_el2_flags=0,
    )
    return build_table(b"GTDT", 3, body)


PPTT_PROCESSOR = Struct(
    "PPTT processor",
    (
        ("type", "B"),
        ("length", "B"),
        ("reserved", "H"),
        ("flags", "I"),
        ("parent", "I"),
        ("acpi_processor_id", "I"),
        ("private_resources", "I"),
    ),
)
PPTT_PHYSICAL_PACKAGE = 1 << 0
PPTT_UID_VALID = 1 << 1


def build_pptt(vp_count: int) -> bytes:
    """aarch64 processor hierarchy without caches: a package per MPIDR Aff2, a core per
    (Aff2, Aff1) named by its first VP's UID; VPs sharing a core (Aff0 only differs,
    SMT off) add no node, as in the reference."""
    body = bytearray()
    sockets: dict[int, tuple[int, set[int]]] = {}
    for vp in range(vp_count):
        mpidr = mpidr_of(vp)
        socket, core = (mpidr >> 16) & 0xFF, (mpidr >> 8) & 0xFF
        if socket not in sockets:
            sockets[socket] = (HEADER.size + len(body), set())
            body += PPTT_PROCESSOR.pack(
                type=0,
                length=PPTT_PROCESSOR.size,
                reserved=0,
                flags=PPTT_PHYSICAL_PACKAGE,
                parent=0,
                acpi_processor_id=0,
                private_resources=0,
            )
        socket_offset, cores = sockets[socket]
        if core not in cores:
            cores.add(core)
            body += PPTT_PROCESSOR.pack(
                type=0,
                length=PPTT_PROCESSOR.size,
                reserved=0,
                flags=PPTT_UID_VALID,
                parent=socket_offset,
                acpi_processor_id=vp + 1,
                private_resources=0,
            )
    return build_table(b"PPTT", 1, bytes(body))


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
