"""CLI options for the VM description's processors and platform sections, declared once.

Every option here overrides one field of the config (`--vp-count` is
`processors.vp_count`, `--gic-its-base` is `platform.gic.its_base`); none is a setting
of one emitter. `resolve_from_args` applies the options a command was given to the
config it loaded, so every view of a run — and the `config.json` of `emit all` —
describes the same machine. An option not given leaves the config's value, and help
texts show the declared default (from `vmlayout.platform` / `vmlayout.topology`).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def int_argument(text: str) -> int:
    """A non-negative integer in any base Python reads (`0x…`, `0o…`, decimal)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


@dataclass(frozen=True, slots=True)
class Override:
    """One option: the config field it sets (a dotted path from the config's root) and,
    for a switch, the value it sets."""

    flag: str
    path: str
    group: str
    help: str
    #: None: the option takes a value (parsed by `parse`); otherwise a switch setting it.
    const: Any = None
    parse: Callable[[str], Any] = int_argument
    metavar: str = "N"
    choices: tuple[str, ...] | None = None
    #: A second spelling, used where no other option of the command has it.
    alias: str | None = None

    @property
    def dest(self) -> str:
        return "override_" + self.flag.lstrip("-").replace("-", "_")


#: Option groups, by what they describe; a command takes the groups it has views for.
PROCESSORS, DEVICES, ACPI, X86, MTRR, GIC, LINUX, PARAVISOR, UEFI = (
    "processors", "devices", "acpi", "x86", "mtrr", "gic", "linux", "paravisor", "uefi",
)  # fmt: skip
#: Every group: what `emit all`, `verify` and `where` take.
ALL_GROUPS = (PROCESSORS, DEVICES, ACPI, X86, MTRR, GIC, LINUX, PARAVISOR, UEFI)

_TITLES = {
    PROCESSORS: "processors (config section [processors])",
    DEVICES: "platform devices ([platform])",
    ACPI: "ACPI choices ([platform])",
    X86: "x86_64 platform ([platform.x86])",
    MTRR: "x86_64 initial MTRRs ([platform.mtrr])",
    GIC: "aarch64 interrupt controller ([platform.gic]; defaults: OpenVMM on a Linux host)",
    LINUX: "arm64 Linux direct boot ([platform.linux])",
    PARAVISOR: "paravisor host tree ([platform.paravisor])",
    UEFI: "UEFI ([platform.uefi])",
}

