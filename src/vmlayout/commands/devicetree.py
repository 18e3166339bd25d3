"""`emit dt-linux` / `emit dt-paravisor`: the device trees that carry the layout."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vmlayout.commands import CommandGroups, add_config_arguments, resolve_from_args


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def add_vp_arguments(parser: argparse.ArgumentParser, default_count: int, arch_note: str) -> None:
    """--vp-count and --vps-per-socket: one name for the processor count everywhere."""
    parser.add_argument(
        "--vp-count", type=_int, default=default_count, help=f"processors (default {default_count})"
    )
    parser.add_argument(
        "--vps-per-socket",
        type=_int,
        default=None,
        metavar="N",
        help=f"VPs per socket; VP v sits in vNUMA node (v // N) %% nodes (default: {arch_note})",
    )


def add_gic_arguments(parser: argparse.ArgumentParser) -> None:
    """The aarch64 interrupt controller, spelled as in `emit acpi` so the tree and the
    MADT/GTDT can be asked for the same platform; defaults are OpenVMM's on a Linux
    host."""
    gic = parser.add_argument_group(
        "aarch64 platform (not decided by the layout; defaults: OpenVMM on a Linux host)"
    )
    gic.add_argument(
        "--gic-distributor-base",
        type=_int,
        default=0xFFFF_0000,
        metavar="ADDR",
        help="GICv3 distributor (0xffff0000)",
    )
    gic.add_argument(
        "--gic-redistributors-base",
        type=_int,
        default=0xEFFF_0000,
        metavar="ADDR",
        help="first VP's redistributor, 0x20000 per VP (0xefff0000; OpenVMM uses "
        "0xeffee000 on other hosts)",
    )
    gic.add_argument(
        "--gic-msi",
        choices=("its", "v2m", "none"),
        default="its",
        help="PCIe MSI controller and every pcie@ node's msi-parent: GICv3 ITS, GICv2m "
        "frame, or none (its)",
    )
    gic.add_argument(
        "--gic-its-base", type=_int, default=0xEFFC_0000, metavar="ADDR", help="(0xeffc0000)"
    )
    gic.add_argument(
        "--gic-v2m-base",
        type=_int,
        default=0xEFFE_8000,
        metavar="ADDR",
        help="v2m MSI frame (0xeffe8000)",
    )
    gic.add_argument(
        "--gic-v2m-spis",
        type=_int,
        default=64,
        metavar="N",
        help="v2m SPI count, dealt from the top before the SMMUs' (64)",
    )
    gic.add_argument(
        "--gic-interrupts",
        type=_int,
        default=992,
        metavar="N",
        help="GIC interrupt lines; SMMU SPIs are dealt top-down from N-1 (992)",
    )
    gic.add_argument(
        "--timer-ppi",
        type=_int,
        default=20,
        metavar="INTID",
        help="EL1 virtual timer interrupt, 16..31 (20)",
    )


def gic_from_args(args: argparse.Namespace) -> Any:
    from vmlayout.platform import GicPlatform

    return GicPlatform(
        distributor_base=args.gic_distributor_base,
        redistributors_base=args.gic_redistributors_base,
        msi=args.gic_msi,
        its_base=args.gic_its_base,
        v2m_frame_base=args.gic_v2m_base,
        v2m_spi_count=args.gic_v2m_spis,
        virt_timer_ppi=args.timer_ppi,
        nr_irqs=args.gic_interrupts,
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
        type=_int,
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
