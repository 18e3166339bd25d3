"""`emit dt-linux` / `emit dt-paravisor`: the device trees that carry the layout."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vmlayout.commands import CommandGroups, add_config_arguments, resolve_from_args
from vmlayout.commands.platform import (
    add_gic_arguments,
    add_vp_arguments,
    gic_from_args,
    int_argument,
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
    add_vp_arguments(
        linux, 1, "1 on aarch64; accepted for uniformity, the tree carries no NUMA placement"
    )
    linux.add_argument("--serial", action="store_true", help="add the two SBSA UARTs")
    linux.add_argument("--bootargs", default="", help="kernel command line (default empty)")
    linux.add_argument(
        "--initrd-size",
        type=int_argument,
        default=0,
        metavar="BYTES",
        help="initrd bytes; linux,initrd-end = start + BYTES (default 0: no initrd)",
    )
    add_gic_arguments(linux)
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
    add_vp_arguments(para, 1, "one socket holds every VP")
    para.add_argument("--vmbus-redirection", action="store_true")
    para.add_argument("--memory-allocation-mode", choices=("host", "vtl2"), default="host")
    para.add_argument("--bootargs", default="", help="paravisor command line")
    para.set_defaults(handler=_emit_paravisor)


def _arch_check(resolved: Any, arch: str, what: str) -> None:
    from vmlayout.errors import require_arch

    require_arch(resolved.arch.value, arch, what)


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
    from vmlayout.devicetree.linux import LinuxDtOptions, linux_dtb_of

    options = LinuxDtOptions(
        vp_count=args.vp_count,
        vps_per_socket=args.vps_per_socket,
        serial=args.serial,
        bootargs=args.bootargs,
        initrd_size=args.initrd_size,
        gic=gic_from_args(args),
    )
    resolved = resolve_from_args(args)
    _arch_check(resolved, "aarch64", "the Linux direct-boot device tree")
    return _finish(args, linux_dtb_of(resolved, options))


def _emit_paravisor(args: argparse.Namespace) -> int:
    from vmlayout.devicetree.paravisor import ParavisorDtOptions, paravisor_dtb_of

    options = ParavisorDtOptions(
        vp_count=args.vp_count,
        vps_per_socket=args.vps_per_socket,
        vmbus_redirection=args.vmbus_redirection,
        memory_allocation_mode=args.memory_allocation_mode,
        bootargs=args.bootargs,
    )
    resolved = resolve_from_args(args)
    _arch_check(resolved, "x86_64", "the IGVM paravisor device tree")
    return _finish(args, paravisor_dtb_of(resolved, options))
