"""The DSDT and PCIe SSDT devices that carry the layout (spec 04 §3), and the whole
table set of one VM.

The chipset windows come in as the explicit `ChipsetMmioRanges` value; empty windows
are skipped where the spec says so and rejected where an empty one would be a bug.
"""

from __future__ import annotations

import uuid

from vmlayout.acpi.aml import (
    Aml,
    And,
    Buffer,
    CreateDWordField,
    Device,
    EisaId,
    Else,
    If,
    Integer,
    Interrupt,
    IoPort,
    LEqual,
    Memory32Fixed,
    Method,
    Name,
    Or,
    Package,
    QWordMemory,
    ResourceTemplate,
    Return,
    Store,
    String,
    WordBusNumber,
    arg,
    seg,
)
from vmlayout.acpi.cxl import CxlHostBridge, build_cedt
from vmlayout.acpi.iommu import (
    IommuUnit,
    IortRootComplex,
    IortSmmu,
    build_dmar,
    build_iort,
    build_ivrs,
)
from vmlayout.acpi.tables import (
    DSDT_FLAVOUR,
    SSDT_FLAVOUR,
    build_fadt,
    build_gtdt,
    build_madt,
    build_mcfg,
    build_pptt,
    build_rsdp,
    build_slit,
    build_srat,
    build_table,
    build_xsdt,
)
from vmlayout.arch import Arch, InterruptController
from vmlayout.errors import VmLayoutError
from vmlayout.layout import ChipsetMmioRanges
from vmlayout.ranges import PAGE_SIZE, MemoryRange
from vmlayout.zones import APIC_PAGE_SIZE, IOAPIC_BASE, LAPIC_BASE, UART_BASES


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


#: The reference's PCI0 `_OSC`: an 8-byte buffer where the OS passes (and Linux expects
#: back) 12, so Linux keeps no PCIe control (`_OSC: ... (AE_TYPE)`); `platform.pci0_osc =
#: "grant"` uses the root complexes' `_OSC` instead.
OSC_PCI0 = Method("_OSC", 4, (Return(Buffer(bytes((0x10, 0, 0, 0, 0, 0, 0, 0)))),))


def pci0_device(chipset: ChipsetMmioRanges, osc: str = "reference") -> Device:
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
            OSC_PCI0 if osc == "reference" else osc_method(cxl=False),
            Name("_PRT", Package(0, b"")),
            Name("_CRS", ResourceTemplate(tuple(descriptors))),
        ),
    )


def vmbus_device(parent: str, arch: Arch) -> Device:
    """The VMBus device; on a GIC platform it carries its interrupt (INTID 18)."""
    gic = arch.spec.interrupt_controller is InterruptController.GIC
    template = ResourceTemplate((Interrupt(18, edge=True),) if gic else ())
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


def build_dsdt(resolved: object) -> bytes:
    """The DSDT of the VM `resolved` describes: its chipset windows and the devices its
    platform section lists (serial ports, VMBus, virtio-mmio), one processor per VP."""
    from vmlayout.policy import ResolvedLayout

    assert isinstance(resolved, ResolvedLayout)
    options = resolved.config.platform
    aarch64 = resolved.arch.spec.interrupt_controller is InterruptController.GIC
    chipset = resolved.chipset
    objects: list[Aml] = [
        Name("\\_S0", Package.of_bytes((0, 0))),
        Name("\\_S5", Package.of_bytes((0, 0))),
    ]
    if aarch64:
        objects.append(vmod_device(chipset))
        if options.vmbus:
            objects.append(vmbus_device("\\_SB.VMOD", Arch.AARCH64))
        if options.serial:
            for n, (base, irq) in enumerate(zip(UART_BASES, (33, 34), strict=True)):
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
                            (
                                Memory32Fixed(LAPIC_BASE, APIC_PAGE_SIZE),
                                Memory32Fixed(IOAPIC_BASE, APIC_PAGE_SIZE),
                            )
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
        device = pci0_device(chipset, options.pci0_osc) if options.pci0 else vmod_device(chipset)
        objects.append(device)
        if options.vmbus:
            objects.append(vmbus_device(parent, Arch.X86_64))
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
    objects += processor_devices(resolved.config.processors.vp_count)
    return dsdt_table(objects)


