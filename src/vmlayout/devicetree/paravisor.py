"""The paravisor's view of the layout (spec 05 §3 to §6).

Host side: the IGVM `MmioRanges` and `MemoryMap` parameter areas and the host device
tree with the VTL0 and VTL2 VMBus windows. Paravisor side: the host-tree parser's
rules, the positional reconstruction of `ChipsetMmioRanges`, the VPCI relay
carve-out, the VTL0 memory layout with its shared pool, and untrusted MMIO under
vTOM. The canonical empty high window (`[4 GiB, 4 GiB)`) must survive every step:
normalising it to `[0, 0)` would let the host parser's swap rule reorder the windows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vmlayout.arch import Arch, InterruptController
from vmlayout.binfmt import Struct
from vmlayout.devicetree.fdt import (
    Node,
    build_fdt,
    empty,
    read_fdt,
    string,
    u32,
    u64_array,
    u64s,
    unit_name,
)
from vmlayout.errors import VmLayoutError
from vmlayout.layout import ChipsetMmioRanges, MemoryLayout, MemoryRangeWithNode, from_ranges
from vmlayout.platform import ParavisorPlatform
from vmlayout.ranges import EMPTY, PAGE_SIZE, MemoryRange

if TYPE_CHECKING:
    from vmlayout.policy import ResolvedLayout

MEMORY = 0
PLATFORM_RESERVED = 1
PERSISTENT = 2
VTL2_PROTECTABLE = 3
VMBUS_REDIRECT_CONNECTION_ID = 0x800074
VTL2_CONNECTION_ID = 4
VTL0_CONNECTION_ID = 1
VTL2_MMIO_SIZE = 128 * 1024 * 1024
VPCI_PER_DEVICE = 0x2000
VPCI_DEVICES = 64
VPCI_REQUIRED = VPCI_DEVICES * VPCI_PER_DEVICE

MMIO_RANGE = Struct(
    "IGVM_VHS_MEMORY_RANGE", (("starting_gpa_page_number", "Q"), ("number_of_pages", "Q"))
)
MEMORY_MAP_ENTRY = Struct(
    "IGVM_VHS_MEMORY_MAP_ENTRY",
    (
        ("starting_gpa_page_number", "Q"),
        ("number_of_pages", "Q"),
        ("entry_type", "H"),
        ("flags", "H"),
        ("reserved", "I"),
    ),
)


def _bad(kind: str, reason: str) -> VmLayoutError:
    return VmLayoutError(kind, reason)


# --- host side: IGVM parameter areas ----------------------------------------------------


def encode_mmio_ranges(chipset: ChipsetMmioRanges) -> bytes:
    """32 bytes: low then high as (page number, page count); vtl2 is not written."""
    return b"".join(
        MMIO_RANGE.pack(
            starting_gpa_page_number=r.start // PAGE_SIZE, number_of_pages=r.size // PAGE_SIZE
        )
        for r in (chipset.low, chipset.high)
    )


def decode_mmio_ranges(data: bytes) -> tuple[MemoryRange, MemoryRange]:
    if len(data) != 2 * MMIO_RANGE.size:
        raise _bad("invalid_igvm_parameter", f"MmioRanges: {len(data)} bytes, expected 32")
    out = []
    for offset in (0, MMIO_RANGE.size):
        e = MMIO_RANGE.unpack(data, offset)
        start = e["starting_gpa_page_number"] * PAGE_SIZE
        end = start + e["number_of_pages"] * PAGE_SIZE
        if end >= 1 << 64:
            raise _bad("invalid_igvm_parameter", f"MmioRanges entry at {offset}: beyond 2^64")
        out.append(MemoryRange(start, end))
    return out[0], out[1]


@dataclass(frozen=True, slots=True)
class MemoryMapEntry:
    range: MemoryRange
    entry_type: int
    vnode: int


def memory_map(
    ram: tuple[MemoryRangeWithNode, ...], vtl2_protectable: tuple[MemoryRange, ...] = ()
) -> tuple[MemoryMapEntry, ...]:
    """RAM pieces in ascending order, VTL2-protectable parts typed as such."""
    out: list[MemoryMapEntry] = []
    for r in sorted(ram, key=lambda x: x.range.start):
        cursor = r.range.start
        for p in sorted(vtl2_protectable):
            piece = p.intersection(r.range)
            if piece.is_empty():
                continue
            if piece.start > cursor:
                out.append(MemoryMapEntry(MemoryRange(cursor, piece.start), MEMORY, r.vnode))
            out.append(MemoryMapEntry(piece, VTL2_PROTECTABLE, r.vnode))
            cursor = piece.end
        if cursor < r.range.end:
            out.append(MemoryMapEntry(MemoryRange(cursor, r.range.end), MEMORY, r.vnode))
    ram_ranges = [r.range for r in ram]
    for p in vtl2_protectable:
        if not any(x.contains(p) for x in ram_ranges):
            raise _bad("invalid_layout", f"VTL2-protectable range {p} is outside RAM")
    return tuple(out)


def host_memory_map(layout: MemoryLayout) -> tuple[MemoryMapEntry, ...]:
    """What the IGVM loader reports: every RAM range plus the layout's VTL2 range,
    the latter (vnode 0) VTL2-protectable so the paravisor may keep it from VTL0."""
    ram = layout.ram
    vtl2 = layout.vtl2_range
    if vtl2 is None or vtl2.is_empty():
        return memory_map(ram)
    return memory_map((*ram, MemoryRangeWithNode(vtl2, 0)), (vtl2,))


def encode_memory_map(entries: tuple[MemoryMapEntry, ...]) -> bytes:
    return b"".join(
        MEMORY_MAP_ENTRY.pack(
            starting_gpa_page_number=e.range.start // PAGE_SIZE,
            number_of_pages=e.range.size // PAGE_SIZE,
            entry_type=e.entry_type,
            flags=0,
            reserved=0,
        )
        for e in entries
    )


# --- host side: the device tree ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParavisorDtOptions:
    """The paravisor platform choices (`platform.paravisor`: VMBus redirection, who
    allocates VTL2 memory — "vtl2" adds `mmio-size` 128 MiB and `memory-size` when
    given — and the command line). VPs and their vNUMA nodes come from the config's
    processors section (`paravisor_dtb_of`), never from here."""

    platform: ParavisorPlatform = field(default_factory=ParavisorPlatform)

    @property
    def vmbus_redirection(self) -> bool:
        return self.platform.vmbus_redirection

    @property
    def memory_allocation_mode(self) -> str:
        return self.platform.memory_allocation_mode

    @property
    def vtl2_memory_size(self) -> int | None:
        return self.platform.vtl2_memory_size

    @property
    def bootargs(self) -> str:
        return self.platform.bootargs


def _triples(windows: list[MemoryRange]) -> bytes:
    return b"".join(u64s(w.start, w.start, w.size) for w in windows)


def vmbus_nodes(chipset: ChipsetMmioRanges, redirection: bool) -> tuple[Node, Node]:
    vtl0 = Node(
        unit_name("vmbus-vtl0", chipset.low.start),
        (
            ("#address-cells", u32(2)),
            ("#size-cells", u32(2)),
            ("compatible", string("microsoft,vmbus")),
            ("ranges", _triples([chipset.low, chipset.high])),
            ("microsoft,vtl", u32(0)),
            ("microsoft,message-connection-id", u32(VTL0_CONNECTION_ID)),
        ),
    )
    vtl2_empty = chipset.vtl2.is_empty()
    vtl2 = Node(
        unit_name("vmbus-vtl2", None if vtl2_empty else chipset.vtl2.start),
        (
            ("#address-cells", u32(2)),
            ("#size-cells", u32(2)),
            ("compatible", string("microsoft,vmbus")),
            ("ranges", empty() if vtl2_empty else _triples([chipset.vtl2])),
            ("microsoft,vtl", u32(2)),
            (
                "microsoft,message-connection-id",
                u32(VMBUS_REDIRECT_CONNECTION_ID if redirection else VTL2_CONNECTION_ID),
            ),
        ),
    )
    return vtl0, vtl2


def paravisor_tree(
    entries: tuple[MemoryMapEntry, ...],
    chipset: ChipsetMmioRanges,
    vp_vnodes: tuple[int, ...] = (0,),
    options: ParavisorDtOptions = ParavisorDtOptions(),
) -> Node:
    cpus = tuple(
        Node(
            unit_name("cpu", vp + 1),
            (
                ("device_type", string("cpu")),
                ("reg", u32(vp)),
                ("numa-node-id", u32(vnode)),
                ("status", string("okay")),
            ),
        )
        for vp, vnode in enumerate(vp_vnodes)
    )
    memory = tuple(
        Node(
            unit_name("memory", e.range.start),
            (
                ("device_type", string("memory")),
                ("reg", u64s(e.range.start, e.range.size)),
                ("microsoft,igvm-type", u32(e.entry_type)),
                ("numa-node-id", u32(e.vnode)),
            ),
        )
        for e in reversed(entries)  # descending on purpose: the parser must sort
    )
    openhcl: list[tuple[str, bytes]] = []
    if options.memory_allocation_mode == "vtl2":
        if options.vtl2_memory_size is not None:
            openhcl.append(("memory-size", u64s(options.vtl2_memory_size)))
        openhcl.append(("mmio-size", u64s(VTL2_MMIO_SIZE)))
    openhcl.append(("memory-allocation-mode", string(options.memory_allocation_mode)))
    return Node(
        "",
        (
            ("#address-cells", u32(2)),
            ("#size-cells", u32(2)),
            ("model", string("microsoft,hyperv")),
        ),
        (
            Node("cpus", (("#address-cells", u32(1)), ("#size-cells", u32(0))), cpus),
            *memory,
            Node(
                "bus",
                (
                    ("compatible", string("simple-bus")),
                    ("#address-cells", u32(2)),
                    ("#size-cells", u32(2)),
                    ("ranges", empty()),
                ),
                vmbus_nodes(chipset, options.vmbus_redirection),
            ),
            Node("chosen", (("bootargs", string(options.bootargs)),)),
            Node(
                "openhcl",
                tuple(openhcl),
                (Node("keep-alive", (("device-types", string("nvme")),)),),
            ),
        ),
    )


def build_paravisor_dtb(
    entries: tuple[MemoryMapEntry, ...],
    chipset: ChipsetMmioRanges,
    vp_vnodes: tuple[int, ...] = (0,),
    options: ParavisorDtOptions = ParavisorDtOptions(),
) -> bytes:
    return build_fdt(paravisor_tree(entries, chipset, vp_vnodes, options))


def paravisor_dtb_of(resolved: ResolvedLayout) -> bytes:
    """The host tree of the x86_64 VM `resolved` describes: RAM and VTL2 range, its VPs
    placed in vNUMA nodes by the one placement rule SRAT also uses, chipset windows."""
    config = resolved.config
    return build_paravisor_dtb(
        host_memory_map(resolved.memory_layout),
        resolved.chipset,
        config.processors.vnodes(len(config.node_mem_sizes), config.arch),
        ParavisorDtOptions(config.platform.paravisor),
    )


# --- paravisor side: host_fdt_parser rules (§4.1) --------------------------------------


@dataclass(frozen=True, slots=True)
class HostVmbus:
    vtl: int
    windows: tuple[MemoryRange, ...]
    connection_id: int


@dataclass(frozen=True, slots=True)
class HostTree:
    vtl0: HostVmbus | None
    vtl2: HostVmbus | None
    memory: tuple[MemoryMapEntry, ...]  # ascending


def _u32_prop(node: Node, name: str) -> int:
    value = node.prop(name)
    if value is None:
        raise _bad("prop_missing", f"{node.name}: {name} is missing")
    if len(value) != 4:
        raise _bad("prop_invalid_u32", f"{node.name}: {name} is not one u32")
    return int.from_bytes(value, "big")


def _vmbus(node: Node) -> HostVmbus:
    vtl = _u32_prop(node, "microsoft,vtl")
    if vtl not in (0, 2):
        raise _bad("unexpected_vmbus_vtl", f"{node.name}: microsoft,vtl {vtl}")
    for cells in ("#address-cells", "#size-cells"):
        if _u32_prop(node, cells) != 2:
            raise _bad("prop_invalid_u32", f"{node.name}: {cells} is not 2")
    ranges = node.prop("ranges")
    windows: list[MemoryRange] = []
    if ranges is not None:
        count = len(ranges) // 24
        if count > 2:
            raise _bad("too_many_vmbus_mmio_ranges", f"{node.name}: {count} windows")
        values = u64_array(ranges[: count * 24], f"{node.name} ranges")
        for i in range(count):
            child, parent, length = values[3 * i : 3 * i + 3]
            if child != parent:
                raise _bad("vmbus_ranges_child_parent", f"{node.name}: window {i} child≠parent")
            if child % PAGE_SIZE or length % PAGE_SIZE or child + length >= 1 << 64:
                raise _bad("vmbus_ranges_not_aligned", f"{node.name}: window {i} not aligned")
            windows.append(MemoryRange(child, child + length))
    if len(windows) == 2 and windows[0].start > windows[1].start:
        windows.reverse()
    if len(windows) == 2 and windows[0].overlaps(windows[1]):
        raise _bad("vmbus_mmio_overlaps_vmbus_mmio", f"{node.name}: windows overlap")
    return HostVmbus(vtl, tuple(windows), _u32_prop(node, "microsoft,message-connection-id"))


def parse_host_tree(blob: bytes) -> HostTree:
    root = read_fdt(blob)
    found: dict[int, HostVmbus] = {}
    for bus in root.children:
        if bus.prop("compatible") != string("simple-bus"):
            continue
        ranges = bus.prop("ranges")
        if ranges is None:
            raise _bad("prop_missing", f"{bus.name}: ranges is missing")
        if ranges:
            continue
        for node in bus.children:
            if node.prop("compatible") != string("microsoft,vmbus"):
                continue
            vmbus = _vmbus(node)
            if vmbus.vtl in found:
                raise _bad("multiple_vmbus_node", f"two VMBus nodes for VTL{vmbus.vtl}")
            found[vmbus.vtl] = vmbus
    memory = []
    for node in root.children:
        if node.prop("device_type") != string("memory"):
            continue
        values = u64_array(node.prop("reg") or b"", f"{node.name} reg")
        if len(values) != 2 or values[0] % PAGE_SIZE or values[1] % PAGE_SIZE:
            raise _bad("invalid_dtb", f"{node.name}: reg is not one aligned (start, size)")
        if values[0] + values[1] >= 1 << 64:
            raise _bad("invalid_dtb", f"{node.name}: reg overflows")
        memory.append(
            MemoryMapEntry(
                MemoryRange(values[0], values[0] + values[1]),
                _u32_prop(node, "microsoft,igvm-type"),
                _u32_prop(node, "numa-node-id"),
            )
        )
    memory.sort(key=lambda e: e.range.start)
    ram = [e.range for e in memory]
    windows = [w for v in found.values() for w in v.windows if not w.is_empty()]
    for w in windows:
        if any(w.overlaps(r) for r in ram):
            raise _bad("vmbus_mmio_overlaps_ram", f"VMBus window {w} overlaps RAM")
    vtl0 = [w for w in (found[0].windows if 0 in found else ()) if not w.is_empty()]
    vtl2 = [w for w in (found[2].windows if 2 in found else ()) if not w.is_empty()]
    if any(a.overlaps(b) for a in vtl0 for b in vtl2):
        raise _bad("vmbus_mmio_overlaps_vmbus_mmio", "a VTL0 window overlaps a VTL2 window")
    return HostTree(found.get(0), found.get(2), tuple(memory))


def chipset_from_host_tree(tree: HostTree) -> ChipsetMmioRanges:
    """Positional assignment (§8 parse_B): VTL0 [0] low, [1] high; VTL2 [0] vtl2."""
    vtl0 = tree.vtl0.windows if tree.vtl0 else ()
    vtl2 = tree.vtl2.windows if tree.vtl2 else ()
    return ChipsetMmioRanges(
        vtl0[0] if len(vtl0) >= 1 else EMPTY,
        vtl0[1] if len(vtl0) >= 2 else EMPTY,
        vtl2[0] if vtl2 else EMPTY,
    )


def parse_paravisor_chipset(blob: bytes) -> ChipsetMmioRanges:
    return chipset_from_host_tree(parse_host_tree(blob))


# --- paravisor worker (§6) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParavisorMmio:
    """The paravisor's two-field `ChipsetMmioRanges` (no vtl2)."""

    low: MemoryRange
    high: MemoryRange


