"""The VM's platform: every choice a firmware view states that the layout does not decide.

The aarch64 interrupt controller appears in the MADT, GTDT and IORT, in the Linux device
tree and in the UEFI blob; the serial ports in the DSDT, the UEFI flags and the device
tree; the VMBus in the DSDT and the UEFI flags. Each is one field of this one value (the
config's `platform` section), which every emitter reads, so the views cannot disagree.
Defaults are the reference's (OpenVMM on a Linux host); each is declared once, here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmlayout.errors import VmLayoutError
from vmlayout.schema import setting

if TYPE_CHECKING:
    from uuid import UUID

#: Bytes of one GICv3 redistributor frame pair (RD_base + SGI_base), per VP.
GIC_REDISTRIBUTOR_SIZE = 0x2_0000
#: GICv3 distributor and ITS register frames, and the GICv2m MSI frame.
GICD_SIZE = 0x1_0000
GIC_ITS_SIZE = 0x2_0000
GIC_V2M_FRAME_SIZE = 0x1000
#: A GUID as a config spells it, and the all-zero one (the reproducible default).
GUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
NULL_GUID = "00000000-0000-0000-0000-000000000000"
#: Where a direct-booted Linux without EFI scans for the SMBIOS entry point
#: ([0xF0000, 1 MiB)), and the BIOS date from which it trusts an MCFG above 4 GiB.
SMBIOS_SCAN_AREA = (0xF0000, 0x10_0000)
SMBIOS_DEFAULT_BIOS_DATE = "01/01/2010"
#: Bytes of the UEFI blob's entropy.
ENTROPY_SIZE = 64
MSI_CONTROLLERS = ("its", "v2m", "none")
#: An SMBIOS release date as Linux's DMI code reads it.
BIOS_DATE = re.compile(r"(0[1-9]|1[0-2])/(0[1-9]|[12]\d|3[01])/(\d{4})")


def _invalid(message: str) -> VmLayoutError:
    return VmLayoutError("invalid_argument", message)


@dataclass(frozen=True, slots=True)
class GicPlatform:
    """The aarch64 interrupt controller (`platform.gic`)."""

    distributor_base: int = setting(0xFFFF_0000, "GICv3 distributor base", kind="size")
    redistributors_base: int = setting(
        0xEFFF_0000,
        "first VP's redistributor; 0x20000 per VP (OpenVMM uses 0xeffee000 on other hosts)",
        kind="size",
    )
    msi: str = setting(
        "its", "how PCIe MSIs reach the GIC: GICv3 ITS, a GICv2m frame, or none",
        choices=MSI_CONTROLLERS,
    )  # fmt: skip
    its_base: int = setting(0xEFFC_0000, "GICv3 ITS base (msi = its)", kind="size")
    v2m_frame_base: int = setting(
        0xEFFE_8000, "GICv2m MSI frame base (msi = v2m)", kind="size", key="v2m_base"
    )
    v2m_spi_count: int = setting(
        64, "v2m SPIs, dealt from the top before the SMMUs'", low=1, high=0xFFFF, key="v2m_spis"
    )
    virt_timer_ppi: int = setting(
        20, "EL1 virtual timer interrupt (a PPI, 16..31)", key="timer_ppi"
    )
    nr_irqs: int = setting(
        992, "GIC interrupt lines, a multiple of 32 in 64..992; SMMU SPIs are dealt top-down",
        key="interrupts",
    )  # fmt: skip

    def __post_init__(self) -> None:
        if self.msi not in MSI_CONTROLLERS:
            raise _invalid(f"--gic-msi: {self.msi!r} is not its, v2m or none")
        if not 16 <= self.virt_timer_ppi < 32:
            raise _invalid(f"--timer-ppi: {self.virt_timer_ppi} is not a PPI (16..31)")
        if self.msi == "v2m" and not 1 <= self.v2m_spi_count <= 0xFFFF:
            raise _invalid(f"--gic-v2m-spis: {self.v2m_spi_count} is not 1..65535")
        if not 64 <= self.nr_irqs <= 992 or self.nr_irqs % 32:
            raise _invalid(f"--gic-interrupts: {self.nr_irqs} is not a multiple of 32 in 64..992")
        for name in ("distributor_base", "redistributors_base", "its_base", "v2m_frame_base"):
            value = getattr(self, name)
            if not 0 <= value < 1 << 64 or value % 0x1000:
                raise _invalid(f"gic.{name}: {value:#x} is not a 4 KiB aligned address")

    def redistributors(self, vp_count: int) -> tuple[int, int]:
        """[start, end) of every VP's redistributor frames."""
        return (
            self.redistributors_base,
            self.redistributors_base + GIC_REDISTRIBUTOR_SIZE * vp_count,
        )

    def check_frames(self, vp_count: int) -> None:
        """The distributor must not sit inside the VPs' redistributors (which grow with
        the VP count, so this is checked where both are known)."""
        start, end = self.redistributors(vp_count)
        if self.distributor_base < end and start < self.distributor_base + GICD_SIZE:
            raise _invalid(
                f"GIC: {vp_count} VPs' redistributors {start:#x}-{end:#x} overlap the "
                f"distributor at {self.distributor_base:#x}"
            )

    def spi_layout(self, smmu_count: int) -> tuple[int | None, list[tuple[int, int]]]:
        """(v2m SPI base, (event, gerror) INTID per SMMU): SPIs are dealt top-down from
        the highest one, the v2m block first, then two per SMMU in root-complex order,
        so they stay clear of guest MSI allocators that count up from INTID 64."""
        cursor = min(self.nr_irqs - 1, 1019) + 1
        v2m_base = None
        if self.msi == "v2m":
            cursor -= self.v2m_spi_count
            v2m_base = cursor
        pairs = []
        for _ in range(smmu_count):
            pairs.append((cursor - 1, cursor - 2))
            cursor -= 2
        if cursor < 64:
            raise VmLayoutError(
                "spi_exhausted",
                f"{self.nr_irqs} GIC interrupts cannot hold the v2m block and "
                f"{smmu_count} SMMUs' SPIs",
            )
        return v2m_base, pairs


