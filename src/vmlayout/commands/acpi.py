"""`emit acpi`: every ACPI table of the layout, one file per table."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from vmlayout.commands import CommandGroups, add_config_arguments, resolve_from_args
from vmlayout.commands.platform import (
    SOCKET_NOTE,
    add_gic_arguments,
    add_vp_arguments,
    gic_from_args,
    int_argument,
)


def add_acpi_options(parser: argparse.ArgumentParser) -> None:
    add_vp_arguments(parser, 2, SOCKET_NOTE)
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
        "--vtd-address-width", type=int_argument, default=48, help="DMAR host address width (48)"
    )
    parser.add_argument(
        "--cxl-window-restrictions",
        type=int_argument,
        default=0,
        metavar="BITS",
        help="CEDT CFMWS window restrictions of every CXL fixed memory window, e.g. 0x6 "
        "for volatile + persistent (0, as the reference)",
    )
    add_gic_arguments(parser)
    parser.add_argument(
        "--hyperv",
        action="store_true",
        help="FADT hypervisor vendor identity 'MsHyperV' (default: none, as without Hyper-V)",
    )


def acpi_options_from_args(args: argparse.Namespace) -> object:
    from vmlayout.acpi.dsdt import AcpiOptions
    from vmlayout.errors import VmLayoutError

    if args.pci0 and args.arch == "aarch64":
        raise VmLayoutError("invalid_argument", "--pci0: PCI0 exists only on x86_64")
    vendor = int.from_bytes(b"MsHyperV", "little") if args.hyperv else 0
    gic = gic_from_args(args, hypervisor_vendor=vendor)
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
        cxl_window_restrictions=args.cxl_window_restrictions,
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
    stale = write_directory_atomic(
        args.output, files, remove=lambda directory: _stale_tables(directory, files)
    )
    print(f"wrote {len(files)} tables to {args.output}: {', '.join(files)}")
    if stale:
        print(f"removed {len(stale)} table(s) of an earlier run: {', '.join(stale)}")
    return 0


#: Signatures of every table `emit acpi` can write (each as `<SIGNATURE>.aml`).
TABLE_SIGNATURES = (
    "DSDT", "FACP", "APIC", "SRAT", "SLIT", "MCFG", "SSDT",
    "CEDT", "IVRS", "DMAR", "IORT", "GTDT", "PPTT", "XSDT",
)  # fmt: skip


def _stale_tables(directory: Path, written: Mapping[str, bytes]) -> list[str]:
    """Tables an earlier `emit acpi` left in DIR that this run does not write (say an
    SSDT after the root complexes were removed): a file named `<SIG>.aml` holding that
    table with vmlayout's OEM identity. Any other file is left alone."""
    from vmlayout.acpi.tables import HEADER, OEM_IDS
    from vmlayout.errors import VmLayoutError
    from vmlayout.inputs import read_bytes

    stale = []
    for signature in TABLE_SIGNATURES:
        name = f"{signature}.aml"
        path = directory / name
        if name in written or not path.is_file():
            continue
        try:
            data = read_bytes(path)
        except VmLayoutError:
            continue
        if len(data) < HEADER.size:
            continue
        header = HEADER.unpack(data)
        if header["signature"] == signature.encode() and header["oem_id"] in OEM_IDS:
            stale.append(name)
    return stale
