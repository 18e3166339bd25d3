"""`emit dt-linux` / `emit dt-paravisor`: the device trees that carry the layout."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vmlayout.commands import CommandGroups, add_config_arguments, resolve_from_args


def register(groups: CommandGroups) -> None:
    linux = groups.emit.add_parser(
        "dt-linux",
        help="arm64 Linux direct-boot device tree (aarch64 configs)",
        description="The arm64 Linux direct-boot DTB: one memory node per RAM range and "
        "the VMBus node whose ranges carry the chipset windows.",
    )
    add_config_arguments(linux)
    linux.add_argument("-o", "--output", required=True, metavar="FILE.dtb")
    linux.add_argument("--dts", action="store_true", help="also print the tree as dts")
    linux.add_argument("--cpus", type=int, default=1, help="CPU nodes (default 1)")
    linux.add_argument("--serial", action="store_true", help="add the two PL011 UARTs")
    linux.add_argument("--bootargs", default="", help="kernel command line")
    linux.set_defaults(handler=_emit_linux)

    para = groups.emit.add_parser(
        "dt-paravisor",
        help="paravisor (IGVM host) device tree with VTL0 and VTL2 VMBus windows (x86_64)",
        description="The host device tree the IGVM loader hands the paravisor: memory "
        "map (descending), VTL0 VMBus windows (low, high) and the VTL2 window.",
    )
    add_config_arguments(para)
    para.add_argument("-o", "--output", required=True, metavar="FILE.dtb")
    para.add_argument("--dts", action="store_true", help="also print the tree as dts")
    para.add_argument("--vp-count", type=int, default=1, help="processors (default 1)")
    para.add_argument("--vmbus-redirection", action="store_true")
    para.add_argument("--memory-allocation-mode", choices=("host", "vtl2"), default="host")
    para.add_argument("--bootargs", default="", help="paravisor command line")
    para.set_defaults(handler=_emit_paravisor)


def _arch_check(resolved: Any, arch: str, what: str) -> None:
    from vmlayout.errors import VmLayoutError

    if resolved.arch.value != arch:
        raise VmLayoutError("unsupported_arch", f"arch: {what} is built for {arch} configs only")


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
    from vmlayout.devicetree.linux import LinuxDtOptions, build_linux_dtb

    options = LinuxDtOptions(cpu_count=args.cpus, serial=args.serial, bootargs=args.bootargs)
    resolved = resolve_from_args(args)
    _arch_check(resolved, "aarch64", "the Linux direct-boot device tree")
    return _finish(args, build_linux_dtb(resolved.memory_layout.ram, resolved.chipset, options))


def vp_vnodes(resolved: Any, vp_count: int) -> tuple[int, ...]:
    nodes = len(resolved.config.node_mem_sizes)
    return tuple(vp * nodes // vp_count for vp in range(vp_count))


def _emit_paravisor(args: argparse.Namespace) -> int:
    from vmlayout.devicetree.paravisor import ParavisorDtOptions, build_paravisor_dtb, memory_map

    options = ParavisorDtOptions(
        vp_count=args.vp_count,
        vmbus_redirection=args.vmbus_redirection,
        memory_allocation_mode=args.memory_allocation_mode,
        bootargs=args.bootargs,
    )
    resolved = resolve_from_args(args)
    _arch_check(resolved, "x86_64", "the IGVM paravisor device tree")
    blob = build_paravisor_dtb(
        memory_map(resolved.memory_layout.ram),
        resolved.chipset,
        vp_vnodes(resolved, args.vp_count),
        options,
    )
    return _finish(args, blob)