def reconstruct_chipset(vtl0_mmio: list[MemoryRange] | tuple[MemoryRange, ...]) -> ParavisorMmio:
    """§6.1: positional, EMPTY defaults, entries beyond index 1 ignored."""
    return ParavisorMmio(
        vtl0_mmio[0] if len(vtl0_mmio) >= 1 else EMPTY,
        vtl0_mmio[1] if len(vtl0_mmio) >= 2 else EMPTY,
    )


def carve_vpci_relay(mmio: ParavisorMmio, enabled: bool) -> tuple[ParavisorMmio, MemoryRange]:
    """§6.2: the relay's 64 device windows come off the top of high."""
    if not enabled:
        return mmio, EMPTY
    high = mmio.high
    if high.is_empty() or high.size < VPCI_REQUIRED:
        raise _bad("vpci_relay", "too little VTL0 MMIO space to take for the VPCI relay")
    split = high.end - VPCI_REQUIRED
    return ParavisorMmio(mmio.low, MemoryRange(high.start, split)), MemoryRange(split, high.end)


def vpci_slot(vpci: MemoryRange, k: int) -> MemoryRange:
    if (k + 1) * VPCI_PER_DEVICE > vpci.size:
        raise _bad("vpci_relay", "not enough MMIO space left")
    start = vpci.start + k * VPCI_PER_DEVICE
    return MemoryRange(start, start + VPCI_PER_DEVICE)