@dataclass(frozen=True, slots=True)
class X86Platform:
    """The x86 chipset's interrupt controllers and IOMMU width (`platform.x86`)."""

    ioapic: bool = setting(True, "IO-APIC present (MADT)")
    pic: bool = setting(False, "legacy PIC present (MADT PCAT_COMPAT)")
    pit: bool = setting(False, "PIT present (MADT IRQ0 -> GSI 2 override)")
    vtd_address_width: int = setting(48, "DMAR host address width in bits", low=1, high=64)
    bios_date: str = setting(
        "",
        "SMBIOS BIOS release date (MM/DD/YYYY) of `emit smbios`; empty: the guest gets no "
        "SMBIOS (the reference's direct boot), and Linux ignores an MCFG entry above 4 GiB",
        high=10,
    )

    def __post_init__(self) -> None:
        if self.bios_date and not BIOS_DATE.fullmatch(self.bios_date):
            raise _invalid(f"bios_date: {self.bios_date!r} is not MM/DD/YYYY")


@dataclass(frozen=True, slots=True)
class UefiPlatform:
    """UEFI firmware settings that are not layout (`platform.uefi`); the defaults make
    a reproducible blob (spec 03 §9.4)."""

    bios_guid: str = setting(NULL_GUID, "BIOS GUID", high=64)
    entropy: bytes = setting(
        bytes(ENTROPY_SIZE), "64 bytes of entropy, as hex", kind="hex",
        low=ENTROPY_SIZE, high=ENTROPY_SIZE, factory=lambda: bytes(ENTROPY_SIZE),
    )  # fmt: skip
    frontpage: bool = setting(False, "show the UEFI front page (else the disable flag is set)")

    def __post_init__(self) -> None:
        # a pattern, not `uuid.UUID`: uuid loads modules that cold start avoids
        if not GUID.fullmatch(self.bios_guid):
            raise _invalid(f"bios_guid: {self.bios_guid!r} is not a GUID")
        if len(self.entropy) != ENTROPY_SIZE:
            raise _invalid(f"entropy: must be {ENTROPY_SIZE} bytes")

    @property
    def guid(self) -> UUID:
        import uuid

        return uuid.UUID(self.bios_guid)


@dataclass(frozen=True, slots=True)
class LinuxBootPlatform:
    """The arm64 Linux direct boot (`platform.linux`): the device tree's /chosen."""

    bootargs: str = setting("", "kernel command line", high=4096)
    initrd_size: int = setting(
        0, "initrd bytes at the first RAM address + 16 MiB (0: start = end, no initrd)",
        kind="size",
    )  # fmt: skip
    numa: bool = setting(
        False,
        "numa-node-id on CPUs and memory and a distance-map (the reference has none: Linux "
        "sees one node)",
    )
    prefetchable_high: bool = setting(
        False,
        "64-bit PCIe windows prefetchable (the reference's are not: Linux warns on one of "
        "4 GiB or more)",
    )


@dataclass(frozen=True, slots=True)
class ParavisorPlatform:
    """The paravisor's host device tree (`platform.paravisor`)."""

    vmbus_redirection: bool = setting(False, "VMBus redirection to VTL2")
    memory_allocation_mode: str = setting(
        "host", "who allocates VTL2 memory", choices=("host", "vtl2")
    )
    vtl2_memory_size: int | None = setting(
        None, "VTL2 memory-size (memory_allocation_mode = vtl2)", kind="optional_size"
    )
    bootargs: str = setting("", "paravisor command line", high=4096)


