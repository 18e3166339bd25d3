"""Per-architecture resolver policy (spec 02): describe the VM to the allocator.

The order in which requests are issued is part of the compatibility contract (it is the
allocator's tie-breaker and fixes RAM and post-MMIO order), so `resolve` issues them in
exactly the spec's sequence and nothing else here may reorder them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from vmlayout.allocator import (
    LayoutBuilder,
    PlacedRange,
    Placement,
    PlacementRecord,
    RamSlot,
    RangeSlot,
    width_excess,
)
from vmlayout.arch import Arch as Arch  # re-exported: the library has always named it here
from vmlayout.arch import InterruptController
from vmlayout.errors import VmLayoutError
from vmlayout.layout import (
    ChipsetMmioRanges,
    MemoryLayout,
    MemoryRangeWithNode,
    from_resolved_ranges,
)
from vmlayout.platform import Platform
from vmlayout.ranges import EMPTY, FOUR_GIB, GIB, MIB, PAGE_SIZE, MemoryRange
from vmlayout.schema import setting
from vmlayout.topology import Processors

if TYPE_CHECKING:  # the device model is only loaded by configs that list devices
    from vmlayout.devices import PciFunction

TWO_MIB = 2 * MIB
PCIE_ECAM_BYTES_PER_BUS = MIB
PCIE_ECAM_MIN_ADDRESS = 0x1000_0000
CXL_HPA_ALIGNMENT = 0x1000_0000
CXL_CHBCR_SIZE = 0x1_0000


class IommuKind(Enum):
    SMMU = "smmu"
    AMD_VI = "amd_vi"
    INTEL_VTD = "intel_vtd"

    @property
    def tag_and_size(self) -> tuple[str, int]:
        return {
            IommuKind.SMMU: ("smmu", 0x2_0000),
            IommuKind.AMD_VI: ("amd-iommu", 0x4000),
            IommuKind.INTEL_VTD: ("intel-vtd", 0x1000),
        }[self]

    @property
    def arch(self) -> Arch:
        return next(a for a in Arch if self.value in a.spec.iommu_kinds)


@dataclass(frozen=True, slots=True)
class DynamicMmio:
    """A root-complex window the allocator places; only its size is configured."""

    size: int


@dataclass(frozen=True, slots=True)
class FixedMmio:
    """A root-complex window whose address the user decided (`[start, end)`)."""

    start: int
    end: int


MmioWindow = DynamicMmio | FixedMmio


def rc_name(index: int) -> str:
    """The name a root complex gets when the config gives none (the one name scheme)."""
    return f"rc{index}"


@dataclass(frozen=True, slots=True)
class RootComplexConfig:
    """One entry of `pcie_root_complexes`; `name` defaults to `rc<index>` in a config."""

    name: str = setting("rc0", "root complex name (default rc<index>)", high=200)
    segment: int = setting(0, "PCIe segment", high=0xFFFF)
    start_bus: int = setting(0, "first bus", high=255)
    end_bus: int = setting(255, "last bus", high=255)
    low_mmio: MmioWindow = setting(
        DynamicMmio(64 * MIB), "window below 4 GiB: {size} or fixed {start, end}", kind="window"
    )
    high_mmio: MmioWindow = setting(
        DynamicMmio(GIB), "window above RAM: {size} or fixed {start, end}", kind="window"
    )
    cxl_hdm_size: int | None = setting(None, "CXL: {hdm_size}", kind="cxl", key="cxl")
    iommu: IommuKind | None = setting(None, "IOMMU kind", kind="iommu")
    #: Firmware only (the layout ignores them): the vNUMA node the root complex is
    #: attached to (ACPI `_PXM`), and whether the guest must keep the BARs the VMM
    #: assigned (`_DSM` "ignore boot configuration", DT `linux,pci-probe-only`).
    numa_node: int | None = setting(
        None, "vNUMA node (ACPI _PXM; firmware only)", kind="optional_int", high=0xFFFF_FFFF
    )
    preserve_bars: bool = setting(False, "guest keeps the assigned BARs (_DSM; firmware only)")
    #: The functions on the root bus (bridges nest theirs); the layout ignores them,
    #: the PCI assignment stage (`vmlayout.pci`) places their BARs in the windows.
    devices: tuple[PciFunction, ...] = setting((), "PCI functions (docs/pci.md)", kind="devices")


@dataclass(frozen=True, slots=True)
class Vtl2Layout:
    size: int
    alignment: int


@dataclass(frozen=True, slots=True)
class VmConfig:
    """The VM description: what the resolver needs (sizes only, never addresses, except
    fixed root-complex windows) plus the facts only firmware views state (processors,
    platform, vNUMA distances, root complexes' `numa_node`/`preserve_bars`/devices).
    Every emitter receives this one value, so the views describe one machine.

    Each field's default is declared here once; `chipset_low_mmio_size` None means the
    architecture's default (`ArchSpec.default_low_mmio_size`), filled in on creation."""

    arch: Arch = setting(Arch.X86_64, "x86_64 or aarch64", kind="arch")
    node_mem_sizes: tuple[int, ...] = setting(
        (4 * GIB,), "RAM of each vNUMA node, in node order", kind="node_sizes"
    )
    chipset_low_mmio_size: int = setting(
        None,
        "chipset window ending at 4 GiB (default: 128 MiB x86_64, 512 MiB aarch64)",
        kind="size",
        high=FOUR_GIB - 1,
    )
    chipset_high_mmio_size: int = setting(512 * MIB, "chipset window above RAM", kind="size")
    vtl2_chipset_mmio_size: int = setting(0, "the paravisor's chipset window", kind="size")
    pcie_root_complexes: tuple[RootComplexConfig, ...] = setting(
        (), "root complexes (none unless listed)", kind="root_complexes"
    )
    virtio_mmio_count: int = setting(0, "virtio-mmio slots", high=1 << 20)
    pcie_ecam_below_4gb: bool = setting(False, "place ECAM below 4 GiB")
    vtl2_layout: Vtl2Layout | None = setting(
        None, "VTL2 private RAM: {size, alignment}", kind="vtl2_layout"
    )
    ram_start_address: int = setting(0, "first RAM address", kind="size")
    vtl2_framebuffer_size: int = setting(0, "VTL2 framebuffer", kind="size")
    physical_address_size: int = setting(46, "guest physical address bits", low=1, high=63)
    #: Firmware only (the layout ignores it): (from node, to node, distance) entries
    #: overriding the ACPI SLIT defaults of 10 local / 20 remote.
    numa_distances: tuple[tuple[int, int, int], ...] = setting(
        (), "SLIT overrides [from, to, distance]", kind="numa_distances"
    )
    processors: Processors = setting(None, "", factory=Processors)
    platform: Platform = setting(None, "", factory=Platform)

    def __post_init__(self) -> None:
        if self.chipset_low_mmio_size is None:
            object.__setattr__(self, "chipset_low_mmio_size", self.arch.spec.default_low_mmio_size)
        device = self.platform.chipset_device
        if device not in self.arch.spec.chipset_devices:
            raise VmLayoutError(
                "invalid_config",
                f"platform.chipset_device: {device} is not available on {self.arch.value}",
            )
        if self.arch.spec.interrupt_controller is InterruptController.GIC:
            self.platform.gic.check_frames(self.processors.vp_count)


@dataclass(frozen=True, slots=True)
class RootComplexRanges:
    name: str
    segment: int
    start_bus: int
    end_bus: int
    ecam: MemoryRange
    low_mmio: MemoryRange
    high_mmio: MemoryRange
    cxl_hdm: MemoryRange = EMPTY
    cxl_chbcr: MemoryRange = EMPTY
    #: This root complex's IOMMU registers (SMMUv3, AMD-Vi or VT-d), or EMPTY: carried
    #: here so no consumer pairs IOMMU windows with root complexes by list position.
    iommu: MemoryRange = EMPTY

    @property
    def ecam_bus0_base(self) -> int:
        """MCFG base: the address bus 0 would have; identical for RCs sharing a segment."""
        return self.ecam.start - self.start_bus * PCIE_ECAM_BYTES_PER_BUS


@dataclass(frozen=True, slots=True)
class ResolvedLayout:
    """Everything the emitters consume; `chipset` is the only source of chipset windows."""

    config: VmConfig
    memory_layout: MemoryLayout
    chipset: ChipsetMmioRanges
    pcie_root_complexes: tuple[RootComplexRanges, ...]
    pci_segments: tuple[tuple[int, MemoryRange], ...]
    virtio_mmio: MemoryRange
    iommu_kind: IommuKind | None
    vtl2_framebuffer_base: int | None
    placed: tuple[PlacedRange, ...] = field(default_factory=tuple)

    @property
    def iommu_ranges(self) -> tuple[MemoryRange, ...]:
        """Every IOMMU window in root-complex order (the resolver vectors' list)."""
        return tuple(rc.iommu for rc in self.pcie_root_complexes if not rc.iommu.is_empty())

    @property
    def arch(self) -> Arch:
        return self.config.arch

    @property
    def layout_top(self) -> int:
        """End of the highest non-reserved placement (what the address-width check uses)."""
        return self.placed[-1].range.end if self.placed else 0


def _config_error(message: str) -> VmLayoutError:
    return VmLayoutError("invalid_config", message)


def _range(start: int, end: int, what: str) -> MemoryRange:
    if start % PAGE_SIZE or end % PAGE_SIZE:
        raise _config_error(f"{what}: {start:#x}-{end:#x} is not 4 KiB aligned")
    if start >= end:
        raise _config_error(f"{what}: start {start:#x} is not below end {end:#x}")
    try:
        return MemoryRange(start, end)
    except ValueError as error:
        raise _config_error(f"{what}: {error}") from None


def validate_node_mem_sizes(sizes: tuple[int, ...]) -> None:
    if not sizes:
        raise VmLayoutError(
            "no_numa_nodes", "empty node memory sizes (every VM needs at least one NUMA node)"
        )
    total = sum(sizes)
    if total >= 1 << 64:
        raise VmLayoutError("ram_size_overflow", "node memory sizes overflow")
    if total == 0:
        raise VmLayoutError("zero_ram", "total RAM size is zero")
    for index, size in enumerate(sizes):
        if size % PAGE_SIZE:
            raise VmLayoutError(
                "node_size_unaligned",
                f"node_mem_sizes[{index}]: NUMA node {index} memory size {size:#x} "
                "is not page-aligned",
            )


def _iommu_kind(config: VmConfig) -> IommuKind | None:
    kinds = [rc.iommu for rc in config.pcie_root_complexes if rc.iommu is not None]
    if not kinds:
        return None
    for index, rc in enumerate(config.pcie_root_complexes):
        if rc.iommu is not None and rc.iommu is not kinds[0]:
            raise _config_error(
                f"pcie_root_complexes[{index}].iommu: {rc.iommu.value} differs from "
                f"{kinds[0].value}; all configured IOMMUs must be the same type"
            )
    return kinds[0]


def resolve(config: VmConfig, trace: list[PlacementRecord] | None = None) -> ResolvedLayout:
    """Resolve `config` to guest physical addresses (spec 02 §5-§6).

    `trace` collects how each request was placed (see `LayoutBuilder.allocate`).
    """
    validate_node_mem_sizes(config.node_mem_sizes)
    builder = LayoutBuilder()

    if config.ram_start_address > 0:
        builder.reserve("low-ram-gap", _range(0, config.ram_start_address, "ram_start_address"))

    low_size = max(
        -(-config.chipset_low_mmio_size // PAGE_SIZE) * PAGE_SIZE,
        config.arch.reserved_zone.size,
    )
    if low_size > FOUR_GIB:
        raise _config_error(
            f"chipset_low_mmio_size: {config.chipset_low_mmio_size:#x} exceeds 4 GiB"
        )
    chipset_low = MemoryRange(FOUR_GIB - low_size, FOUR_GIB)
    builder.fixed("chipset-low-mmio", chipset_low)

    high_slot = None
    if config.chipset_high_mmio_size != 0:
        high_slot = builder.request(
            "chipset-high-mmio", config.chipset_high_mmio_size, TWO_MIB, Placement.MMIO64
        )

    # ECAM: one contiguous block per segment, in first-appearance order.
    segments: dict[int, tuple[int, int]] = {}
    for rc in config.pcie_root_complexes:
        lo, hi = segments.get(rc.segment, (rc.start_bus, rc.end_bus))
        segments[rc.segment] = (min(lo, rc.start_bus), max(hi, rc.end_bus))
    ecam_placement = Placement.MMIO32 if config.pcie_ecam_below_4gb else Placement.MMIO64
    segment_slots = {
        segment: builder.request(
            f"pcie-seg{segment}-ecam",
            (max_bus - min_bus + 1) * PCIE_ECAM_BYTES_PER_BUS,
            MIB,
            ecam_placement,
        )
        for segment, (min_bus, max_bus) in segments.items()
    }

    rc_slots: list[
        tuple[MemoryRange | RangeSlot, MemoryRange | RangeSlot, RangeSlot | None, RangeSlot | None]
    ] = []
    for index, rc in enumerate(config.pcie_root_complexes):
        low_tag = f"pcie-{rc.name}-low-mmio"
        low: MemoryRange | RangeSlot
        if isinstance(rc.low_mmio, DynamicMmio):
            low = builder.request(low_tag, rc.low_mmio.size, TWO_MIB, Placement.MMIO32)
        else:
            low = _range(
                rc.low_mmio.start, rc.low_mmio.end, f"pcie_root_complexes[{index}].low_mmio"
            )
            if low.end > FOUR_GIB:
                raise VmLayoutError(
                    "fixed_low_mmio_above_4gb",
                    f"{low_tag}: fixed low MMIO range {low} must end at or below 4 GiB",
                )
            builder.fixed(low_tag, low)
        high_tag = f"pcie-{rc.name}-high-mmio"
        high: MemoryRange | RangeSlot
        if isinstance(rc.high_mmio, DynamicMmio):
            high = builder.request(high_tag, rc.high_mmio.size, GIB, Placement.MMIO64)
        else:
            high = _range(
                rc.high_mmio.start, rc.high_mmio.end, f"pcie_root_complexes[{index}].high_mmio"
            )
            builder.fixed(high_tag, high)
        hdm = chbcr = None
        if rc.cxl_hdm_size is not None:
            hdm = builder.request(
                f"pcie-{rc.name}-cxl-hdm", rc.cxl_hdm_size, CXL_HPA_ALIGNMENT, Placement.MMIO64
            )
            chbcr = builder.request(
                f"pcie-{rc.name}-cxl-chbcr", CXL_CHBCR_SIZE, CXL_CHBCR_SIZE, Placement.MMIO64
            )
        rc_slots.append((low, high, hdm, chbcr))

    virtio_slot = None
    if config.virtio_mmio_count > 0:
        virtio_slot = builder.request(
            "virtio-mmio", config.virtio_mmio_count * PAGE_SIZE, PAGE_SIZE, Placement.MMIO32
        )

    iommu_kind = _iommu_kind(config)
    iommu_slots: dict[int, RangeSlot] = {}  # root-complex index -> its IOMMU's slot
    if iommu_kind is not None:
        tag, size = iommu_kind.tag_and_size
        with_iommu = [i for i, rc in enumerate(config.pcie_root_complexes) if rc.iommu]
        iommu_slots = {
            rc_index: builder.request(f"{tag}-{n}", size, size, Placement.MMIO32)
            for n, rc_index in enumerate(with_iommu)
        }

    ram_slots: list[tuple[int, RamSlot]] = []
    for vnode, size in enumerate(config.node_mem_sizes):
        if size:
            alignment = TWO_MIB if size < GIB else GIB
            ram_slots.append((vnode, builder.ram(f"ram{vnode}", size, alignment)))

    vtl2_mmio_slot = None
    if config.vtl2_chipset_mmio_size != 0:
        vtl2_mmio_slot = builder.request(
            "vtl2-chipset-mmio", config.vtl2_chipset_mmio_size, TWO_MIB, Placement.POST_MMIO
        )
    vtl2_slot = None
    if config.vtl2_layout is not None:
        vtl2_slot = builder.request(
            "vtl2", config.vtl2_layout.size, config.vtl2_layout.alignment, Placement.POST_MMIO
        )
    framebuffer_slot = None
    if config.vtl2_framebuffer_size != 0:
        framebuffer_slot = builder.request(
            "vtl2-framebuffer", config.vtl2_framebuffer_size, PAGE_SIZE, Placement.POST_MMIO
        )

    try:
        placed = builder.allocate(trace)
    except VmLayoutError as error:
        raise VmLayoutError(error.kind, f"allocating memory layout ranges: {error}") from None

    def got(item: MemoryRange | RangeSlot | None) -> MemoryRange:
        if item is None:
            return EMPTY
        return item.range if isinstance(item, RangeSlot) else item

    rc_ranges = []
    for index, (rc, (low, high, hdm, chbcr)) in enumerate(
        zip(config.pcie_root_complexes, rc_slots, strict=True)
    ):
        block = segment_slots[rc.segment].range
        min_bus = segments[rc.segment][0]
        ecam_start = block.start + (rc.start_bus - min_bus) * PCIE_ECAM_BYTES_PER_BUS
        ecam = MemoryRange(
            ecam_start, ecam_start + (rc.end_bus - rc.start_bus + 1) * PCIE_ECAM_BYTES_PER_BUS
        )
        rc_ranges.append(
            RootComplexRanges(
                rc.name,
                rc.segment,
                rc.start_bus,
                rc.end_bus,
                ecam,
                got(low),
                got(high),
                got(hdm),
                got(chbcr),
                got(iommu_slots.get(index)),
            )
        )
    for rc_range in rc_ranges:
        if rc_range.ecam.start < PCIE_ECAM_MIN_ADDRESS:
            raise VmLayoutError(
                "ecam_below_minimum",
                f'PCIe root complex "{rc_range.name}": ECAM at {rc_range.ecam.start:#x} '
                f"is below the {PCIE_ECAM_MIN_ADDRESS:#x} minimum",
            )

    ram = [
        MemoryRangeWithNode(extent, vnode) for vnode, slot in ram_slots for extent in slot.ranges
    ]
    chipset = ChipsetMmioRanges(
        low=chipset_low,
        high=high_slot.range if high_slot else MemoryRange(FOUR_GIB, FOUR_GIB),
        vtl2=got(vtl2_mmio_slot),
    )
    mmio_gaps = [chipset.low, chipset.high]
    if not chipset.vtl2.is_empty():
        mmio_gaps.append(chipset.vtl2)
    segment_blocks = sorted(slot.range for slot in segment_slots.values())
    pci_mmio = sorted(r for rc_range in rc_ranges for r in (rc_range.low_mmio, rc_range.high_mmio))
    try:
        memory_layout = from_resolved_ranges(
            ram, mmio_gaps, segment_blocks, pci_mmio, vtl2_slot.range if vtl2_slot else None
        )
    except VmLayoutError as error:
        raise VmLayoutError(
            "invalid_layout", f"validating resolved memory layout: {error}"
        ) from None

    excess = width_excess(placed, config.physical_address_size)
    if excess is not None:
        raise VmLayoutError(
            "address_width_exceeded",
            f"physical_address_size: memory layout ends at {excess.top:#x}, which exceeds the "
            f"address width of {config.physical_address_size} bits"
            + excess.detail(f"the config's physical_address_size = {excess.bits}"),
        )

    framebuffer = got(framebuffer_slot)
    return ResolvedLayout(
        config=config,
        memory_layout=memory_layout,
        chipset=chipset,
        pcie_root_complexes=tuple(rc_ranges),
        pci_segments=tuple((seg, slot.range) for seg, slot in segment_slots.items()),
        virtio_mmio=got(virtio_slot),
        iommu_kind=iommu_kind,
        vtl2_framebuffer_base=None if framebuffer.is_empty() else framebuffer.start,
        placed=tuple(placed),
    )