def build_vtl0_memory_layout(
    vtl0_memory_map: tuple[MemoryMapEntry, ...], mmio: ParavisorMmio, shared_pool_size: int
) -> tuple[MemoryLayout, MemoryLayout, tuple[MemoryRangeWithNode, ...]]:
    """§6.3: (VTL0 layout without the pool, complete layout, shared pool ranges)."""
    windows = tuple(r for r in (mmio.low, mmio.high) if not r.is_empty())
    filtered = list(vtl0_memory_map)
    skipped: list[MemoryMapEntry] = []
    pool: list[MemoryRangeWithNode] = []
    remaining = shared_pool_size
    while remaining:
        if not filtered:
            raise _bad(
                "shared_pool",
                f"unable to allocate shared_pool of size {shared_pool_size:#x} from VTL0 "
                "memory map",
            )
        last = filtered[-1]
        if last.entry_type != MEMORY:
            skipped.append(filtered.pop())
            continue
        if last.range.size > remaining:
            cut = last.range.end - remaining
            pool.append(MemoryRangeWithNode(MemoryRange(cut, last.range.end), last.vnode))
            filtered[-1] = MemoryMapEntry(
                MemoryRange(last.range.start, cut), last.entry_type, last.vnode
            )
            break
        remaining -= last.range.size
        pool.append(MemoryRangeWithNode(last.range, last.vnode))
        filtered.pop()
    filtered.extend(reversed(skipped))

    def layout(
        entries: list[MemoryMapEntry] | tuple[MemoryMapEntry, ...], what: str
    ) -> MemoryLayout:
        ram = tuple(MemoryRangeWithNode(e.range, e.vnode) for e in entries)
        try:
            return from_ranges(ram, windows)
        except VmLayoutError as error:
            raise _bad("invalid_layout", f"invalid {what}memory layout: {error.message}") from None

    return layout(filtered, ""), layout(vtl0_memory_map, "complete "), tuple(pool)


