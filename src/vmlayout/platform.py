"""Platform choices the layout does not decide, shared by every view that states them.

The aarch64 interrupt controller appears in the MADT, GTDT and IORT and in the Linux
device tree; keeping it one value here (before the emitters) means the ACPI tables and
the device tree cannot disagree about it, and neither emitter imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmlayout.errors import VmLayoutError

#: Bytes of one GICv3 redistributor frame pair (RD_base + SGI_base), per VP.
GIC_REDISTRIBUTOR_SIZE = 0x2_0000


@dataclass(frozen=True, slots=True)
class GicPlatform:
    """The aarch64 interrupt controller: not decided by the layout. Defaults are
    OpenVMM's on a Linux host (GICv3, ITS, virtual timer PPI 20, 992 interrupts)."""

    distributor_base: int = 0xFFFF_0000
    redistributors_base: int = 0xEFFF_0000
    #: "its", "v2m" or "none": how PCIe MSIs reach the GIC.
    msi: str = "its"
    its_base: int = 0xEFFC_0000
    v2m_frame_base: int = 0xEFFE_8000
    v2m_spi_count: int = 64
    virt_timer_ppi: int = 20
    nr_irqs: int = 992
    #: FADT hypervisor vendor identity (0: none; b"MsHyperV" when Hyper-V is exposed).
    hypervisor_vendor: int = 0

    def __post_init__(self) -> None:
        if self.msi not in ("its", "v2m", "none"):
            raise VmLayoutError(
                "invalid_argument", f"--gic-msi: {self.msi!r} is not its, v2m or none"
            )
        if not 16 <= self.virt_timer_ppi < 32:
            raise VmLayoutError(
                "invalid_argument", f"--timer-ppi: {self.virt_timer_ppi} is not a PPI (16..31)"
            )
        if self.msi == "v2m" and not 1 <= self.v2m_spi_count <= 0xFFFF:
            raise VmLayoutError(
                "invalid_argument", f"--gic-v2m-spis: {self.v2m_spi_count} is not 1..65535"
            )
        if not 64 <= self.nr_irqs <= 992 or self.nr_irqs % 32:
            raise VmLayoutError(
                "invalid_argument",
                f"--gic-interrupts: {self.nr_irqs} is not a multiple of 32 in 64..992",
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


#: OpenVMM's interrupt controller on a Linux host.
DEFAULT_GIC = GicPlatform()

__all__ = ["DEFAULT_GIC", "GIC_REDISTRIBUTOR_SIZE", "GicPlatform"]
