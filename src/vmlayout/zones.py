"""Architectural zones: the fixed-address devices inside the chipset low window.

The layout only reserves the architectural zone (x86 0xFE00_0000..4 GiB, arm64
0xEF00_0000..4 GiB); what sits inside it is decided by the platform, at the addresses
OpenVMM uses. They are defined once here, from the architecture, the platform (the
aarch64 GIC, whether there is an IO-APIC) and the processor count (one GIC redistributor
per VP), so `where`, `map` and the firmware views cannot disagree about them.

A zone repeated per VP is one `ZoneBlock` with a stride: a lookup is arithmetic, so
`zone_at` costs the same for 2 or 2 million VPs, and a picture can draw the block as one
box; `ZoneBlock.zones()` expands it when each instance is wanted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmlayout.arch import Arch
from vmlayout.platform import (
    DEFAULT_PLATFORM,
    GIC_ITS_SIZE,
    GIC_REDISTRIBUTOR_SIZE,
    GIC_V2M_FRAME_SIZE,
    GICD_SIZE,
    Platform,
)
from vmlayout.topology import DEFAULT_PROCESSORS, Processors

if TYPE_CHECKING:
    from vmlayout.policy import VmConfig

#: x86: the local APIC page every VP sees at its APIC base (SDM 10.4.1), inside the
#: 1 MiB interrupt-message window that MSIs are written to (SDM 10.11.1).
LAPIC_BASE = 0xFEE0_0000
X86_MSI_WINDOW_SIZE = 0x10_0000
#: x86: the IO-APIC (OpenVMM `IOAPIC_DEVICE_MMIO_REGION_BASE_ADDRESS`); the DSDT
#: describes it and the LAPIC as one page each.
IOAPIC_BASE = 0xFEC0_0000
APIC_PAGE_SIZE = 0x1000
#: OpenVMM's battery (`BATTERY_MMIO_REGION_BASE_ADDRESS_X64` / `_ARM`, 0x20 bytes) and
#: TPM (`TPM_DEVICE_MMIO_REGION_BASE_ADDRESS`, a 0x70-byte control area).
X86_BATTERY_BASE = 0xFED3_F000
ARM_BATTERY_BASE = 0xEFFE_A000
BATTERY_SIZE = 0x20
TPM_BASE = 0xFED4_0000
TPM_CONTROL_SIZE = 0x70
#: arm64: OpenVMM's two PL011 UARTs (COM1, COM2) and the UEFI firmware's MMIO page.
UART_BASES = (0xEFFE_C000, 0xEFFE_B000)
UART_SIZE = 0x1000
ARM_UEFI_BASE = 0xEFFE_D000
ARM_UEFI_SIZE = 0x1000


@dataclass(frozen=True, slots=True)
class Zone:
    """One architectural device's registers, `[start, end)` (not page aligned: the
    battery is 32 bytes)."""

    name: str
    start: int
    end: int
    what: str

    def contains(self, address: int) -> bool:
        return self.start <= address < self.end

    def to_json(self) -> dict[str, int | str]:
        return {"name": self.name, "start": self.start, "end": self.end}


@dataclass(frozen=True, slots=True)
class ZoneBlock:
    """`count` zones of `size` bytes every `stride` bytes from `base`; `name` and `what`
    take `{n}` for the instance number (GICR of VP n)."""

    name: str
    base: int
    size: int
    what: str
    count: int = 1
    stride: int = 0

    @property
    def start(self) -> int:
        return self.base

    @property
    def end(self) -> int:
        return self.base + (self.count - 1) * self.stride + self.size

    def zone(self, n: int) -> Zone:
        start = self.base + n * self.stride
        return Zone(self.name.format(n=n), start, start + self.size, self.what.format(n=n))

    def at(self, address: int) -> Zone | None:
        if not self.start <= address < self.end:
            return None
        n = (address - self.base) // self.stride if self.stride else 0
        n = min(n, self.count - 1)
        zone = self.zone(n)
        return zone if zone.contains(address) else None

    def zones(self) -> Iterator[Zone]:
        return (self.zone(n) for n in range(self.count))

    def label(self) -> str:
        """The block's name for one box (`gicr0..gicr7`)."""
        if self.count == 1:
            return self.name.format(n=0)
        return f"{self.name.format(n=0)}..{self.name.format(n=self.count - 1)}"


