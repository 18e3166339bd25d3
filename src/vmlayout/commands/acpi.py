"""`emit acpi`: every ACPI table of the layout, one file per table."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from vmlayout.commands import CommandGroups, add_config_arguments, resolve_from_args
from vmlayout.commands.platform import (
    ACPI,
    DEVICES,
    GIC,
    PROCESSORS,
    X86,
    add_platform_arguments,
)

#: What `emit acpi` describes besides the layout.
ACPI_GROUPS = (PROCESSORS, DEVICES, ACPI, X86, GIC)


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
    add_platform_arguments(acpi, ACPI_GROUPS)
    acpi.set_defaults(handler=_emit_acpi)


def _emit_acpi(args: argparse.Namespace) -> int:
    from vmlayout.acpi.dsdt import build_acpi_tables
    from vmlayout.output import write_directory_atomic

    files = build_acpi_tables(resolve_from_args(args))
    stale = write_directory_atomic(
        args.output, files, remove=lambda directory: _stale_tables(directory, files)
    )
    print(f"wrote {len(files)} tables to {args.output}: {', '.join(files)}")
    if stale:
        print(f"removed {len(stale)} table(s) of an earlier run: {', '.join(stale)}")
    return 0


def _stale_tables(directory: Path, written: Mapping[str, bytes]) -> list[str]:
    """Tables an earlier `emit acpi` left in DIR that this run does not write (say an
    SSDT after the root complexes were removed): a file named `<SIG>.aml` holding that
    table with vmlayout's OEM identity. Any other file is left alone."""
    from vmlayout.acpi.sdt import HEADER, OEM_IDS
    from vmlayout.acpi.tables import TABLES
    from vmlayout.errors import VmLayoutError
    from vmlayout.inputs import read_bytes

    stale = []
    for kind in TABLES:
        name, signature = kind.file, kind.signature
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
        if header["signature"] == signature and header["oem_id"] in OEM_IDS:
            stale.append(name)
    return stale
