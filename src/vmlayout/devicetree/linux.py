"""The arm64 Linux direct-boot device tree (spec 05 §2) and its parse-back (§2.4).

The VMBus node's `ranges` is the chipset-MMIO carrier: four u64 values, low then
high, with an empty high still written (its real start, length 0) — the reference's
(start, length) pair format, not generic DT triples.
"""

from __future__ import annotations

from dataclasses import dataclass

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
from vmlayout.ranges import EMPTY, PAGE_SIZE, MemoryRange

GIC_PHANDLE = 1
CLOCK_PHANDLE = 2
#: Not layout: a GICv3 inside the aarch64 architectural zone [0xEF00_0000, 4 GiB).
GICD_BASE = 0xFFFF_0000
GICD_SIZE = 0x1_0000
GICR_BASE = 0xEF00_0000
GICR_SIZE_PER_CPU = 0x2_0000
UART_BASES = (0xEFFEC000, 0xEFFEB000)


@dataclass(frozen=True, slots=True)
class LinuxDtOptions:
    cpu_count: int = 1
    serial: bool = False
    bootargs: str = ""
    initrd: MemoryRange = EMPTY

    def __post_init__(self) -> None:
        if not 1 <= self.cpu_count <= 128:
            raise VmLayoutError("invalid_argument", "cpu_count: must be 1..128")


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
            ("interrupt-parent", u32(GIC_PHANDLE)),
            ("interrupts", u32s(1, 2, 1)),
        ),
    )


def memory_nodes(ram: tuple[MemoryRangeWithNode, ...]) -> tuple[Node, ...]:
    return tuple(
        Node(
            unit_name("memory", r.range.start),
            (("device_type", string("memory")), ("reg", u64s(r.range.start, r.range.size))),
        )
        for r in ram
    )


def linux_tree(
    ram: tuple[MemoryRangeWithNode, ...],
    chipset: ChipsetMmioRanges,
    options: LinuxDtOptions = LinuxDtOptions(),
) -> Node:
    n = options.cpu_count
    cpus = tuple(
        Node(
            f"cpu@{i}",
            (
                ("reg", u32(i)),
                ("device_type", string("cpu")),
                *((("enable-method", string("psci")),) if n > 1 else ()),
                ("status", string("okay" if i == 0 else "disabled")),
            ),
        )
        for i in range(n)
    )
    uarts = tuple(
        Node(
            unit_name("uart", base),
            (
                ("compatible", string("arm,pl011") + string("arm,primecell")),
                ("reg", u64s(base, 0x1000)),
                ("interrupts", u32s(0, 1 + i, 4)),
                ("clocks", u32(CLOCK_PHANDLE)),
                ("clock-names", string("apb_pclk")),
            ),
        )
        for i, base in enumerate(UART_BASES)
        if options.serial
    )
    chosen: list[tuple[str, bytes]] = [("bootargs", string(options.bootargs))]
    if not options.initrd.is_empty():
        chosen += [
            ("linux,initrd-start", u64s(options.initrd.start)),
            ("linux,initrd-end", u64s(options.initrd.end)),
        ]
    if options.serial:
        chosen.append(("stdout-path", string("/hvlite/uart@effec000")))  # sic, spec 05 §10.2
    return Node(
        "",
        (
            ("#address-cells", u32(2)),
            ("#size-cells", u32(2)),
            ("interrupt-parent", u32(GIC_PHANDLE)),
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
            *memory_nodes(ram),
            Node(
                "apb-pclk",
                (
                    ("compatible", string("fixed-clock")),
                    ("#clock-cells", u32(0)),
                    ("clock-frequency", u32(24_000_000)),
                    ("clock-output-names", string("clk24mhz")),
                    ("phandle", u32(CLOCK_PHANDLE)),
                ),
            ),
            Node(
                unit_name("intc", GICD_BASE),
                (
                    ("compatible", string("arm,gic-v3")),
                    ("reg", u64s(GICD_BASE, GICD_SIZE, GICR_BASE, GICR_SIZE_PER_CPU * n)),
                    ("#address-cells", u32(2)),
                    ("#size-cells", u32(2)),
                    ("#interrupt-cells", u32(3)),
                    ("interrupt-controller", empty()),
                    ("phandle", u32(GIC_PHANDLE)),
                    ("ranges", empty()),
                ),
            ),
            Node(
                "timer",
                (
                    ("compatible", string("arm,armv8-timer")),
                    ("interrupts", u32s(1, 13, 8, 1, 14, 8, 1, 11, 8, 1, 10, 8)),
                    ("always-on", empty()),
                ),
            ),
            Node(
                "openvmm",
                (
                    ("compatible", string("simple-bus")),
                    ("#address-cells", u32(2)),
                    ("#size-cells", u32(2)),
                    ("ranges", empty()),
                    ("interrupt-parent", u32(GIC_PHANDLE)),
                ),
                (*uarts, vmbus_node(chipset)),
            ),
            Node("chosen", tuple(chosen)),
        ),
    )


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