OVERRIDES: tuple[Override, ...] = (
    Override("--vp-count", "processors.vp_count", PROCESSORS, "virtual processors"),
    Override(
        "--vps-per-socket",
        "processors.vps_per_socket",
        PROCESSORS,
        "VPs per socket; VP v sits in vNUMA node (v // N) %% nodes",
    ),
    Override("--smt", "processors.smt", PROCESSORS, "two threads per core", const=True),
    Override(
        "--pci0",
        "platform.chipset_device",
        ACPI,
        "x86: describe the chipset windows with \\_SB.PCI0 instead of \\_SB.VMOD",
        const="pci0",
    ),
    Override(
        "--pci0-osc",
        "platform.pci0_osc",
        ACPI,
        "x86: PCI0's _OSC, reference (8 bytes) or grant (12 bytes, Linux gets PCIe control)",
        parse=str,
        metavar="KIND",
        choices=("reference", "grant"),
    ),
    Override("--serial", "platform.serial", DEVICES, "serial ports", const=True),
    Override("--no-vmbus", "platform.vmbus", DEVICES, "no VMBus", const=False),
    Override("--hyperv", "platform.hyperv", ACPI, "FADT hypervisor vendor 'MsHyperV'", const=True),
    Override("--rsdp-address", "platform.rsdp_address", ACPI, "RSDP page address", metavar="ADDR"),
    Override(
        "--cxl-window-restrictions",
        "platform.cxl_window_restrictions",
        ACPI,
        "CEDT CFMWS window restrictions of every CXL window, e.g. 0x6",
        metavar="BITS",
    ),
    Override("--no-ioapic", "platform.x86.ioapic", X86, "no IO-APIC in the MADT", const=False),
    Override("--pic", "platform.x86.pic", X86, "legacy PIC (MADT PCAT_COMPAT)", const=True),
    Override("--pit", "platform.x86.pit", X86, "PIT (IRQ0 -> GSI 2 override)", const=True),
    Override("--vtd-address-width", "platform.x86.vtd_address_width", X86, "DMAR width"),
    Override(
        "--bios-date",
        "platform.x86.bios_date",
        X86,
        "SMBIOS BIOS date of `emit smbios`, MM/DD/YYYY",
        parse=str,
        metavar="DATE",
    ),
    Override(
        "--loader",
        "platform.mtrr.loader",
        MTRR,
        "x86 loader whose DEF_TYPE and fixed MTRRs are written",
        parse=str,
        metavar="LOADER",
        choices=("linux", "uefi", "pcat"),
    ),
    Override(
        "--mtrr-policy",
        "platform.mtrr.policy",
        MTRR,
        "reference: as OpenVMM computes them; exact: RAM WB, everything else UC",
        parse=str,
        metavar="POLICY",
        choices=("reference", "exact"),
    ),
    Override(
        "--mtrr-count", "platform.mtrr.count", MTRR, "variable MTRRs the exact policy may use"
    ),
    Override(
        "--mtrr-approximate",
        "platform.mtrr.approximate",
        MTRR,
        "exact policy over budget: keep all non-RAM UC, leave some RAM UC",
        const=True,
    ),
    Override(
        "--gic-distributor-base",
        "platform.gic.distributor_base",
        GIC,
        "GICv3 distributor",
        metavar="ADDR",
    ),
    Override(
        "--gic-redistributors-base",
        "platform.gic.redistributors_base",
        GIC,
        "first VP's redistributor, 0x20000 per VP (OpenVMM uses 0xeffee000 on other hosts)",
        metavar="ADDR",
    ),
    Override(
        "--gic-msi",
        "platform.gic.msi",
        GIC,
        "PCIe MSI controller: GICv3 ITS, GICv2m frame, or none",
        parse=str,
        metavar="KIND",
        choices=("its", "v2m", "none"),
    ),
    Override("--gic-its-base", "platform.gic.its_base", GIC, "GICv3 ITS", metavar="ADDR"),
    Override("--gic-v2m-base", "platform.gic.v2m_frame_base", GIC, "v2m MSI frame", metavar="ADDR"),
    Override("--gic-v2m-spis", "platform.gic.v2m_spi_count", GIC, "v2m SPIs, dealt from the top"),
    Override(
        "--gic-interrupts",
        "platform.gic.nr_irqs",
        GIC,
        "GIC interrupt lines; SMMU SPIs are dealt top-down from N-1",
    ),
    Override(
        "--timer-ppi",
        "platform.gic.virt_timer_ppi",
        GIC,
        "EL1 virtual timer interrupt, 16..31",
        metavar="INTID",
    ),
    Override(
        "--bootargs",
        "platform.linux.bootargs",
        LINUX,
        "kernel command line",
        parse=str,
        metavar="S",
    ),
    Override(
        "--initrd-size",
        "platform.linux.initrd_size",
        LINUX,
        "initrd bytes; linux,initrd-end = start + BYTES",
        metavar="BYTES",
    ),
    Override(
        "--dt-numa",
        "platform.linux.numa",
        LINUX,
        "numa-node-id and distance-map in the tree (Linux sees the vNUMA nodes)",
        const=True,
    ),
    Override(
        "--dt-prefetchable-high",
        "platform.linux.prefetchable_high",
        LINUX,
        "64-bit PCIe windows prefetchable (no 'exceeds max for 32 bits')",
        const=True,
    ),
    Override(
        "--vmbus-redirection",
        "platform.paravisor.vmbus_redirection",
        PARAVISOR,
        "VMBus redirection",
        const=True,
    ),
    Override(
        "--memory-allocation-mode",
        "platform.paravisor.memory_allocation_mode",
        PARAVISOR,
        "who allocates VTL2 memory",
        parse=str,
        metavar="MODE",
        choices=("host", "vtl2"),
    ),
    Override(
        "--paravisor-bootargs",
        "platform.paravisor.bootargs",
        PARAVISOR,
        "paravisor command line",
        parse=str,
        metavar="S",
        alias="--bootargs",
    ),
    Override("--bios-guid", "platform.uefi.bios_guid", UEFI, "BIOS GUID", parse=str, metavar="G"),
    Override(
        "--entropy",
        "platform.uefi.entropy",
        UEFI,
        "64 bytes of entropy as hex",
        parse=lambda text: _hex(text),
        metavar="HEX",
    ),
    Override("--frontpage", "platform.uefi.frontpage", UEFI, "show the front page", const=True),
)


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hex: {text!r}") from None