def zone_blocks(
    arch: Arch, platform: Platform = DEFAULT_PLATFORM, processors: Processors = DEFAULT_PROCESSORS
) -> tuple[ZoneBlock, ...]:
    """Every architectural zone of the VM, outermost (the reserved zone) first: the
    processor count sizes the per-VP redistributor block (aarch64); `platform.x86.ioapic`
    keeps or drops the IO-APIC; `platform.gic` places the aarch64 interrupt controller
    and chooses ITS or v2m."""
    gic, vp_count = platform.gic, processors.vp_count
    reserved = arch.spec.reserved_zone
    if arch is Arch.X86_64:
        blocks = [
            ZoneBlock(
                "x86-reserved-zone", reserved.start, reserved.size,
                "x86 architectural zone: LAPIC, IO-APIC, battery, TPM (never RAM or BARs)",
            ),
            ZoneBlock("battery", X86_BATTERY_BASE, BATTERY_SIZE, "battery status registers"),
            ZoneBlock("tpm", TPM_BASE, TPM_CONTROL_SIZE, "TPM control area (with a TPM)"),
            ZoneBlock(
                "msi-window", LAPIC_BASE, X86_MSI_WINDOW_SIZE,
                "interrupt message window: a write here is an MSI to a local APIC",
            ),
            ZoneBlock("lapic", LAPIC_BASE, APIC_PAGE_SIZE, "local APIC of the accessing VP"),
        ]  # fmt: skip
        if platform.x86.ioapic:
            blocks.insert(1, ZoneBlock("ioapic", IOAPIC_BASE, APIC_PAGE_SIZE, "IO-APIC"))
        return tuple(blocks)
    blocks = [
        ZoneBlock(
            "arm64-reserved-zone", reserved.start, reserved.size,
            "arm64 architectural zone: GIC, PL011 UARTs, battery, UEFI (never RAM or BARs)",
        ),
        ZoneBlock(
            "gicr{n}", gic.redistributors_base, GIC_REDISTRIBUTOR_SIZE,
            "GICv3 redistributor of VP {n} (RD_base + SGI_base)",
            count=max(vp_count, 1), stride=GIC_REDISTRIBUTOR_SIZE,
        ),
        ZoneBlock("gicd", gic.distributor_base, GICD_SIZE, "GICv3 distributor"),
        *(
            ZoneBlock(f"uart{n}", base, UART_SIZE, f"PL011 UART {n} (COM{n + 1})")
            for n, base in enumerate(UART_BASES)
        ),
        ZoneBlock("battery", ARM_BATTERY_BASE, BATTERY_SIZE, "battery status registers"),
        ZoneBlock("uefi", ARM_UEFI_BASE, ARM_UEFI_SIZE, "UEFI firmware command registers"),
    ]  # fmt: skip
    if gic.msi == "its":
        blocks.append(ZoneBlock("gic-its", gic.its_base, GIC_ITS_SIZE, "GICv3 ITS (PCIe MSIs)"))
    elif gic.msi == "v2m":
        blocks.append(
            ZoneBlock("gic-v2m", gic.v2m_frame_base, GIC_V2M_FRAME_SIZE, "GICv2m MSI frame")
        )
    return tuple(blocks)


def config_zones(config: VmConfig) -> tuple[ZoneBlock, ...]:
    """The zones of one VM description (its architecture, platform and processors)."""
    return zone_blocks(config.arch, config.platform, config.processors)


def zones_at(address: int, blocks: tuple[ZoneBlock, ...]) -> tuple[Zone, ...]:
    """Every zone holding `address`, innermost (smallest) first."""
    found = [z for z in (b.at(address) for b in blocks) if z is not None]
    return tuple(sorted(found, key=lambda z: (z.end - z.start, z.start)))


def zone_at(address: int, blocks: tuple[ZoneBlock, ...]) -> Zone | None:
    """The innermost zone holding `address` (the device a guest reaches there)."""
    found = zones_at(address, blocks)
    return found[0] if found else None


__all__ = ["Zone", "ZoneBlock", "config_zones", "zone_at", "zone_blocks", "zones_at"]
