"""`probe`, `verify` and `check linux`: what a real guest sees of the layout."""

from __future__ import annotations

import argparse
import sys

from vmlayout.commands import CommandGroups


def register(groups: CommandGroups) -> None:
    probe = groups.top.add_parser(
        "probe",
        help="print a shell script that collects a guest's view for `verify`",
        description="Print a POSIX sh script (busybox is enough). Run it as root in the "
        "guest: `sh probe.sh OUT.tar.gz` copies /proc/iomem, /sys/firmware/acpi/tables, "
        "/sys/firmware/fdt, /sys/firmware/memmap, the NUMA nodes, CPU and PCI device files "
        "under their own paths, and the kernel log as dmesg.txt, into one .tar.gz.",
    )
    probe.set_defaults(handler=_probe)
    register_verify(groups)
    register_smbios(groups)
    register_check_linux(groups)


def _probe(args: argparse.Namespace) -> int:
    from vmlayout.inspect.probe import probe_script

    del args
    sys.stdout.write(probe_script())
    return 0


def add_verify_options(parser: argparse.ArgumentParser) -> None:
    """Every processor and platform option (as `emit all`), and those of `emit e820`."""
    from vmlayout.commands.platform import ALL_GROUPS, add_platform_arguments, int_argument

    add_platform_arguments(parser, ALL_GROUPS)
    e820 = parser.add_argument_group("x86_64 E820 (as emit e820)")
    e820.add_argument(
        "--acpi-len",
        type=int_argument,
        default=None,
        help="ACPI table bytes (default: the tables' own size, as emit all)",
    )
    e820.add_argument("--smbios-len", type=int_argument, default=0)
    e820.add_argument("--additional-pages", type=int_argument, default=0)


def register_verify(groups: CommandGroups) -> None:
    from vmlayout.commands import add_config_arguments

    verify = groups.top.add_parser(
        "verify",
        help="compare what a running guest saw (a `probe` dump) with the layout",
        description="Compare GUEST (the .tar.gz `vmlayout probe` writes, or its unpacked "
        "directory) with CONFIG's layout and the artifacts vmlayout writes for it with the "
        "same options: ACPI tables and the FDT byte for byte, the firmware memory map and "
        "/proc/iomem against the E820 (or the tree's memory), NUMA nodes, CPU counts, PCI "
        "BARs inside their windows, and known Linux messages in dmesg.txt. Exit 0 when "
        "the guest saw the layout, 1 when not, 2 on bad input.",
    )
    add_config_arguments(verify)
    verify.add_argument("guest", metavar="GUEST", help="probe .tar.gz or directory")
    verify.add_argument("--format", choices=("table", "json"), default="table")
    add_verify_options(verify)
    verify.set_defaults(handler=_verify)


def expectation_from_args(args: argparse.Namespace) -> object:
    """What vmlayout writes for CONFIG with these options (the `Expectation`)."""
    from vmlayout.acpi.dsdt import build_acpi_tables, tables_blob_size
    from vmlayout.commands import resolve_from_args
    from vmlayout.devicetree.linux import linux_dtb_of
    from vmlayout.firmware.e820 import build_e820
    from vmlayout.inspect.verify import Expectation

    resolved = resolve_from_args(args)
    config = resolved.config
    arch = resolved.arch.value
    acpi = build_acpi_tables(resolved)
    layout = resolved.memory_layout
    e820: tuple[object, ...] = ()
    first = layout.ram[0].range
    if arch == "x86_64" and first.start == 0 and first.end >= 0x10_0000:
        acpi_len = args.acpi_len if args.acpi_len is not None else tables_blob_size(acpi)
        e820 = build_e820(layout, acpi_len, args.smbios_len, args.additional_pages)
    dtb = linux_dtb_of(resolved) if arch == "aarch64" else None
    windows: dict[int, list[tuple[tuple[int, int], int, int]]] = {}
    bridges: list[tuple[int, int]] = []
    pci0 = config.platform.pci0 and arch == "x86_64"
    if pci0:
        for w in (resolved.chipset.low, resolved.chipset.high):
            if not w.is_empty():
                windows.setdefault(0, []).append(((w.start, w.end), 0, 0))
                bridges.append((w.start, w.end))
    for rc in resolved.pcie_root_complexes:
        for w in (rc.low_mmio, rc.high_mmio):
            if not w.is_empty():
                owner = ((w.start, w.end), rc.start_bus, rc.end_bus)
                windows.setdefault(rc.segment, []).append(owner)
                bridges.append((w.start, w.end))
    processors = config.processors
    return Expectation(
        resolved=resolved,
        acpi=acpi,
        e820=e820,  # type: ignore[arg-type]
        dtb=dtb,
        vp_count=processors.vp_count,
        vp_vnodes=processors.vnodes(len(config.node_mem_sizes), arch),
        windows={k: tuple(v) for k, v in windows.items()},
        bridge_windows=tuple(bridges),
        pci0=pci0,
    )