def root_complex_name(index: int) -> str:
    if not 0 <= index < 1000:
        raise VmLayoutError("acpi_error", f"root complex {index}: at most 1000 are nameable")
    digits = str(index)
    return "PCI0"[: 4 - len(digits)] + digits


PCIE_OSC_UUID = uuid.UUID("33DB4D5B-1FF7-401C-9657-7441C03DD766")
CXL_OSC_UUID = uuid.UUID("68F2D50B-C469-4D8A-BD3D-941A103FD3FC")
PCI_DSM_UUID = uuid.UUID("E5C937D0-3553-4D7A-9117-EA4D19C3434D")


def _uuid_buffer(value: uuid.UUID) -> Buffer:
    """ToUUID(): the GUID in its mixed-endian byte order."""
    return Buffer(value.bytes_le)


def osc_method(cxl: bool) -> Method:
    """`_OSC`: grant every control the OS asks for under the PCIe UUID (and, on a CXL
    bridge, under the CXL UUID at revision 1); flag any other UUID (bit 2) or CXL
    revision (bit 1) as unrecognised. Returns the capabilities buffer it was given."""
    unknown_uuid = Or(seg("STS0"), Integer(0x04), seg("STS0"))
    otherwise: Aml
    if cxl:
        otherwise = Else(
            (
                If(
                    LEqual(arg(0), _uuid_buffer(CXL_OSC_UUID)),
                    (
                        If(LEqual(arg(1), Integer(1)), (Store(Integer(0), seg("STS0")),)),
                        Else((Or(seg("STS0"), Integer(0x02), seg("STS0")),)),
                    ),
                ),
                Else((unknown_uuid,)),
            )
        )
    else:
        otherwise = Else((unknown_uuid,))
    return Method(
        "_OSC",
        4,
        (
            CreateDWordField(arg(3), Integer(0), "STS0"),
            If(LEqual(arg(0), _uuid_buffer(PCIE_OSC_UUID)), (Store(Integer(0), seg("STS0")),)),
            otherwise,
            Return(arg(3)),
        ),
    )


def preserve_boot_config_dsm() -> Method:
    """`_DSM` of the PCI firmware spec: function 0 lists functions 0 and 5, function 5
    ("ignore PCI boot configurations") returns 0 so the OS keeps the VMM's bus numbers
    and BARs."""
    return Method(
        "_DSM",
        4,
        (
            If(
                LEqual(arg(0), _uuid_buffer(PCI_DSM_UUID)),
                (
                    If(LEqual(arg(2), Integer(0)), (Return(Buffer(bytes((0x21,)))),)),
                    If(LEqual(arg(2), Integer(5)), (Return(Integer(0)),)),
                ),
            ),
            Return(Buffer(b"")),
        ),
    )