def _field(path: str) -> dataclasses.Field[Any]:
    """The dataclass field a config path names (for its declared default). Starts at the
    section classes, not `VmConfig`, so building the parser does not load the resolver."""
    from vmlayout.platform import Platform
    from vmlayout.topology import Processors

    section, *rest = path.split(".")
    cls: Any = {"processors": Processors, "platform": Platform}[section]
    field: dataclasses.Field[Any] | None = None
    for part in rest:
        field = next(f for f in dataclasses.fields(cls) if f.name == part)
        if field.default_factory is not dataclasses.MISSING:
            cls = type(field.default_factory())
    assert field is not None
    return field


def _default_text(override: Override) -> str:
    from vmlayout.schema import spell_default

    field = _field(override.path)
    default = (
        field.default_factory()
        if field.default_factory is not dataclasses.MISSING
        else field.default
    )
    if override.path == "processors.vps_per_socket":
        return "every VP in one socket on x86_64, 1 on aarch64"
    if default is None:
        return "none"
    if isinstance(default, int) and not isinstance(default, bool) and override.metavar == "ADDR":
        return f"{default:#x}"
    return spell_default(field, default)


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Adds each override's declared default when help is printed, not when the parser
    is built: every command builds the parser, few print its help (cold start)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        override = _BY_DEST.get(action.dest)
        if text is None or override is None or override.const is not None:
            return text
        return f"{text.removesuffix(')')}; default {_default_text(override)})"


_BY_DEST = {o.dest: o for o in OVERRIDES}


def add_platform_arguments(parser: argparse.ArgumentParser, groups: tuple[str, ...]) -> None:
    """The options of `groups`, in declaration order, each defaulting to "not given"
    (the config's value, whose declared default the help shows)."""
    parser.formatter_class = DefaultsHelpFormatter
    taken = {o.flag for o in OVERRIDES if o.group in groups}
    for group in groups:
        section = parser.add_argument_group(_TITLES[group])
        for o in OVERRIDES:
            if o.group != group:
                continue
            flags = [o.flag] + ([o.alias] if o.alias and o.alias not in taken else [])
            if o.const is not None:
                section.add_argument(
                    *flags,
                    dest=o.dest,
                    action="store_const",
                    const=o.const,
                    default=None,
                    help=f"{o.help} (config: {o.path})",
                )
            else:
                section.add_argument(
                    *flags,
                    dest=o.dest,
                    type=o.parse,
                    default=None,
                    metavar=o.metavar,
                    choices=o.choices,
                    help=f"{o.help} (config: {o.path})",
                )


def _replace_path(obj: Any, parts: list[str], value: Any) -> Any:
    head, *rest = parts
    new = value if not rest else _replace_path(getattr(obj, head), rest, value)
    return dataclasses.replace(obj, **{head: new})


def apply_overrides(config: Any, args: argparse.Namespace) -> Any:
    """`config` with every option the command was given applied. A value the section
    refuses is one error naming the option."""
    from vmlayout.errors import VmLayoutError

    for o in OVERRIDES:
        value = getattr(args, o.dest, None)
        if value is None:
            continue
        try:
            config = _replace_path(config, o.path.split("."), value)
        except VmLayoutError as error:
            message = error.message.split(": ", 1)[-1] if ": " in error.message else error.message
            raise VmLayoutError("invalid_argument", f"{o.flag}: {message}") from None
    return config


__all__ = [
    "ACPI",
    "ALL_GROUPS",
    "DEVICES",
    "GIC",
    "LINUX",
    "MTRR",
    "OVERRIDES",
    "PARAVISOR",
    "PROCESSORS",
    "UEFI",
    "X86",
    "Override",
    "add_platform_arguments",
    "apply_overrides",
    "int_argument",
]
