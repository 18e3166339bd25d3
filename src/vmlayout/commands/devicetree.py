"""`emit dt-linux` / `emit dt-paravisor`: the device trees that carry the layout."""

from __future__ import annotations

import argparse
import sys

from vmlayout.commands import CommandGroups, add_config_arguments, resolve_for_view
from vmlayout.commands.platform import (
    DEVICES,
    GIC,
    LINUX,
    PARAVISOR,
    PROCESSORS,
    add_platform_arguments,
)


def register(groups: CommandGroups) -> None:
    linux = groups.emit.add_parser(
        "dt-linux",
        help="arm64 Linux direct-boot device tree (aarch64 configs)",
        description="The arm64 Linux direct-boot DTB as OpenVMM's loader writes it: CPUs, "
        "one memory node per RAM range, GICv3 with its ITS or v2m frame, the virtual "
        "timer, one SMMUv3 per root complex with an SMMU, one pcie@ host bridge per root "
        "complex (ECAM, bus range, low and high windows, MSI parent, iommu-map), the "
        "VMBus node whose ranges carry the chipset windows, and /chosen with the initrd "
        "at the first RAM address + 16 MiB. Every option below is a platform choice the "
        "layout does not decide; defaults are OpenVMM's on a Linux host.",
    )
    add_config_arguments(linux)
    linux.add_argument("-o", "--output", required=True, metavar="FILE.dtb")
    linux.add_argument("--dts", action="store_true", help="also print the tree as dts")
    add_platform_arguments(linux, (PROCESSORS, DEVICES, GIC, LINUX))
    linux.set_defaults(handler=_emit_linux)

    para = groups.emit.add_parser(
        "dt-paravisor",
        help="paravisor (IGVM host) device tree with VTL0 and VTL2 VMBus windows (x86_64)",
        description="The host device tree the IGVM loader hands the paravisor: memory "
        "map (descending; the VTL2 range VTL2-protectable), VPs in their vNUMA nodes, "
        "VTL0 VMBus windows (low, high) and the VTL2 window.",
    )
    add_config_arguments(para)
    para.add_argument("-o", "--output", required=True, metavar="FILE.dtb")
    para.add_argument("--dts", action="store_true", help="also print the tree as dts")
    add_platform_arguments(para, (PROCESSORS, PARAVISOR))
    para.set_defaults(handler=_emit_paravisor)


def _finish(args: argparse.Namespace, blob: bytes) -> int:
    from vmlayout.devicetree.fdt import read_fdt, to_dts
    from vmlayout.output import write_atomic

    write_atomic(args.output, blob)
    if args.dts:
        sys.stdout.write(to_dts(read_fdt(blob)))
    else:
        sys.stdout.write(f"wrote {len(blob)} bytes to {args.output}\n")
    return 0


def _emit_linux(args: argparse.Namespace) -> int:
    from vmlayout.devicetree.linux import linux_dtb_of

    return _finish(args, linux_dtb_of(resolve_for_view(args, "linux-dt")))


def _emit_paravisor(args: argparse.Namespace) -> int:
    from vmlayout.devicetree.paravisor import paravisor_dtb_of

    return _finish(args, paravisor_dtb_of(resolve_for_view(args, "paravisor-dt")))
