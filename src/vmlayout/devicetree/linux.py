"""The arm64 Linux direct-boot device tree (spec 05 §2) and its parse-back (§2.4).

The VMBus node's `ranges` is the chipset-MMIO carrier: four u64 values, low then
high, with an empty high still written (its real start, length 0) — the reference's
(start, length) pair format, not generic DT triples.

Everything the kernel needs to boot without ACPI is here as the reference's loader
writes it: GICv3 with its MSI controller (ITS, or a v2m frame), the EL1 virtual
timer, one `pcie@` host bridge per root complex (so the kernel finds PCIe at all)
wired to the MSI controller and, with an SMMU, through it; and the initrd window,
written even when empty because the loader always places it at RAM start + 16 MiB.
The platform choices the layout does not decide live in `LinuxDtOptions.gic`, the
same `GicPlatform` the MADT/GTDT use, so the two views cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmlayout.arch import Arch
from vmlayout.devicetree.fdt import (
    Node,
    build_fdt,
    empty,
    read_fdt,
    string,
    u32,
    u32s,
    u64_array,
    u64s,
    unit_name,
)
from vmlayout.errors import VmLayoutError
from vmlayout.layout import ChipsetMmioRanges, MemoryRangeWithNode
from vmlayout.platform import (
    DEFAULT_PLATFORM,
    GIC_ITS_SIZE,
    GIC_V2M_FRAME_SIZE,
    GICD_SIZE,
    GicPlatform,
    Platform,
)
from vmlayout.ranges import EMPTY, MIB, PAGE_SIZE, MemoryRange
from vmlayout.topology import DEFAULT_PROCESSORS, Processors
from vmlayout.zones import UART_BASES

if TYPE_CHECKING:
    from vmlayout.policy import ResolvedLayout, RootComplexRanges, VmConfig

PHANDLE_GIC = 1
PHANDLE_CLOCK = 2
PHANDLE_V2M = 3
PHANDLE_ITS = 4
#: SMMU instance n (in root-complex order) gets phandle 5 + n.
PHANDLE_SMMU_BASE = 5

UART_SPIS = (1, 2)
#: SBSA subset of the PL011, as the reference advertises it.
PL011_PERIPH_ID = 0x0004_1011
PL011_BAUD = 115_200
#: The loader puts the initrd at the first RAM address + 16 MiB and the kernel above it.
INITRD_OFFSET = 16 * MIB
#: VMBus interrupt: PPI 2 (INTID 18), edge rising.
VMBUS_PPI = 18

GIC_SPI = 0
GIC_PPI = 1
IRQ_EDGE_RISING = 1
IRQ_LEVEL_HIGH = 4
IRQ_LEVEL_LOW = 8
#: PCI `ranges` phys.hi space codes: 32-bit and 64-bit memory, non-prefetchable.
PCI_SPACE_MEM32 = 0x0200_0000
PCI_SPACE_MEM64 = 0x0300_0000
#: phys.hi prefetchable bit (`p`), which Linux needs on a 64-bit window of 4 GiB or more.
PCI_SPACE_PREFETCHABLE = 0x4000_0000
#: iommu-map covers every requester ID 1:1 (stream ID = BDF).
IOMMU_MAP_LENGTH = 0x1_0000


@dataclass(frozen=True, slots=True)
class LinuxDtOptions:
    """What the tree takes from the VM description besides the layout: its processors
    and platform sections (`LinuxDtOptions.of(config)`), never values of its own."""

    processors: Processors = DEFAULT_PROCESSORS
    platform: Platform = DEFAULT_PLATFORM

    @classmethod
    def of(cls, config: VmConfig) -> LinuxDtOptions:
        return cls(config.processors, config.platform)

    def __post_init__(self) -> None:
        self.platform.gic.check_frames(self.vp_count)

    @property
    def vp_count(self) -> int:
        return self.processors.vp_count

    @property
    def gic(self) -> GicPlatform:
        return self.platform.gic

    @property
    def serial(self) -> bool:
        return self.platform.serial

    @property
    def bootargs(self) -> str:
        return self.platform.linux.bootargs

    @property
    def initrd_size(self) -> int:
        return self.platform.linux.initrd_size

    @property
    def redistributors(self) -> MemoryRange:
        return MemoryRange(*self.gic.redistributors(self.vp_count))


@dataclass(frozen=True, slots=True)
class SmmuInstance:
    """One SMMUv3: its root complex (config index), resolved MMIO window and SPI INTIDs."""

    rc_index: int
    window: MemoryRange
    event_intid: int
    gerror_intid: int


@dataclass(frozen=True, slots=True)
class PcieBridge:
    index: int
    ranges: RootComplexRanges
    preserve_bars: bool = False


def initrd_bounds(ram: tuple[MemoryRangeWithNode, ...], size: int = 0) -> tuple[int, int]:
    """(start, end) where the loader puts the initrd: first RAM address + 16 MiB, `size`
    bytes (byte granular: an initrd is a file, not pages)."""
    if not ram:
        raise VmLayoutError("invalid_layout", "linux device tree: the layout has no RAM")
    start = ram[0].range.start + INITRD_OFFSET
    return start, start + size


def smmu_instances(resolved: ResolvedLayout, gic: GicPlatform) -> tuple[SmmuInstance, ...]:
    """Every root complex with an SMMU, in config order, with its resolved MMIO and the
    SPIs the top-down SPI layout gives it (after any v2m block)."""
    from vmlayout.policy import IommuKind

    if resolved.iommu_kind is not IommuKind.SMMU:
        return ()
    with_iommu = [
        (i, rc.iommu)
        for i, rc in enumerate(resolved.pcie_root_complexes)
        if not rc.iommu.is_empty()
    ]
    _, spis = gic.spi_layout(len(with_iommu))
    return tuple(
        SmmuInstance(rc_index, r, event, gerror)
        for (rc_index, r), (event, gerror) in zip(with_iommu, spis, strict=True)
    )


def pcie_bridges(resolved: ResolvedLayout) -> tuple[PcieBridge, ...]:
    return tuple(
        PcieBridge(i, ranges, rc.preserve_bars)
        for i, (rc, ranges) in enumerate(
            zip(resolved.config.pcie_root_complexes, resolved.pcie_root_complexes, strict=True)
        )
    )


def vmbus_node(chipset: ChipsetMmioRanges) -> Node:
    low, high = chipset.low, chipset.high
    return Node(
        "vmbus",
        (
            ("#address-cells", u32(2)),
            ("#size-cells", u32(2)),
            ("dma-coherent", empty()),
            ("ranges", u64s(low.start, low.size, high.start, high.size)),
            ("compatible", string("microsoft,vmbus")),
            ("interrupt-parent", u32(PHANDLE_GIC)),
            ("interrupts", u32s(GIC_PPI, VMBUS_PPI - 16, IRQ_EDGE_RISING)),
        ),
    )


def distance_map(node_count: int, distances: tuple[tuple[int, int, int], ...]) -> Node:
    """`distance-map` (numa-distance-map-v1): every (from, to, distance) of the SLIT
    matrix, 10 local and 20 remote with the configured overrides applied."""
    matrix = {(i, j): 10 if i == j else 20 for i in range(node_count) for j in range(node_count)}
    for src, dst, distance in distances:
        matrix[(src, dst)] = distance
    entries = b"".join(u32s(i, j, d) for (i, j), d in sorted(matrix.items()))
    return Node(
        "distance-map",
        (("compatible", string("numa-distance-map-v1")), ("distance-matrix", entries)),
    )


def memory_nodes(ram: tuple[MemoryRangeWithNode, ...], numa: bool = False) -> tuple[Node, ...]:
    return tuple(
        Node(
            unit_name("memory", r.range.start),
            (
                ("device_type", string("memory")),
                ("reg", u64s(r.range.start, r.range.size)),
                *((("numa-node-id", u32(r.vnode)),) if numa else ()),
            ),
        )
        for r in ram
    )


def _gic_node(options: LinuxDtOptions) -> Node:
    gic = options.gic
    redist = options.redistributors
    msi: tuple[Node, ...] = ()
    if gic.msi == "its":
        msi = (
            Node(
                unit_name("its", gic.its_base),
                (
                    ("compatible", string("arm,gic-v3-its")),
                    ("msi-controller", empty()),
                    ("reg", u64s(gic.its_base, GIC_ITS_SIZE)),
                    ("phandle", u32(PHANDLE_ITS)),
                ),
            ),
        )
    elif gic.msi == "v2m":
        v2m_base, _ = gic.spi_layout(0)
        assert v2m_base is not None
        msi = (
            Node(
                unit_name("v2m", gic.v2m_frame_base),
                (
                    ("compatible", string("arm,gic-v2m-frame")),
                    ("msi-controller", empty()),
                    ("reg", u64s(gic.v2m_frame_base, GIC_V2M_FRAME_SIZE)),
                    ("arm,msi-base-spi", u32(v2m_base)),
                    ("arm,msi-num-spis", u32(gic.v2m_spi_count)),
                    ("phandle", u32(PHANDLE_V2M)),
                ),
            ),
        )
    return Node(
        unit_name("intc", gic.distributor_base),
        (
            ("compatible", string("arm,gic-v3")),
            ("reg", u64s(gic.distributor_base, GICD_SIZE, redist.start, redist.size)),
            ("#address-cells", u32(2)),
            ("#size-cells", u32(2)),
            ("#interrupt-cells", u32(3)),
            ("interrupt-controller", empty()),
            ("phandle", u32(PHANDLE_GIC)),
            ("ranges", empty()),
        ),
        msi,
    )


def _smmu_node(n: int, smmu: SmmuInstance) -> Node:
    return Node(
        unit_name("smmu", smmu.window.start),
        (
            ("compatible", string("arm,smmu-v3")),
            ("reg", u64s(smmu.window.start, smmu.window.size)),
            # GIC_SPI cells carry the SPI number, INTID - 32
            (
                "interrupts",
                u32s(
                    GIC_SPI,
                    smmu.event_intid - 32,
                    IRQ_LEVEL_HIGH,
                    GIC_SPI,
                    smmu.gerror_intid - 32,
                    IRQ_LEVEL_HIGH,
                ),
            ),
            ("interrupt-names", string("eventq") + string("gerror")),
            ("#iommu-cells", u32(1)),
            ("phandle", u32(PHANDLE_SMMU_BASE + n)),
            ("dma-coherent", empty()),
        ),
    )


def pci_ranges(low: MemoryRange, high: MemoryRange, prefetchable_high: bool = False) -> bytes:
    """Identity-mapped PCI memory windows, 7 cells each (phys.hi/mid/lo, cpu, size);
    an empty window is left out rather than written with size 0."""
    out = b""
    if not low.is_empty():
        out += u32s(PCI_SPACE_MEM32, 0, low.start & 0xFFFF_FFFF) + u64s(low.start, low.size)
    if not high.is_empty():
        space = PCI_SPACE_MEM64 | (PCI_SPACE_PREFETCHABLE if prefetchable_high else 0)
        out += u32s(space) + u64s(high.start, high.start, high.size)
    return out


def _pcie_node(
    bridge: PcieBridge, options: LinuxDtOptions, smmus: tuple[SmmuInstance, ...]
) -> Node:
    rc = bridge.ranges
    props: list[tuple[str, bytes]] = [
        ("compatible", string("pci-host-ecam-generic")),
        ("device_type", string("pci")),
        ("linux,pci-domain", u32(rc.segment)),
        ("reg", u64s(rc.ecam.start, rc.ecam.size)),
        ("bus-range", u32s(rc.start_bus, rc.end_bus)),
        ("#address-cells", u32(3)),
        ("#size-cells", u32(2)),
        ("interrupt-parent", u32(PHANDLE_GIC)),
        ("ranges", pci_ranges(rc.low_mmio, rc.high_mmio, options.platform.linux.prefetchable_high)),
    ]
    if options.gic.msi == "its":
        props.append(("msi-parent", u32(PHANDLE_ITS)))
    elif options.gic.msi == "v2m":
        props.append(("msi-parent", u32(PHANDLE_V2M)))
    for n, smmu in enumerate(smmus):
        if smmu.rc_index == bridge.index:
            props.append(("iommu-map", u32s(0, PHANDLE_SMMU_BASE + n, 0, IOMMU_MAP_LENGTH)))
    if bridge.preserve_bars:
        # keep firmware-assigned buses and BARs: the DT twin of the ACPI _DSM
        props.append(("linux,pci-probe-only", u32(1)))
    return Node(unit_name("pcie", rc.ecam.start), tuple(props))


def linux_tree(
    ram: tuple[MemoryRangeWithNode, ...],
    chipset: ChipsetMmioRanges,
    options: LinuxDtOptions = LinuxDtOptions(),
    bridges: tuple[PcieBridge, ...] = (),
    smmus: tuple[SmmuInstance, ...] = (),
    node_count: int = 1,
    distances: tuple[tuple[int, int, int], ...] = (),
) -> Node:
    n = options.vp_count
    gic = options.gic
    ids = options.processors.processor_ids(Arch.AARCH64)
    numa = options.platform.linux.numa
    vnodes = options.processors.vnodes(node_count, Arch.AARCH64)
    cpus = tuple(
        Node(
            f"cpu@{i}",
            (
                ("reg", u32(ids[i])),
                ("device_type", string("cpu")),
                *((("enable-method", string("psci")),) if n > 1 else ()),
                ("status", string("okay" if i == 0 else "disabled")),
                *((("numa-node-id", u32(vnodes[i])),) if numa else ()),
            ),
        )
        for i in range(n)
    )
    uarts = tuple(
        Node(
            unit_name("uart", base),
            (
                ("compatible", string("arm,sbsa-uart") + string("arm,primecell")),
                ("clock-names", string("apb_pclk")),
                ("clocks", u32(PHANDLE_CLOCK)),
                ("interrupt-parent", u32(PHANDLE_GIC)),
                ("reg", u64s(base, 0x1000)),
                ("current-speed", u32(PL011_BAUD)),
                ("arm,primecell-periphid", u32(PL011_PERIPH_ID)),
                ("interrupts", u32s(GIC_SPI, spi, IRQ_LEVEL_HIGH)),
                ("status", string("okay")),
            ),
        )
        for base, spi in zip(UART_BASES, UART_SPIS, strict=True)
        if options.serial
    )
    initrd_start, initrd_end = initrd_bounds(ram, options.initrd_size)
    chosen: list[tuple[str, bytes]] = [
        ("bootargs", string(options.bootargs)),
        ("linux,initrd-start", u64s(initrd_start)),
        ("linux,initrd-end", u64s(initrd_end)),
    ]
    if options.serial:
        chosen.append(("stdout-path", string(f"/hvlite/uart@{UART_BASES[0]:x}")))  # sic, §10.2
    return Node(
        "",
        (
            ("#address-cells", u32(2)),
            ("#size-cells", u32(2)),
            ("interrupt-parent", u32(PHANDLE_GIC)),
            ("model", string("microsoft,openvmm")),
            ("compatible", string("microsoft,openvmm")),
        ),
        (
            Node(
                "cpus",
                (
                    ("compatible", string("arm,armv8")),
                    ("#address-cells", u32(1)),
                    ("#size-cells", u32(0)),
                ),
                cpus,
            ),
            Node("psci", (("compatible", string("arm,psci-0.2")), ("method", string("hvc")))),
            *memory_nodes(ram, numa),
            *((distance_map(node_count, distances),) if numa else ()),
            Node(
                "apb-pclk",
                (
                    ("compatible", string("fixed-clock")),
                    ("clock-frequency", u32(24_000_000)),
                    ("clock-output-names", string("clk24mhz")),
                    ("#clock-cells", u32(0)),
                    ("phandle", u32(PHANDLE_CLOCK)),
                ),
            ),
            _gic_node(options),
            *(_smmu_node(i, smmu) for i, smmu in enumerate(smmus)),
            Node(
                "timer",
                (
                    ("compatible", string("arm,armv8-timer")),
                    ("interrupt-parent", u32(PHANDLE_GIC)),
                    ("interrupt-names", string("virt")),
                    ("interrupts", u32s(GIC_PPI, gic.virt_timer_ppi - 16, IRQ_LEVEL_LOW)),
                    ("always-on", empty()),
                ),
            ),
            *(_pcie_node(b, options, smmus) for b in bridges),
            Node(
                "openvmm",
                (
                    ("compatible", string("simple-bus")),
                    ("#address-cells", u32(2)),
                    ("#size-cells", u32(2)),
                    ("ranges", empty()),
                    ("interrupt-parent", u32(PHANDLE_GIC)),
                ),
                (*uarts, vmbus_node(chipset)),
            ),
            Node("chosen", tuple(chosen)),
        ),
    )


def linux_tree_of(resolved: ResolvedLayout) -> Node:
    """The whole tree of the aarch64 VM `resolved` describes: RAM, chipset windows,
    every root complex and SMMU, its processors and platform."""
    options = LinuxDtOptions.of(resolved.config)
    return linux_tree(
        resolved.memory_layout.ram,
        resolved.chipset,
        options,
        pcie_bridges(resolved),
        smmu_instances(resolved, options.gic),
        len(resolved.config.node_mem_sizes),
        resolved.config.numa_distances,
    )


def linux_dtb_of(resolved: ResolvedLayout) -> bytes:
    return build_fdt(linux_tree_of(resolved))


def build_linux_dtb(
    ram: tuple[MemoryRangeWithNode, ...],
    chipset: ChipsetMmioRanges,
    options: LinuxDtOptions = LinuxDtOptions(),
) -> bytes:
    return build_fdt(linux_tree(ram, chipset, options))


def _error(kind: str, reason: str) -> VmLayoutError:
    return VmLayoutError(kind, f"linux device tree: {reason}")


def _page_range(start: int, length: int, what: str) -> MemoryRange:
    end = start + length
    if end >= 1 << 64:
        raise _error("invalid_dtb", f"{what} overflows 64 bits")
    if start % PAGE_SIZE or length % PAGE_SIZE:
        raise _error("invalid_dtb", f"{what} is not 4 KiB aligned")
    return MemoryRange(start, end)


def parse_linux_chipset(blob: bytes) -> ChipsetMmioRanges:
    """§2.4: low and high from `/openvmm/vmbus`; vtl2 is not in this tree."""
    return chipset_from_linux_tree(read_fdt(blob))


def chipset_from_linux_tree(root: Node) -> ChipsetMmioRanges:
    bus = root.child("openvmm")
    vmbus = None if bus is None else bus.child("vmbus")
    if vmbus is None or vmbus.prop("compatible") != string("microsoft,vmbus"):
        raise _error("missing_vmbus_node", "no /openvmm/vmbus node with microsoft,vmbus")
    for cells in ("#address-cells", "#size-cells"):
        if vmbus.prop(cells) != u32(2):
            raise _error("bad_cells", f"/openvmm/vmbus {cells} is not 2")
    ranges = vmbus.prop("ranges")
    if ranges is None or len(ranges) != 32:
        raise _error("bad_ranges_length", "/openvmm/vmbus ranges is not 32 bytes")
    a, b, c, d = u64_array(ranges, "ranges")
    return ChipsetMmioRanges(
        _page_range(a, b, "vmbus low window"), _page_range(c, d, "vmbus high window"), EMPTY
    )


def ram_from_linux_tree(root: Node) -> tuple[MemoryRange, ...]:
    out = []
    for node in root.children:
        if node.prop("device_type") == string("memory"):
            reg = node.prop("reg") or b""
            values = u64_array(reg, f"{node.name} reg")
            if len(values) != 2:
                raise _error("invalid_dtb", f"{node.name} reg is not one (start, size) pair")
            out.append(_page_range(values[0], values[1], node.name))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class DtPcieBridge:
    """A `pcie@` node read back: what a kernel would take as the root complex."""

    name: str
    segment: int
    start_bus: int
    end_bus: int
    ecam: MemoryRange
    low_mmio: MemoryRange
    high_mmio: MemoryRange
    #: The MMIO of the SMMU its iommu-map points at, if any.
    smmu: MemoryRange | None


def _u32_of(node: Node, name: str) -> int:
    value = node.prop(name)
    if value is None or len(value) != 4:
        raise _error("invalid_dtb", f"{node.name}: {name} is not one u32")
    return int.from_bytes(value, "big")


def _pci_windows(node: Node) -> tuple[MemoryRange, MemoryRange]:
    """(low, high) from 7-cell identity `ranges` entries; a missing window is EMPTY."""
    raw = node.prop("ranges") or b""
    if len(raw) % 28:
        raise _error("invalid_dtb", f"{node.name}: ranges is not whole 7-cell entries")
    low, high = EMPTY, EMPTY
    for offset in range(0, len(raw), 28):
        space = int.from_bytes(raw[offset : offset + 4], "big")
        pci, cpu, size = (
            int.from_bytes(raw[offset + 4 : offset + 12], "big"),
            int.from_bytes(raw[offset + 12 : offset + 20], "big"),
            int.from_bytes(raw[offset + 20 : offset + 28], "big"),
        )
        kind = space & 0x0300_0000
        if kind == PCI_SPACE_MEM32:
            pci &= 0xFFFF_FFFF  # phys.mid is 0 for 32-bit space
        if pci != cpu:
            raise _error("invalid_dtb", f"{node.name}: ranges entry is not identity mapped")
        window = _page_range(cpu, size, f"{node.name} window")
        if kind == PCI_SPACE_MEM32 and low.is_empty():
            low = window
        elif kind == PCI_SPACE_MEM64 and high.is_empty():
            high = window
        else:
            raise _error("invalid_dtb", f"{node.name}: unexpected ranges space {space:#x}")
    return low, high


def pcie_from_linux_tree(root: Node) -> tuple[DtPcieBridge, ...]:
    """Every `pcie@` host bridge with its SMMU (followed through iommu-map's phandle)."""
    smmus: dict[int, MemoryRange] = {}
    for node in root.children:
        if node.prop("compatible") == string("arm,smmu-v3"):
            reg = u64_array(node.prop("reg") or b"", f"{node.name} reg")
            if len(reg) != 2:
                raise _error("invalid_dtb", f"{node.name}: reg is not one (start, size) pair")
            smmus[_u32_of(node, "phandle")] = _page_range(reg[0], reg[1], node.name)
    out = []
    for node in root.children:
        if node.prop("compatible") != string("pci-host-ecam-generic"):
            continue
        reg = u64_array(node.prop("reg") or b"", f"{node.name} reg")
        bus = node.prop("bus-range") or b""
        if len(reg) != 2 or len(bus) != 8:
            raise _error("invalid_dtb", f"{node.name}: reg or bus-range malformed")
        smmu = None
        iommu_map = node.prop("iommu-map")
        if iommu_map is not None:
            if len(iommu_map) != 16:
                raise _error("invalid_dtb", f"{node.name}: iommu-map is not one entry")
            phandle = int.from_bytes(iommu_map[4:8], "big")
            if phandle not in smmus:
                raise _error("invalid_dtb", f"{node.name}: iommu-map names no SMMU node")
            smmu = smmus[phandle]
        low, high = _pci_windows(node)
        out.append(
            DtPcieBridge(
                node.name,
                _u32_of(node, "linux,pci-domain"),
                int.from_bytes(bus[:4], "big"),
                int.from_bytes(bus[4:], "big"),
                _page_range(reg[0], reg[1], f"{node.name} ECAM"),
                low,
                high,
                smmu,
            )
        )
    return tuple(out)
