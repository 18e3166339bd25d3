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


def _probe(args: argparse.Namespace) -> int:
    from vmlayout.inspect.probe import probe_script

    del args
    sys.stdout.write(probe_script())
    return 0
