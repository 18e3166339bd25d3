"""Architectures as data: one record per architecture that every stage reads.

Before this record each consumer asked `arch == "aarch64"` and kept its own copy of what
followed (the reserved zone, the default low window, which IOMMU kinds exist, how VPs
fill sockets, how processors are identified); a new architecture or a corrected value
would have had to be found in twenty places. Now a consumer asks the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from vmlayout.ranges import FOUR_GIB, MemoryRange


class ProcessorIds(Enum):
    """How firmware names a processor: x86 local APIC id, or arm64 MPIDR affinity."""

    APIC = "apic"
    MPIDR = "mpidr"


class InterruptController(Enum):
    APIC = "apic"  # x86 local APICs and an IO-APIC
    GIC = "gic"  # arm64 GICv3 (distributor, per-VP redistributors, ITS or v2m)


class BootDescription(Enum):
    """What hands the memory map to a directly booted Linux kernel."""

    E820 = "e820"  # x86: the zero page's E820 table (plus ACPI)
    DEVICE_TREE = "device_tree"  # arm64: /memory nodes of the Linux device tree


@dataclass(frozen=True, slots=True)
class ArchSpec:
    """Everything that differs between architectures, in one place."""

    name: str
    #: Architectural devices below 4 GiB (x86: LAPIC/IOAPIC/TPM; arm: GIC/PL011): the
    #: chipset low window always contains it.
    reserved_zone: MemoryRange
    #: The chipset low window's size when the config does not give one.
    default_low_mmio_size: int
    #: VPs per socket when the config does not say: None means one socket holds every VP
    #: (the reference takes the host's socket size on x86_64); aarch64 has one VP per
    #: socket (one MPIDR cluster each).
    default_vps_per_socket: int | None
    #: Config names of the IOMMU kinds this architecture has.
    iommu_kinds: tuple[str, ...]
    processor_ids: ProcessorIds
    interrupt_controller: InterruptController
    boot: BootDescription
    #: The ACPI devices that may describe the chipset windows (`platform.chipset_device`).
    chipset_devices: tuple[str, ...]
    #: SRAT processor affinity entry type (0: local APIC, 3: GICC).
    srat_processor_type: int


class Arch(Enum):
    X86_64 = "x86_64"
    AARCH64 = "aarch64"

    @property
    def spec(self) -> ArchSpec:
        return ARCH_SPECS[self]

    @property
    def reserved_zone(self) -> MemoryRange:
        return self.spec.reserved_zone

    @property
    def default_low_mmio_size(self) -> int:
        return self.spec.default_low_mmio_size


ARCH_SPECS: dict[Arch, ArchSpec] = {
    Arch.X86_64: ArchSpec(
        name="x86_64",
        reserved_zone=MemoryRange(0xFE00_0000, FOUR_GIB),
        default_low_mmio_size=0x0800_0000,
        default_vps_per_socket=None,
        iommu_kinds=("amd_vi", "intel_vtd"),
        processor_ids=ProcessorIds.APIC,
        interrupt_controller=InterruptController.APIC,
        boot=BootDescription.E820,
        chipset_devices=("vmod", "pci0"),
        srat_processor_type=0,
    ),
    Arch.AARCH64: ArchSpec(
        name="aarch64",
        reserved_zone=MemoryRange(0xEF00_0000, FOUR_GIB),
        default_low_mmio_size=0x2000_0000,
        default_vps_per_socket=1,
        iommu_kinds=("smmu",),
        processor_ids=ProcessorIds.MPIDR,
        interrupt_controller=InterruptController.GIC,
        boot=BootDescription.DEVICE_TREE,
        chipset_devices=("vmod",),
        srat_processor_type=3,
    ),
}

#: Config spellings, in the order help texts list them.
ARCH_NAMES = tuple(a.value for a in Arch)


__all__ = [
    "ARCH_NAMES",
    "ARCH_SPECS",
    "Arch",
    "ArchSpec",
    "BootDescription",
    "InterruptController",
    "ProcessorIds",
]