def build_pcie_ssdt(resolved: object) -> bytes | None:
    """One device per root complex, then `\\VMOD` reserving every ECAM range."""
    from vmlayout.policy import ResolvedLayout

    assert isinstance(resolved, ResolvedLayout)
    complexes = resolved.pcie_root_complexes
    if not complexes:
        return None
    objects: list[Aml] = []
    for index, (rc, rc_config) in enumerate(
        zip(complexes, resolved.config.pcie_root_complexes, strict=True)
    ):
        for what, window in (("low", rc.low_mmio), ("high", rc.high_mmio)):
            if window.is_empty():
                raise VmLayoutError("acpi_error", f"{rc.name}: empty {what} MMIO window")
        cxl = rc_config.cxl_hdm_size is not None
        identity: tuple[Aml, ...]
        if cxl:
            identity = (
                Name("_HID", String("ACPI0016")),
                Name("_CID", Package.of((EisaId("PNP0A03"), EisaId("PNP0A08")))),
            )
        else:
            identity = (Name("_HID", EisaId("PNP0A08")), Name("_CID", EisaId("PNP0A03")))
        body: list[Aml] = [
            *identity,
            Name("_UID", Integer(index)),
            Name("_SEG", Integer(rc.segment)),
            Name("_BBN", Integer(rc.start_bus)),
            Name("_CCA", Integer(1)),
        ]
        if rc_config.numa_node is not None:
            body.append(Name("_PXM", Integer(rc_config.numa_node)))
        body.append(osc_method(cxl))
        if rc_config.preserve_bars:
            body.append(preserve_boot_config_dsm())
        body.append(
            Name(
                "_CRS",
                ResourceTemplate(
                    (
                        WordBusNumber(rc.start_bus, rc.end_bus - rc.start_bus + 1),
                        _qword(rc.low_mmio),
                        _qword(rc.high_mmio),
                    )
                ),
            )
        )
        objects.append(Device(root_complex_name(index), tuple(body)))
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


def rsdp_address(resolved: object) -> int:
    """Where the RSDP page goes (tables follow one page later): the platform's choice,
    else 0x18000 on x86 (tables at 0x19000, the ACPI area of the Linux E820 map) or RAM
    start + 8 MiB + 8 KiB on aarch64 as the reference's ACPI-stub boot does."""
    from vmlayout.policy import ResolvedLayout

    assert isinstance(resolved, ResolvedLayout)
    chosen = resolved.config.platform.rsdp_address
    if chosen is not None:
        return chosen
    if resolved.arch.spec.interrupt_controller is InterruptController.GIC:
        return resolved.memory_layout.ram[0].range.start + 0x80_0000 + 0x2000
    return 0x18000


def build_acpi_tables(resolved: object) -> dict[str, bytes]:
    """Every table by file name (`DSDT.aml` … `XSDT.aml`, `RSDP.bin`) of the VM
    `resolved` describes (processors and platform from its config), laid out in one
    blob in the reference's append order so the XSDT and X_DSDT pointers are real."""
    from vmlayout.policy import ResolvedLayout

    assert isinstance(resolved, ResolvedLayout)
    rsdp_gpa = rsdp_address(resolved)
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

    dsdt_gpa = append("DSDT.aml", build_dsdt(resolved))
    append(
        "FACP.aml", build_fadt(dsdt_gpa, resolved.arch, resolved.config.platform.hypervisor_vendor)
    )
    for name, table in _platform_tables(resolved):
        append(name, table)
    xsdt_gpa = append("XSDT.aml", build_xsdt(recorded))
    files["RSDP.bin"] = build_rsdp(xsdt_gpa)
    return files


def _iommu_units(resolved: object) -> list[tuple[int, IommuUnit]]:
    """(root-complex index, unit) per root complex with an IOMMU, in config order."""
    from vmlayout.policy import IommuKind, ResolvedLayout

    assert isinstance(resolved, ResolvedLayout)
    configs = resolved.config.pcie_root_complexes
    if resolved.iommu_kind is IommuKind.INTEL_VTD:
        for rc in configs:
            if rc.iommu is not IommuKind.INTEL_VTD:
                raise VmLayoutError(
                    "intel_vtd_not_on_every_root_complex",
                    f"root complex {rc.name!r} has no Intel VT-d unit; with Intel VT-d every "
                    "root complex needs one (a device outside every DRHD gets no MSIs once "
                    "interrupt remapping is on)",
                )
    return [
        (index, IommuUnit(rc.iommu.start, rc.segment, rc.start_bus, rc.end_bus))
        for index, rc in enumerate(resolved.pcie_root_complexes)
        if not rc.iommu.is_empty()
    ]


#: vNUMA nodes a SLIT is written for: it holds nodes² bytes (65,535 nodes is the
#: format's limit, far past what a table in guest memory can be); 4096 nodes are 16 MiB.
MAX_SLIT_NODES = 4096