def untrusted_mmio(mmio: ParavisorMmio, vtom: int, arch: Arch) -> tuple[MemoryRange, ...] | None:
    """§6.4: None means "forward all MMIO to the host" (aarch64 — a GIC platform —
    without vTOM)."""
    if arch.spec.interrupt_controller is InterruptController.GIC and vtom == 0:
        return None
    base = [r for r in (mmio.low, mmio.high) if not r.is_empty()]
    shifted = [MemoryRange(r.start + vtom, r.end + vtom) for r in base] if vtom else []
    return tuple(base + shifted)


# --- the boot shim and the usermode parser (§4.2, §4.3, §5) -----------------------------

VTL0_MMIO = 5
VTL2_MMIO = 6
MIN_VTL2_MMIO = 128 * 1024 * 1024
MAX_VTL2_MMIO = 1024 * 1024 * 1024


def select_vtl2_mmio(
    vtl0: tuple[MemoryRange, ...],
    vtl2: tuple[MemoryRange, ...],
    host_mmio_size: int = 0,
    vtl2_allocation: bool = False,
) -> tuple[tuple[MemoryRange, ...], tuple[MemoryRange, ...]]:
    """§4.2: the (VTL0, VTL2) windows the shim hands on. In VTL2-allocation mode with no
    host VTL2 window, VTL2 takes the top of the highest VTL0 window above 4 GiB, sized
    from the high window (positional [1], as the reference does)."""
    if not vtl2_allocation:
        return vtl0, vtl2
    if sum(w.size for w in vtl2):
        if sum(w.size for w in vtl2) < host_mmio_size:
            raise _bad("not_enough_vtl2_mmio", "host VTL2 MMIO is smaller than mmio-size")
        return vtl0, vtl2
    if len(vtl0) < 2:
        raise _bad("not_enough_vtl0_mmio", "VTL2 MMIO sizing needs a second VTL0 window")
    size = max(host_mmio_size, min(max(vtl0[1].size // 2, MIN_VTL2_MMIO), MAX_VTL2_MMIO))
    for window in reversed(vtl0):
        if window.start < 1 << 32:
            continue
        if window.size < size:
            raise _bad("not_enough_vtl0_mmio", f"VTL0 window {window} is smaller than {size:#x}")
        taken = MemoryRange(window.end - size, window.end)
        remaining: list[MemoryRange] = []
        for w in vtl0:
            if w != window:
                remaining.append(w)  # empty windows are kept
            elif taken.start > w.start:
                remaining.append(MemoryRange(w.start, taken.start))
        if len(remaining) != 2:
            raise _bad("not_enough_vtl0_mmio", "VTL2 MMIO would consume a whole VTL0 window")
        return tuple(remaining), (taken,)
    raise _bad("not_enough_vtl0_mmio", "no VTL0 window above 4 GiB to take VTL2 MMIO from")


def kernel_openhcl_node(
    memory: tuple[MemoryMapEntry, ...],
    vtl0: tuple[MemoryRange, ...],
    vtl2: tuple[MemoryRange, ...],
    allocation_mode: str = "host",
) -> Node:
    """§4.3: `/openhcl` with RAM pieces, then VTL0 and VTL2 MMIO windows (empty ones
    included), each a `memory-openhcl` node."""
    children = [
        Node(
            unit_name("memory", e.range.start),
            (
                ("device_type", string("memory-openhcl")),
                ("reg", u64s(e.range.start, e.range.size)),
                ("numa-node-id", u32(e.vnode)),
                ("microsoft,igvm-type", u32(e.entry_type)),
                ("openhcl,memory-type", u32(0)),
            ),
        )
        for e in memory
    ]
    for kind, windows in ((VTL0_MMIO, vtl0), (VTL2_MMIO, vtl2)):
        children += [
            Node(
                unit_name("memory", w.start),
                (
                    ("device_type", string("memory-openhcl")),
                    ("reg", u64s(w.start, w.size)),
                    ("openhcl,memory-type", u32(kind)),
                ),
            )
            for w in windows
        ]
    return Node(
        "openhcl",
        (
            ("isolation-type", string("none")),
            ("memory-allocation-mode", string(allocation_mode)),
        ),
        tuple(children),
    )


def shim_kernel_dtb(host_blob: bytes, vtl2_allocation: bool = False) -> bytes:
    """Host DT -> the kernel DT's layout part, as the boot shim writes it."""
    host = parse_host_tree(host_blob)
    root = read_fdt(host_blob)
    openhcl = root.child("openhcl")
    size_prop = None if openhcl is None else openhcl.prop("mmio-size")
    host_mmio = u64_array(size_prop, "mmio-size")[0] if size_prop and len(size_prop) == 8 else 0
    vtl0, vtl2 = select_vtl2_mmio(
        host.vtl0.windows if host.vtl0 else (),
        host.vtl2.windows if host.vtl2 else (),
        host_mmio,
        vtl2_allocation,
    )
    mode = "vtl2" if vtl2_allocation else "host"
    return build_fdt(Node("", (), (kernel_openhcl_node(host.memory, vtl0, vtl2, mode),)))


def usermode_vtl0_mmio(kernel_blob: bytes) -> tuple[MemoryRange, ...]:
    """§5: every `/openhcl/memory@*` entry, stably sorted by start; the VTL0 MMIO ones."""
    root = read_fdt(kernel_blob)
    openhcl = root.child("openhcl")
    if openhcl is None:
        raise _bad("invalid_dtb", "kernel device tree has no /openhcl node")
    entries: list[tuple[MemoryRange, int]] = []
    for node in openhcl.children:
        if not node.name.startswith("memory@"):
            continue
        kind_prop = node.prop("openhcl,memory-type")
        if kind_prop is None or len(kind_prop) != 4:
            raise _bad("invalid_dtb", f"missing openhcl,memory-type on node {node.name}")
        kind = int.from_bytes(kind_prop, "big")
        reg = u64_array(node.prop("reg") or b"", f"{node.name} reg")
        if len(reg) != 2:
            what = "mmio" if kind in (VTL0_MMIO, VTL2_MMIO) else "memory"
            raise _bad("invalid_dtb", f"{what} node {node.name} does not have 2 u64s")
        start, length = reg
        if start % PAGE_SIZE or length % PAGE_SIZE or start + length >= 1 << 64:
            raise _bad("invalid_dtb", f"invalid mmio range on node {node.name}")
        entries.append((MemoryRange(start, start + length), kind))
    entries.sort(key=lambda e: e[0].start)  # stable: equal starts keep emission order
    return tuple(r for r, kind in entries if kind == VTL0_MMIO)
