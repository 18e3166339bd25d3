"""`emit acpi`: every ACPI table of the layout, one file per table."""

from __future__ import annotations

import argparse

from vmlayout.commands import CommandGroups, add_config_arguments, resolve_from_args


def add_acpi_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vp-count", type=int, default=2, help="processors (default 2)")
    parser.add_argument(
        "--pci0",
        action="store_true",
        help="x86: describe the chipset windows with \\_SB.PCI0 instead of \\_SB.VMOD",
    )
    parser.add_argument("--serial", action="store_true", help="add the serial port devices")
    parser.add_argument("--no-vmbus", action="store_true", help="omit the VMBus device")


def acpi_options_from_args(args: argparse.Namespace) -> object:
    from vmlayout.acpi.dsdt import AcpiOptions
    from vmlayout.errors import VmLayoutError

    if args.pci0 and args.arch == "aarch64":
        raise VmLayoutError("invalid_argument", "--pci0: PCI0 exists only on x86_64")
    return AcpiOptions(
        vp_count=args.vp_count, pci0=args.pci0, serial=args.serial, vmbus=not args.no_vmbus
    )


def register(groups: CommandGroups) -> None:
    acpi = groups.emit.add_parser(
        "acpi",
        help="ACPI tables (DSDT, SSDT, SRAT, MCFG, FACP, APIC, XSDT, RSDP)",
        description="Write one file per ACPI table into DIR, named by signature "
        "(RSDP.bin for the RSDP). SSDT and MCFG exist only when there are PCIe root "
        "complexes.",
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