def _verify(args: argparse.Namespace) -> int:
    import json

    from vmlayout.inspect.probe import read_guest
    from vmlayout.inspect.verify import Expectation, facts_json, facts_table, verify

    expect = expectation_from_args(args)
    assert isinstance(expect, Expectation)
    dump = read_guest(args.guest)
    facts = verify(expect, dump)
    arch = expect.resolved.arch.value
    if args.format == "json":
        sys.stdout.write(json.dumps(facts_json(facts, arch)) + "\n")
    else:
        sys.stdout.write(facts_table(facts, arch))
    return 1 if any(f.mismatch for f in facts) else 0


def register_check_linux(groups: CommandGroups) -> None:
    from vmlayout.commands import add_config_arguments

    check = groups.check.add_parser(
        "linux",
        help="what Linux will complain about in this config's views (exit 1 on any)",
        description="Name each known finding (measured by booting Linux 6.1 on vmlayout's "
        "artifacts) that CONFIG with these options triggers, with the kernel message the "
        "guest will print and what it costs. Exit 0 when none, 1 otherwise.",
    )
    add_config_arguments(check)
    check.add_argument("--format", choices=("table", "json"), default="table")
    add_verify_options(check)
    check.set_defaults(handler=_check_linux)


def _check_linux(args: argparse.Namespace) -> int:
    import json

    from vmlayout.commands import resolve_from_args
    from vmlayout.inspect.linux_findings import triggered

    found = triggered(resolve_from_args(args))
    if args.format == "json":
        doc = [
            {"finding": f.key, "message": f.message, "effect": f.effect, "because": why}
            for f, why in found
        ]
        sys.stdout.write(json.dumps({"findings": doc}) + "\n")
    else:
        for f, why in found:
            sys.stdout.write(f"✗ {f.key}: {why}\n    Linux: {f.message}\n    effect: {f.effect}\n")
        sys.stdout.write(f"{len(found)} Linux finding(s)\n" if found else "no Linux findings\n")
    return 1 if found else 0


def register_smbios(groups: CommandGroups) -> None:
    from vmlayout.commands import add_config_arguments
    from vmlayout.commands.platform import X86, add_platform_arguments, int_argument
    from vmlayout.platform import SMBIOS_DEFAULT_BIOS_DATE as DEFAULT_BIOS_DATE
    from vmlayout.platform import SMBIOS_SCAN_AREA

    DEFAULT_ADDRESS = SMBIOS_SCAN_AREA[0]
    smbios = groups.emit.add_parser(
        "smbios",
        help="a minimal SMBIOS 3.0 blob so Linux trusts an ECAM above 4 GiB (not the reference's)",
        description="Write an SMBIOS 3.0 entry point followed by its table (BIOS "
        "Information with platform.x86.bios_date, or "
        f"{DEFAULT_BIOS_DATE} when the config has none; End-of-Table), laid out at ADDRESS. "
        "A direct-booted Linux has no SMBIOS from the reference and then ignores an MCFG "
        "entry above 4 GiB; with a BIOS date of 2010 or later it uses it. Linux without "
        "EFI finds the entry point by scanning [0xF0000, 1 MiB), so load the blob there.",
    )
    add_config_arguments(smbios)
    smbios.add_argument("-o", "--output", required=True, metavar="FILE")
    smbios.add_argument(
        "--smbios-address",
        type=int_argument,
        default=DEFAULT_ADDRESS,
        metavar="ADDR",
        help=f"where the blob is loaded ({DEFAULT_ADDRESS:#x})",
    )
    add_platform_arguments(smbios, (X86,))
    smbios.set_defaults(handler=_emit_smbios)


def _emit_smbios(args: argparse.Namespace) -> int:
    from vmlayout.commands import load_config_from_args
    from vmlayout.firmware.smbios import DEFAULT_BIOS_DATE, build_smbios
    from vmlayout.output import write_atomic

    date = load_config_from_args(args).platform.x86.bios_date or DEFAULT_BIOS_DATE
    blob = build_smbios(args.smbios_address, date)
    write_atomic(args.output, blob)
    sys.stdout.write(f"wrote {len(blob)} bytes to {args.output}\n")
    return 0
