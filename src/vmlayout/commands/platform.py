"""CLI options for what the layout does not decide (processors, the aarch64 GIC),
declared once so every command spells and defaults them alike. Defaults come from
`vmlayout.platform` / `vmlayout.topology`: the reference's values on a Linux host."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import Any

from vmlayout.platform import DEFAULT_GIC


def int_argument(text: str) -> int:
    """A non-negative integer in any base Python reads (`0x…`, `0o…`, decimal)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def add_vp_arguments(parser: argparse.ArgumentParser, default_count: int, arch_note: str) -> None:
    """--vp-count and --vps-per-socket: one name for the processor count everywhere."""
    parser.add_argument(
        "--vp-count",
        type=int_argument,
        default=default_count,
        metavar="N",
        help=f"processors (default {default_count})",
    )
    parser.add_argument(
        "--vps-per-socket",
        type=int_argument,
        default=None,
        metavar="N",
        help=f"VPs per socket; VP v sits in vNUMA node (v // N) %% nodes (default: {arch_note})",
    )


#: The default socket size, as every command that places VPs words it.
SOCKET_NOTE = (
    "one socket holds every VP on x86_64, as the reference on a host socket that large; "
    "1 on aarch64"
)


def add_gic_arguments(parser: argparse.ArgumentParser) -> None:
    """The aarch64 interrupt controller: the Linux tree and the MADT/GTDT/IORT can be
    asked for the same platform with the same words."""
    gic = parser.add_argument_group(
        "aarch64 platform (not decided by the layout; defaults: OpenVMM on a Linux host)"
    )
    d = DEFAULT_GIC
    gic.add_argument(
        "--gic-distributor-base",
        type=int_argument,
        default=d.distributor_base,
        metavar="ADDR",
        help=f"GICv3 distributor ({d.distributor_base:#x})",
    )
    gic.add_argument(
        "--gic-redistributors-base",
        type=int_argument,
        default=d.redistributors_base,
        metavar="ADDR",
        help=f"first VP's redistributor, 0x20000 per VP ({d.redistributors_base:#x}; "
        "OpenVMM uses 0xeffee000 on other hosts)",
    )
    gic.add_argument(
        "--gic-msi",
        choices=("its", "v2m", "none"),
        default=d.msi,
        help=f"PCIe MSI controller: GICv3 ITS, GICv2m frame, or none ({d.msi})",
    )
    gic.add_argument(
        "--gic-its-base",
        type=int_argument,
        default=d.its_base,
        metavar="ADDR",
        help=f"({d.its_base:#x})",
    )
    gic.add_argument(
        "--gic-v2m-base",
        type=int_argument,
        default=d.v2m_frame_base,
        metavar="ADDR",
        help=f"v2m MSI frame ({d.v2m_frame_base:#x})",
    )
    gic.add_argument(
        "--gic-v2m-spis",
        type=int_argument,
        default=d.v2m_spi_count,
        metavar="N",
        help=f"v2m SPI count, dealt from the top before the SMMUs' ({d.v2m_spi_count})",
    )
    gic.add_argument(
        "--gic-interrupts",
        type=int_argument,
        default=d.nr_irqs,
        metavar="N",
        help=f"GIC interrupt lines; SMMU SPIs are dealt top-down from N-1 ({d.nr_irqs})",
    )
    gic.add_argument(
        "--timer-ppi",
        type=int_argument,
        default=d.virt_timer_ppi,
        metavar="INTID",
        help=f"EL1 virtual timer interrupt, 16..31 ({d.virt_timer_ppi})",
    )


def gic_from_args(args: argparse.Namespace, **overrides: Any) -> Any:
    """The `GicPlatform` the options ask for (validated there)."""
    gic = replace(
        DEFAULT_GIC,
        distributor_base=args.gic_distributor_base,
        redistributors_base=args.gic_redistributors_base,
        msi=args.gic_msi,
        its_base=args.gic_its_base,
        v2m_frame_base=args.gic_v2m_base,
        v2m_spi_count=args.gic_v2m_spis,
        virt_timer_ppi=args.timer_ppi,
        nr_irqs=args.gic_interrupts,
    )
    return replace(gic, **overrides) if overrides else gic
