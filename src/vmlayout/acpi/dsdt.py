"""The DSDT and PCIe SSDT devices that carry the layout (spec 04 §3), and the whole
table set of one VM.

The chipset windows come in as the explicit `ChipsetMmioRanges` value; empty windows
are skipped where the spec says so and rejected where an empty one would be a bug.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmlayout.acpi.aml import (
    Aml,
    And,
    Buffer,
    Device,
    EisaId,
    Integer,
    Interrupt,
    IoPort,
    Memory32Fixed,
    Method,
    Name,
    Or,
    Package,
    QWordMemory,
    ResourceTemplate,
    Return,
    String,
    WordBusNumber,
    seg,
)
from vmlayout.acpi.tables import (
    DSDT_FLAVOUR,
    SSDT_FLAVOUR,
    build_fadt,
    build_madt,
    build_mcfg,
    build_rsdp,
    build_srat,
    build_table,
    build_xsdt,
)
from vmlayout.errors import VmLayoutError
from vmlayout.layout import ChipsetMmioRanges
from vmlayout.ranges import PAGE_SIZE, MemoryRange


def _qword(r: MemoryRange) -> QWordMemory:
    return QWordMemory(r.start, r.size)


def vmod_device(chipset: ChipsetMmioRanges) -> Device:
    """`\\_SB.VMOD`: low then high, each skipped when empty; VTL2 is never listed."""
    descriptors = tuple(_qword(r) for r in (chipset.low, chipset.high) if not r.is_empty())
    return Device(
        "\\_SB.VMOD",
        (
            Name("_HID", String("ACPI0004")),
            Name("_UID", Integer(0)),
            Name("_CRS", ResourceTemplate(descriptors)),
        ),
    )


OSC_PCI0 = Method("_OSC", 4, (Return(Buffer(bytes((0x10, 0, 0, 0, 0, 0, 0, 0)))),))


def pci0_device(chipset: ChipsetMmioRanges) -> Device:
    """`\\_SB.PCI0` (x86): the low window always, the high one when non-empty."""
    if chipset.low.is_empty():
        raise VmLayoutError("acpi_error", "PCI0 _CRS: the chipset low window is empty")
    descriptors: list[Aml] = [WordBusNumber(0, 1), IoPort(0xCF8, 0xCF8, 1, 8)]
    descriptors.append(_qword(chipset.low))
    if not chipset.high.is_empty():
        descriptors.append(_qword(chipset.high))
    return Device(
        "\\_SB.PCI0",
        (
            Name("_HID", EisaId("PNP0A03")),
            OSC_PCI0,
            Name("_PRT", Package(0, b"")),
            Name("_CRS", ResourceTemplate(tuple(descriptors))),
        ),
    )


def vmbus_device(parent: str, aarch64: bool) -> Device:
    template = ResourceTemplate((Interrupt(18, edge=True),) if aarch64 else ())
    return Device(
        f"{parent}.VMBS",
        (
            Name("STA_", Integer(0x0F)),
            Name("_ADR", Integer(0)),
            Name("_DDN", String("VMBUS")),
            Name("_HID", String("VMBus")),
            Name("_UID", Integer(0)),
            Method("_DIS", 0, (And(seg("STA_"), Integer(0x0D), seg("STA_")),)),
            Method("_PS0", 0, (Or(seg("STA_"), Integer(0x0F), seg("STA_")),)),
            Method("_STA", 0, (Return(seg("STA_")),)),
            Name("_PS3", Integer(0)),
            Name("_CRS", template),
        ),
    )


def virtio_devices(region: MemoryRange, irq: int) -> list[Device]:
    """One `\\_SB.VIii` per 4 KiB slot (`Vnnn` from slot 100 on, at most 1000)."""
    count = region.size // PAGE_SIZE
    if count > 1000:
        raise VmLayoutError("acpi_error", f"virtio-mmio: {count} slots, at most 1000 nameable")
    devices = []
    for i in range(count):
        name = f"VI{i:02d}" if i < 100 else f"V{i:03d}"
        devices.append(
            Device(
                f"\\_SB.{name}",
                (
                    Name("_HID", String("LNRO0005")),
                    Name("_UID", Integer(i)),
                    Name(
                        "_CRS",
                        ResourceTemplate(
                            (
                                QWordMemory(region.start + i * PAGE_SIZE, PAGE_SIZE),
                                Interrupt(irq, edge=False),
                            )
                        ),
                    ),
                ),
            )
        )
    return devices


def processor_name(index: int) -> str:
    """P001..P999, then Q000 for 1000 and so on."""
    letter, number = divmod(index, 1000)
    if letter > 10:
        raise VmLayoutError("acpi_error", f"processor {index}: too many to name")
    return f"{chr(ord('P') + letter)}{number:03d}"


def processor_devices(vp_count: int) -> list[Device]:
    return [
        Device(
            processor_name(n),
            (
                Name("_HID", String("ACPI0007")),
                Name("_UID", Integer(n)),
                Method("_STA", 0, (Return(Integer(0x0F)),)),
            ),
        )
        for n in range(1, vp_count + 1)
    ]


def dsdt_table(objects: list[Aml]) -> bytes:
    return build_table(b"DSDT", 2, b"".join(o.encode() for o in objects), DSDT_FLAVOUR)


@dataclass(frozen=True, slots=True)
class AcpiOptions:
    """Non-layout settings. The chipset device is PCI0 on x86 only when asked."""

    vp_count: int = 2
    pci0: bool = False
    vmbus: bool = True
    serial: bool = False
    virtio_irq: int = 5
    #: Where the RSDP page goes; tables follow one page later. Default: tables at
    #: 0x19000, the ACPI area of the Linux E820 map (x86), or RAM start + 8 MiB + 8 KiB
    #: on aarch64 as the reference's ACPI-stub boot does.
    rsdp_gpa: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.vp_count <= 4096:
            raise VmLayoutError("invalid_argument", "vp_count: must be 1..4096")


def build_dsdt(resolved: object, options: AcpiOptions = AcpiOptions()) -> bytes:
    from vmlayout.policy import ResolvedLayout

    assert isinstance(resolved, ResolvedLayout)
    aarch64 = resolved.arch.value == "aarch64"
    chipset = resolved.chipset
    objects: list[Aml] = [
        Name("\\_S0", Package.of_bytes((0, 0))),
        Name("\\_S5", Package.of_bytes((0, 0))),
    ]
    if aarch64:
        objects.append(vmod_device(chipset))
        if options.vmbus:
            objects.append(vmbus_device("\\_SB.VMOD", aarch64=True))
        if options.serial:
            for n, (base, irq) in enumerate(((0xEFFEC000, 33), (0xEFFEB000, 34))):
                objects.append(
                    Device(
                        f"\\_SB.UAR{n}",
                        (
                            Name("_HID", String("ARMH0011")),
                            Name("_UID", Integer(n)),
                            Name(
                                "_CRS",
                                ResourceTemplate(
                                    (QWordMemory(base, 0x1000), Interrupt(irq, edge=False))
                                ),
                            ),
                        ),
                    )
                )
    else:
        objects.append(
            Device(
                "\\_SB.APIC",
                (
                    Name("_HID", EisaId("PNP0003")),
                    Name(
                        "_CRS",
                        ResourceTemplate(
                            (Memory32Fixed(0xFEE00000, 0x1000), Memory32Fixed(0xFEC00000, 0x1000))
                        ),
                    ),
                ),
            )
        )
        if options.serial:
            for n, (base, irq) in enumerate(((0x3F8, 4), (0x2F8, 3), (0x3E8, 4), (0x2E8, 3))):
                objects.append(
                    Device(
                        f"\\_SB.UAR{n + 1}",
                        (
                            Name("_HID", EisaId("PNP0501")),
                            Name("_DDN", String(f"COM{n + 1}")),
                            Name("_UID", Integer(n + 1)),
                            Name(
                                "_CRS",
                                ResourceTemplate(
                                    (IoPort(base, base, 1, 8), Interrupt(irq, edge=True))
                                ),
                            ),
                        ),
                    )
                )
        objects += virtio_devices(resolved.virtio_mmio, options.virtio_irq)
        parent = "\\_SB.PCI0" if options.pci0 else "\\_SB.VMOD"
        objects.append(pci0_device(chipset) if options.pci0 else vmod_device(chipset))
        if options.vmbus:
            objects.append(vmbus_device(parent, aarch64=False))
        objects.append(
            Device(
                "\\_SB.RTC0",
                (
                    Name("_HID", EisaId("PNP0B00")),
                    Name("_UID", Integer(0)),
                    Name(
                        "_CRS",
                        ResourceTemplate((IoPort(0x70, 0x70, 0, 2), Interrupt(8, edge=True))),
                    ),
                ),
            )
        )
    objects += processor_devices(options.vp_count)
    return dsdt_table(objects)


def root_complex_name(index: int) -> str:
    if not 0 <= index < 1000:
        raise VmLayoutError("acpi_error", f"root complex {index}: at most 1000 are nameable")
    digits = str(index)
    return "PCI0"[: 4 - len(digits)] + digits


def build_pcie_ssdt(resolved: object) -> bytes | None:
    """One device per root complex, then `\\VMOD` reserving every ECAM range."""
    from vmlayout.policy import ResolvedLayout

    assert isinstance(resolved, ResolvedLayout)
    complexes = resolved.pcie_root_complexes
    if not complexes:
        return None
    objects: list[Aml] = []
    for index, rc in enumerate(complexes):
        for what, window in (("low", rc.low_mmio), ("high", rc.high_mmio)):
            if window.is_empty():
                raise VmLayoutError("acpi_error", f"{rc.name}: empty {what} MMIO window")
        objects.append(
            Device(
                root_complex_name(index),
                (
                    Name("_HID", EisaId("PNP0A08")),
                    Name("_CID", EisaId("PNP0A03")),
                    Name("_UID", Integer(index)),
                    Name("_SEG", Integer(rc.segment)),
                    Name("_BBN", Integer(rc.start_bus)),
                    Name("_CCA", Integer(1)),
                    Name(
                        "_CRS",
                        ResourceTemplate(
                            (
                                WordBusNumber(rc.start_bus, rc.end_bus - rc.start_bus + 1),
                                _qword(rc.low_mmio),
                                _qword(rc.high_mmio),
                            )
                        ),
                    ),
                ),
            )
        )
    objects.append(
        Device(
            "VMOD",
            (
                Name("_HID", EisaId("PNP0C02")),
                Name("_CRS", ResourceTemplate(tuple(_qword(rc.ecam) for rc in complexes))),
            ),
        )
    )
    return build_table(b"SSDT", 2, b"".join(o.encode() for o in objects), SSDT_FLAVOUR)


def _pad8(blob: bytearray) -> None:
    blob += bytes(-len(blob) % 8)


def build_acpi_tables(
    resolved: object,
    options: AcpiOptions = AcpiOptions(),
) -> dict[str, bytes]:
    """Every table by file name (`DSDT.aml` … `XSDT.aml`, `RSDP.bin`), laid out in one
    blob in the reference's append order so the XSDT and X_DSDT pointers are real."""
    from vmlayout.policy import ResolvedLayout

    assert isinstance(resolved, ResolvedLayout)
    aarch64 = resolved.arch.value == "aarch64"
    layout = resolved.memory_layout
    if options.rsdp_gpa is not None:
        rsdp_gpa = options.rsdp_gpa
    elif aarch64:
        rsdp_gpa = layout.ram[0].range.start + 0x80_0000 + 0x2000
    else:
        rsdp_gpa = 0x18000
    base = rsdp_gpa + PAGE_SIZE
    blob = bytearray()
    recorded: list[int] = []
    files: dict[str, bytes] = {}

    def append(name: str, table: bytes) -> int:
        gpa = base + len(blob)
        blob.extend(table)
        _pad8(blob)
        if table[:4] not in (b"DSDT", b"XSDT"):
            recorded.append(gpa)
        files[name] = table
        return gpa

    dsdt_gpa = append("DSDT.aml", build_dsdt(resolved, options))
    append("FACP.aml", build_fadt(dsdt_gpa, aarch64))
    append("APIC.aml", build_madt(options.vp_count, aarch64))
    vp_nodes = _vp_vnodes(resolved, options.vp_count)
    processors = [(vp + 1 if aarch64 else vp, node) for vp, node in enumerate(vp_nodes)]
    memory = [(r.range.start, r.range.size, r.vnode) for r in layout.ram]
    append("SRAT.aml", build_srat(memory, processors, aarch64))
    ssdt = build_pcie_ssdt(resolved)
    if ssdt is not None:
        entries = [
            (rc.ecam_bus0_base, rc.segment, rc.start_bus, rc.end_bus)
            for rc in resolved.pcie_root_complexes
        ]
        append("MCFG.aml", build_mcfg(entries))
        append("SSDT.aml", ssdt)
    xsdt_gpa = append("XSDT.aml", build_xsdt(recorded))
    files["RSDP.bin"] = build_rsdp(xsdt_gpa)
    return files


def _vp_vnodes(resolved: object, vp_count: int) -> list[int]:
    """VPs spread evenly over the vNUMA nodes, in node order."""
    from vmlayout.policy import ResolvedLayout

    assert isinstance(resolved, ResolvedLayout)
    nodes = len(resolved.config.node_mem_sizes)
    return [vp * nodes // vp_count for vp in range(vp_count)]


def tables_blob_size(files: dict[str, bytes]) -> int:
    """Bytes of the table blob (everything but the RSDP page), 8-byte padded."""
    return sum(len(t) + (-len(t) % 8) for n, t in files.items() if n != "RSDP.bin")
