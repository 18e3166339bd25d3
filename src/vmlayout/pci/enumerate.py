"""Step 1 of spec 06: depth-first bus numbering and BAR probing (spec 06 §2, §3, §6).

The reference discovers devices through config space; here the device description
stands in for it, read the way the reference reads registers: a device is present when
function 0 is, an ARI device's functions come from its next-function chain, a 64-bit
BAR in the last register is sized as a 32-bit one, pinned addresses lose their low 4
flag bits. Bus errors stop the walk at the first offender in DFS order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vmlayout.devices import Bar, PciFunction
from vmlayout.errors import VmLayoutError
from vmlayout.pci.model import AssignmentParams, bdf_text

U16_MAX = 0xFFFF
U32_MASK = 0xFFFF_FFFF
U64_MASK = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class ProbedBar:
    index: int
    size: int
    is_64bit: bool
    prefetchable: bool
    pinned: int | None


@dataclass(frozen=True, slots=True)
class ProbedSriov:
    total_vfs: int
    vf_bars: tuple[ProbedBar, ...]


@dataclass(frozen=True, slots=True)
class Scanned:
    """One function as the scan found it; bridges carry their buses and children."""

    bus: int
    device: int
    function: int
    is_bridge: bool
    bars: tuple[ProbedBar, ...]
    sriov: ProbedSriov | None = None
    secondary: int | None = None
    subordinate: int | None = None
    children: tuple[Scanned, ...] = ()

    @property
    def bdf(self) -> str:
        return bdf_text(self.bus, self.device, self.function)


@dataclass(slots=True)
class ScanState:
    """What the walk accumulates besides the tree (the reference's side effects)."""

    next_bus: int
    end_bus: int
    preserve_bars: bool
    ari_forwarding_enabled: list[str] = field(default_factory=list)
    ari_capable_hierarchy: list[str] = field(default_factory=list)
    unscanned: list[str] = field(default_factory=list)


def bus_exhaustion(bus: int, device: int, function: int) -> VmLayoutError:
    return VmLayoutError(
        "bus_exhaustion",
        f"bus number exhaustion at bridge {bdf_text(bus, device, function)}",
    )


def probe_bars(bars: Sequence[Bar], slots: int, preserve: bool) -> tuple[ProbedBar, ...]:
    """What writing all-ones to each register reveals (spec 06 §3)."""
    by_index = {bar.index: bar for bar in bars}
    probed = []
    i = 0
    while i < slots:
        bar = by_index.get(i)
        if bar is None:
            i += 1
            continue
        pinned_raw = bar.pinned if preserve and bar.pinned is not None else 0
        if bar.is_64bit and i + 1 < slots:
            mask = ~(bar.size - 1) & U64_MASK & ~0xF
            if mask == 0:
                i += 2
                continue
            size = (~mask + 1) & U64_MASK
            pinned = pinned_raw & U64_MASK & ~0xF
        else:
            # A 32-bit BAR, or a 64-bit one in the last register: only the low dword.
            mask = ~(bar.size - 1) & U32_MASK & ~0xF
            if mask == 0:
                i += 1
                continue
            size = (1 << 32) - mask
            pinned = pinned_raw & U32_MASK & ~0xF
        probed.append(ProbedBar(i, size, bar.is_64bit, bar.prefetchable, pinned or None))
        i += 2 if bar.is_64bit else 1
    return tuple(probed)


def _devfn_map(functions: Sequence[PciFunction]) -> dict[int, PciFunction]:
    """Config space of one bus: an ARI device's functions sit at devfn = function."""
    ari_device = any(f.device == 0 and f.function == 0 and f.ari for f in functions)
    space: dict[int, PciFunction] = {}
    for f in functions:
        devfn = f.function if ari_device and f.device == 0 else f.device * 8 + f.function
        space.setdefault(devfn & 0xFF, f)
    return space


def _multi_function(space: dict[int, PciFunction], head: PciFunction) -> bool:
    return head.function == 0 and any(
        f.device == head.device and f.function != 0 for f in space.values()
    )


def _ari_chain(space: dict[int, PciFunction]) -> list[int]:
    """Follow each function's ARI next-function number (the next listed one) from 0."""
    numbers = sorted(devfn for devfn in space)
    chain: list[int] = []
    current = 0
    while current in space:
        chain.append(current)
        if not space[current].ari:
            break
        later = [n for n in numbers if n > current and space[n].device == 0]
        if not later:
            break
        current = later[0]
    return chain


def scan_bus(
    functions: Sequence[PciFunction],
    bus: int,
    parent: tuple[str, bool] | None,
    state: ScanState,
) -> tuple[Scanned, ...]:
    """Scan one bus; `parent` is the port above it (bdf, supports ARI forwarding)."""
    space = _devfn_map(functions)
    found: list[Scanned] = []
    for device in range(32):
        head = space.get(device * 8)
        if head is None:
            continue
        is_ari = device == 0 and head.ari
        if is_ari:
            numbers = _ari_chain(space)
        elif _multi_function(space, head):
            numbers = [device * 8 + f for f in range(8) if device * 8 + f in space]
        else:
            numbers = [device * 8]
        members = [(n if is_ari else n % 8, space[n]) for n in numbers]

        forwarding = False
        if parent is not None and (
            is_ari or any(not f.is_bridge and (f.sriov is not None or f.siov) for _, f in members)
        ):
            forwarding = parent[1]
            if forwarding and parent[0] not in state.ari_forwarding_enabled:
                state.ari_forwarding_enabled.append(parent[0])
        if forwarding:
            pfs = [(n, f) for n, f in members if not f.is_bridge and f.sriov is not None]
            # The bit goes to the lowest-numbered PF; the vectors show it only where that
            # PF has VFs (a capability with TotalVFs 0 does not keep it).
            if pfs and pfs[0][1].sriov is not None and pfs[0][1].sriov.total_vfs:
                state.ari_capable_hierarchy.append(bdf_text(bus, device, pfs[0][0]))

        for number, f in members:
            found.append(_scan_function(f, bus, device, number, is_ari, state))

        if forwarding:
            # The port now forwards device numbers 1..31 as ARI functions of device 0.
            state.unscanned += [
                bdf_text(bus, f.device, f.function)
                for f in sorted(functions, key=lambda f: (f.device, f.function))
                if f.device > device
            ]
            break
    return tuple(found)


def _scan_function(
    f: PciFunction, bus: int, device: int, function: int, is_ari: bool, state: ScanState
) -> Scanned:
    bars = probe_bars(f.bars, 2 if f.is_bridge else 6, state.preserve_bars)
    if f.is_bridge:
        if state.next_bus > state.end_bus:
            raise bus_exhaustion(bus, device, function)
        secondary = state.next_bus
        state.next_bus += 1
        children = scan_bus(
            f.children, secondary, (bdf_text(bus, device, function), f.ari_forwarding), state
        )
        subordinate = max(state.next_bus - 1, secondary)
        return Scanned(bus, device, function, True, bars, None, secondary, subordinate, children)
    sriov = None
    if f.sriov is not None and f.sriov.total_vfs != 0 and f.sriov.vf_stride != 0:
        devfn = function if is_ari else device * 8 + function
        last = (f.sriov.total_vfs - 1) * f.sriov.vf_stride
        last_ok = last <= U16_MAX and last + f.sriov.vf_offset <= U16_MAX
        last += f.sriov.vf_offset + (bus << 8 | devfn)
        if last_ok and last <= U16_MAX:
            max_vf_bus = last >> 8
            if max_vf_bus > state.end_bus:
                raise bus_exhaustion(bus, device, function)
            if max_vf_bus > bus:
                if max_vf_bus < state.next_bus:
                    raise VmLayoutError(
                        "sriov_bus_conflict",
                        f"SR-IOV VF bus conflict at {bdf_text(bus, device, function)}: VFs "
                        f"need bus {max_vf_bus} but buses up to {state.next_bus} are already "
                        "assigned",
                    )
                state.next_bus = max_vf_bus + 1
            sriov = ProbedSriov(
                f.sriov.total_vfs, probe_bars(f.sriov.vf_bars, 6, state.preserve_bars)
            )
    return Scanned(bus, device, function, False, bars, sriov)


def enumerate_functions(
    functions: Sequence[PciFunction], params: AssignmentParams
) -> tuple[tuple[Scanned, ...], ScanState]:
    """The scanned tree from the root bus, and what the walk recorded on the way."""
    state = ScanState(params.start_bus + 1, params.end_bus, params.preserve_bars)
    return scan_bus(functions, params.start_bus, None, state), state