def _platform_tables(resolved: object) -> list[tuple[str, bytes]]:
    """Every table after the FADT, in the reference's append order: MADT, SRAT, SLIT,
    then with root complexes MCFG, IORT (aarch64), SSDT, CEDT; then PPTT (aarch64),
    IVRS / DMAR (x86_64), GTDT (aarch64)."""
    from vmlayout.policy import IommuKind, ResolvedLayout

    assert isinstance(resolved, ResolvedLayout)
    config = resolved.config
    options, cpus = config.platform, config.processors
    aarch64 = resolved.arch.spec.interrupt_controller is InterruptController.GIC
    units = _iommu_units(resolved)
    nodes = len(config.node_mem_sizes)
    gic = options.gic
    x86 = options.x86
    out: list[tuple[str, bytes]] = []
    madt = build_madt(cpus.vp_count, resolved.arch, gic, x86.ioapic, x86.pic, x86.pit)
    out.append(("APIC.aml", madt))
    vnodes = cpus.vnodes(nodes, resolved.arch)
    processors = [(vp + 1 if aarch64 else vp, node) for vp, node in enumerate(vnodes)]
    memory = [(r.range.start, r.range.size, r.vnode) for r in resolved.memory_layout.ram]
    out.append(("SRAT.aml", build_srat(memory, processors, resolved.arch)))
    distances = config.numa_distances
    if nodes > 1 or distances:
        if nodes > MAX_SLIT_NODES:
            raise VmLayoutError(
                "too_many_numa_nodes",
                f"node_mem_sizes: {nodes} vNUMA nodes; the SLIT (nodes² bytes) is written "
                f"for at most {MAX_SLIT_NODES}",
            )
        out.append(("SLIT.aml", build_slit(nodes, distances)))
    ssdt = build_pcie_ssdt(resolved)
    if ssdt is not None:
        complexes = resolved.pcie_root_complexes
        ecam = [(rc.ecam_bus0_base, rc.segment, rc.start_bus, rc.end_bus) for rc in complexes]
        out.append(("MCFG.aml", build_mcfg(ecam)))
        if aarch64:
            smmu_units = units if resolved.iommu_kind is IommuKind.SMMU else []
            _, spis = gic.spi_layout(len(smmu_units))
            smmus = [
                IortSmmu(index, unit.segment, unit.base, event, gerr)
                for (index, unit), (event, gerr) in zip(smmu_units, spis, strict=True)
            ]
            nodes_rc = [IortRootComplex(i, rc.segment) for i, rc in enumerate(complexes)]
            out.append(("IORT.aml", build_iort(nodes_rc, smmus, gic.msi == "its")))
        out.append(("SSDT.aml", ssdt))
        bridges = [
            CxlHostBridge(index, rc.cxl_hdm, rc.cxl_chbcr)
            for index, (rc, cfg) in enumerate(
                zip(complexes, config.pcie_root_complexes, strict=True)
            )
            if cfg.cxl_hdm_size is not None
        ]
        if bridges:
            out.append(("CEDT.aml", build_cedt(bridges, options.cxl_window_restrictions)))
    if aarch64:
        out.append(("PPTT.aml", build_pptt(cpus.vp_count)))
    if resolved.iommu_kind is IommuKind.AMD_VI:
        out.append(("IVRS.aml", build_ivrs([unit for _, unit in units])))
    if resolved.iommu_kind is IommuKind.INTEL_VTD:
        dmar = build_dmar([unit for _, unit in units], x86.vtd_address_width)
        out.append(("DMAR.aml", dmar))
    if aarch64:
        out.append(("GTDT.aml", build_gtdt(gic.virt_timer_ppi)))
    return out


def tables_blob_size(files: dict[str, bytes]) -> int:
    """Bytes of the table blob (everything but the RSDP page), 8-byte padded."""
    return sum(len(t) + (-len(t) % 8) for n, t in files.items() if n != "RSDP.bin")