#: x86 loaders whose initial MTRR state vmlayout writes, and the variable-MTRR policies.
MTRR_LOADERS = ("linux", "uefi", "pcat")
MTRR_POLICIES = ("reference", "exact")


@dataclass(frozen=True, slots=True)
class MtrrPlatform:
    """The x86 firmware's initial MTRRs (`platform.mtrr`): which loader programs them
    (its DEF_TYPE and fixed-range MTRRs) and how the variable pairs are chosen."""

    loader: str = setting(
        "uefi", "x86 loader whose DEF_TYPE and fixed MTRRs are written", choices=MTRR_LOADERS
    )
    policy: str = setting(
        "reference",
        "variable MTRRs: reference (as OpenVMM computes them) or exact (RAM WB, all else UC)",
        choices=MTRR_POLICIES,
    )
    count: int = setting(8, "variable MTRR registers the exact policy may use", low=1, high=255)
    approximate: bool = setting(
        False, "exact policy over budget: the most WB RAM, never WB non-RAM"
    )

    def __post_init__(self) -> None:
        if self.loader not in MTRR_LOADERS or self.policy not in MTRR_POLICIES:
            raise _invalid(f"mtrr: loader {self.loader!r} / policy {self.policy!r} unknown")
        if not 1 <= self.count <= 255:
            raise _invalid(f"mtrr.count: {self.count} is not in 1..255")


@dataclass(frozen=True, slots=True)
class Platform:
    """The config's `platform` section: one value every view reads."""

    chipset_device: str = setting(
        "vmod", "ACPI device describing the chipset windows: \\_SB.VMOD, or \\_SB.PCI0 (x86)",
        choices=("vmod", "pci0"),
    )  # fmt: skip
    serial: bool = setting(False, "serial ports (ACPI UARTs, UEFI flag, DT UARTs)")
    vmbus: bool = setting(True, "VMBus (ACPI device, UEFI flag)")
    hyperv: bool = setting(False, "FADT hypervisor vendor identity 'MsHyperV'")
    virtio_irq: int = setting(5, "interrupt of every virtio-mmio slot (level-triggered)", high=1019)
    rsdp_address: int | None = setting(
        None,
        "RSDP page; tables follow one page later (none: 0x18000 on x86, RAM start + "
        "8 MiB + 8 KiB on aarch64)",
        kind="optional_size",
    )
    cxl_window_restrictions: int = setting(
        0, "CEDT CFMWS window restrictions of every CXL window (e.g. 0x6)", high=0xFFFF
    )
    pci0_osc: str = setting(
        "reference",
        "\\_SB.PCI0's _OSC: reference (an 8-byte buffer; Linux keeps no PCIe control) or "
        "grant (every control asked for, the 12-byte buffer back)",
        choices=("reference", "grant"),
    )
    x86: X86Platform = setting(None, "", factory=X86Platform)
    gic: GicPlatform = setting(None, "", factory=GicPlatform)
    uefi: UefiPlatform = setting(None, "", factory=UefiPlatform)
    linux: LinuxBootPlatform = setting(None, "", factory=LinuxBootPlatform)
    paravisor: ParavisorPlatform = setting(None, "", factory=ParavisorPlatform)
    mtrr: MtrrPlatform = setting(None, "", factory=MtrrPlatform)

    def __post_init__(self) -> None:
        if self.rsdp_address is not None and self.rsdp_address % 0x1000:
            raise _invalid(f"rsdp_address: {self.rsdp_address:#x} is not 4 KiB aligned")
        if not 0 <= self.cxl_window_restrictions <= 0xFFFF:
            raise _invalid(
                f"cxl_window_restrictions: {self.cxl_window_restrictions:#x} is not a 16-bit "
                "CFMWS restrictions field"
            )

    @property
    def pci0(self) -> bool:
        return self.chipset_device == "pci0"

    @property
    def hypervisor_vendor(self) -> int:
        return int.from_bytes(b"MsHyperV", "little") if self.hyperv else 0


#: OpenVMM's platform on a Linux host.
DEFAULT_PLATFORM = Platform()
DEFAULT_GIC = DEFAULT_PLATFORM.gic

__all__ = [
    "DEFAULT_GIC",
    "DEFAULT_PLATFORM",
    "GICD_SIZE",
    "GIC_ITS_SIZE",
    "GIC_REDISTRIBUTOR_SIZE",
    "GIC_V2M_FRAME_SIZE",
    "MTRR_LOADERS",
    "MTRR_POLICIES",
    "GicPlatform",
    "LinuxBootPlatform",
    "MtrrPlatform",
    "ParavisorPlatform",
    "Platform",
    "UefiPlatform",
    "X86Platform",
]
