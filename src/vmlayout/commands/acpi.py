"""`emit acpi`: every ACPI table of the layout, one file per table."""

from __future__ import annotations

import argparse

from vmlayout.commands import CommandGroups, add_config_arguments, resolve_from_args


def _int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def add_topology_options(parser: argparse.ArgumentParser) -> None:
    """VP count and socket size: which vNUMA node each VP sits in (SRAT, MADT)."""
    parser.add_argument("--vp-count", type=_int, default=2, help="processors (default 2)")
    parser.add_argument(
        "--vps-per-socket",
        type=_int,
        default=None,
        help="VPs per socket; VP v sits in vNUMA node (v / N) %% nodes (default: one "
        "socket holds every VP on x86_64, as the reference on a host socket that large; "
        "1 on aarch64)",
    )


def add_acpi_options(parser: argparse.ArgumentParser) -> None:
    add_topology_options(parser)
    parser.add_argument(
        "--pci0",
        action="store_true",
        help="x86: describe the chipset windows with \\_SB.PCI0 instead of \\_SB.VMOD",
    )
    parser.add_argument("--serial", action="store_true", help="add the serial port devices")
    parser.add_argument("--no-vmbus", action="store_true", help="omit the VMBus device")
    x86 = parser.add_argument_group("x86_64 platform (not decided by the layout)")
    x86.add_argument("--no-ioapic", action="store_true", help="no IO-APIC in the MADT")
    x86.add_argument("--pic", action="store_true", help="legacy PIC present (MADT PCAT_COMPAT)")
    x86.add_argument("--pit", action="store_true", help="PIT present (IRQ0 -> GSI 2 override)")
    x86.add_argument(
        "--vtd-address-width", type=_int, default=48, help="DMAR host address width (48)"
    )
    arm = parser.add_argument_group(
        "aarch64 platform (not decided by the layout; defaults: OpenVMM on a Linux host)"
    )
    arm.add_argument("--gic-distributor-base", type=_int, default=0xFFFF_0000, help="(0xffff0000)")
    arm.add_argument(
        "--gic-redistributors-base",
        type=_int,
        default=0xEFFF_0000,
        help="first VP's redistributor; VP v at + v * 0x20000 (0xefff0000)",
    )
    arm.add_argument(
        "--gic-msi",
        choices=("its", "v2m", "none"),
        default="its",
        help="PCIe MSI controller: GICv3 ITS, GICv2m frame, or none (its)",
    )
    arm.add_argument("--gic-its-base", type=_int, default=0xEFFC_0000, help="(0xeffc0000)")
    arm.add_argument(
        "--gic-v2m-base", type=_int, default=0xEFFE_8000, help="v2m MSI frame (0xeffe8000)"
    )
    arm.add_argument("--gic-v2m-spis", type=_int, default=64, help="v2m SPI count (64)")
    arm.add_argument(
        "--gic-interrupts",
        type=_int,
        default=992,
        help="GIC interrupt lines; SMMU and v2m SPIs are dealt from the top (992)",
    )
    arm.add_argument(
        "--timer-ppi", type=_int, default=20, help="virtual timer PPI INTID, GTDT (20)"
    )
    arm.add_argument(
        "--hyperv",
        action="store_true",
        help="FADT hypervisor vendor identity 'MsHyperV' (default: none, as without Hyper-V)",
    )


def acpi_options_from_args(args: argparse.Namespace) -> object:
    from vmlayout.acpi.dsdt import AcpiOptions
    from vmlayout.errors import VmLayoutError
    from vmlayout.platform import GicPlatform

    if args.pci0 and args.arch == "aarch64":
        raise VmLayoutError("invalid_argument", "--pci0: PCI0 exists only on x86_64")
    gic = GicPlatform(
        distributor_base=args.gic_distributor_base,
        redistributors_base=args.gic_redistributors_base,
        msi=args.gic_msi,
        its_base=args.gic_its_base,
        v2m_frame_base=args.gic_v2m_base,
        v2m_spi_count=args.gic_v2m_spis,
        virt_timer_ppi=args.timer_ppi,
        nr_irqs=args.gic_interrupts,
        hypervisor_vendor=int.from_bytes(b"MsHyperV", "little") if args.hyperv else 0,
    )
    return AcpiOptions(
        vp_count=args.vp_count,
        vps_per_socket=args.vps_per_socket,
        pci0=args.pci0,
        serial=args.serial,
        vmbus=not args.no_vmbus,
        ioapic=not args.no_ioapic,
        pic=args.pic,
        pit=args.pit,
        vtd_address_width=args.vtd_address_width,
        gic=gic,
    )


def register(groups: CommandGroups) -> None:
    acpi = groups.emit.add_parser(
        "acpi",
        help="ACPI tables (DSDT, FACP, APIC, SRAT, SLIT, MCFG, SSDT, CEDT, IVRS, DMAR, "
        "IORT, PPTT, GTDT, XSDT, RSDP)",
        description="Write one file per ACPI table into DIR, named by signature "
        "(RSDP.bin for the RSDP), exactly the set the reference builds: SLIT with more "
        "than one vNUMA node or configured numa_distances; MCFG, SSDT (and IORT on "
        "aarch64) with PCIe root complexes; CEDT with CXL; IVRS / DMAR with AMD-Vi / "
        "VT-d; PPTT and GTDT on aarch64.",
    )
    add_config_arguments(acpi)
    acpi.add_argument("-o", "--output", required=True, metavar="DIR")
    add_acpi_options(acpi)
    acpi.set_defaults(handler=_emit_acpi)


def _emit_acpi(args: argparse.Namespace) -> int:
    from vmlayout.acpi.dsdt import AcpiOptions, build_acpi_tables
    from vmlayout.errors import VmLayoutError
    from vmlayout.output import write_directory_atomic

    options = acpi_options_from_args(args)
    assert isinstance(options, AcpiOptions)
    resolved = resolve_from_args(args)
    if options.pci0 and resolved.arch.value != "x86_64":
        raise VmLayoutError("invalid_argument", "--pci0: PCI0 exists only on x86_64")
    files = build_acpi_tables(resolved, options)
    write_directory_atomic(args.output, files)
    print(f"wrote {len(files)} tables to {args.output}: {', '.join(files)}")
    return 0
