"""PCI device descriptions inside a root complex (the FUNCTION schema of `pci.jsonl`).

These are config-stage values: what the user says sits on a root complex's root bus,
never addresses (a pinned BAR is the only address, and it is the device's, not ours).
The PCI assignment stage (`vmlayout.pci`) turns them into bus numbers and BAR addresses.

Config form (TOML or JSON), one table per function on the bus, bridges nesting the
functions on their secondary bus under `children`:

    [[pcie_root_complexes.devices]]
    type = "switch_downstream"      # endpoint | root_port | switch_upstream |
    device = 0                      # switch_downstream | bridge
    count = 8                       # N identical devices at device, device+1, ...
    [[pcie_root_complexes.devices.children]]
    type = "endpoint"
    device = 0
    bars = [{index = 0, size = "16M"}, {index = 1, size = "64G", bits = 64,
             prefetchable = true}]

`count` is the one shorthand beyond the vector schema: the entry stands for `count`
copies at consecutive device numbers (every function entry of a multi-function device
carries the same `count`). It is expanded when read (the copies share one parsed
subtree), and `devices_to_data` writes runs of identical devices back as `count`, so a
written config stays as small as the one read. Sizes and pinned addresses accept units
like every config size.

A config describes at most `MAX_FUNCTIONS` functions after expansion, all root
complexes together: every stage after the loader walks each function, so the limit is
checked while reading, by multiplying the counts down the tree, before anything is
expanded (nested `count`s multiply: six levels of 32 bridges are 32**6 functions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from vmlayout.errors import VmLayoutError
from vmlayout.inputs import shown
from vmlayout.ranges import FOUR_GIB, U64_LIMIT, parse_size

#: The smallest memory BAR PCI allows (the low 4 bits of a BAR are flags).
MIN_BAR_SIZE = 16
MAX_BAR32_SIZE = 1 << 31
MAX_DEVICE = 31
MAX_FUNCTION = 7
MAX_ARI_FUNCTION = 255
U16_MAX = 0xFFFF
#: Functions a config may describe after `count` expansion, far beyond any real VM. The
#: bound is what `emit all` may write: a function's BARs and VF BARs take up to about
#: 1.5 KB of `pci.json` (and as much of `layout.json`), so at this limit every file stays
#: well below the 64 MiB input limit `inspect` reads to (`tests/test_pci_config.py`).
MAX_FUNCTIONS = 8_192


class FunctionKind(Enum):
    ENDPOINT = "endpoint"
    ROOT_PORT = "root_port"
    SWITCH_UPSTREAM = "switch_upstream"
    SWITCH_DOWNSTREAM = "switch_downstream"
    BRIDGE = "bridge"

    @property
    def is_bridge(self) -> bool:
        """Type 1 header: everything but an endpoint forwards to a secondary bus."""
        return self is not FunctionKind.ENDPOINT


@dataclass(frozen=True, slots=True)
class Bar:
    """One memory BAR register (I/O BARs are never assigned, so they are not described).

    `pinned` is the address the BAR already holds; the assignment keeps it only when the
    root complex has `preserve_bars` (peer-to-peer DMA where guest = host address)."""

    index: int
    size: int
    bits: int = 32
    prefetchable: bool = False
    pinned: int | None = None

    @property
    def is_64bit(self) -> bool:
        return self.bits == 64


@dataclass(frozen=True, slots=True)
class Sriov:
    """An SR-IOV capability: VFs live at routing IDs `pf + offset + k*stride`."""

    total_vfs: int
    vf_offset: int
    vf_stride: int
    vf_bars: tuple[Bar, ...] = ()


@dataclass(frozen=True, slots=True)
class PciFunction:
    """One function on a bus; several with one `device` form a multi-function device."""

    kind: FunctionKind
    device: int
    function: int = 0
    bars: tuple[Bar, ...] = ()
    sriov: Sriov | None = None
    ari: bool = False
    siov: bool = False
    ari_forwarding: bool = False
    children: tuple[PciFunction, ...] = ()

    @property
    def is_bridge(self) -> bool:
        return self.kind.is_bridge


def _error(path: str, reason: str) -> VmLayoutError:
    return VmLayoutError("invalid_config", f"{path}: {reason}")


def _mapping(value: object, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _error(path, f"expected a table/object, got {type(value).__name__}")
    return value


def _list(value: object, path: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        raise _error(path, f"expected a list, got {type(value).__name__}")
    return value


def _keys(data: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
    for key in data:
        if key not in allowed:
            raise _error(
                f"{path}.{shown(key)}", f"unknown key (expected one of: {', '.join(allowed)})"
            )


def _int(data: Mapping[str, Any], key: str, path: str, high: int, default: int | None) -> int:
    value = data.get(key, default)
    if value is None:
        raise _error(f"{path}.{key}", "missing")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _error(f"{path}.{key}", f"expected an integer, got {type(value).__name__}")
    if not 0 <= value <= high:
        raise _error(f"{path}.{key}", f"{value} is out of range 0..{high}")
    return value


def _bool(data: Mapping[str, Any], key: str, path: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise _error(f"{path}.{key}", f"expected true or false, got {value!r}")
    return value


BAR_KEYS = ("index", "size", "bits", "prefetchable", "pinned")


def _bar(value: object, path: str, slots: int, pinnable: bool = True) -> Bar:
    data = _mapping(value, path)
    _keys(data, BAR_KEYS, path)
    if not pinnable and data.get("pinned") is not None:
        # The reference never pins a VF BAR: its VF BAR demands carry no address and
        # only the functions' own BARs are collected as pins.
        raise _error(f"{path}.pinned", "a VF BAR cannot be pinned (VF BARs are always assigned)")
    index = _int(data, "index", path, slots - 1, None)
    if "size" not in data:
        raise _error(f"{path}.size", "missing")
    size = parse_size(data["size"], f"{path}.size")
    bits = data.get("bits", 32)
    if bits not in (32, 64) or isinstance(bits, bool):
        raise _error(f"{path}.bits", f"{bits!r} is not 32 or 64")
    if size < MIN_BAR_SIZE or size & (size - 1):
        raise _error(f"{path}.size", f"{size:#x} is not a power of two of at least 16 bytes")
    if bits == 32 and size > MAX_BAR32_SIZE:
        raise _error(f"{path}.size", f"{size:#x} is over 2 GiB, too large for a 32-bit BAR")
    if bits == 64 and size >= U64_LIMIT:
        raise _error(f"{path}.size", f"{size:#x} does not fit a 64-bit BAR")
    if bits == 64 and index == slots - 1:
        raise _error(
            f"{path}.index",
            f"a 64-bit BAR takes two registers; {index} is the last of {slots}",
        )
    pinned = None
    if data.get("pinned") is not None:
        pinned = parse_size(data["pinned"], f"{path}.pinned")
        limit = FOUR_GIB if bits == 32 else U64_LIMIT
        if pinned >= limit or pinned % MIN_BAR_SIZE:
            raise _error(
                f"{path}.pinned",
                f"{pinned:#x} is not a {bits}-bit BAR address (16-byte aligned, below {limit:#x})",
            )
    return Bar(index, size, bits, _bool(data, "prefetchable", path), pinned)


def _bars(value: object, path: str, slots: int, pinnable: bool = True) -> tuple[Bar, ...]:
    bars = [
        _bar(item, f"{path}[{i}]", slots, pinnable) for i, item in enumerate(_list(value, path))
    ]
    used: dict[int, int] = {}
    for i, bar in enumerate(bars):
        for register in (bar.index, bar.index + 1) if bar.is_64bit else (bar.index,):
            if register in used:
                raise _error(
                    f"{path}[{i}].index",
                    f"register {register} is already used by {path}[{used[register]}]",
                )
            used[register] = i
    return tuple(sorted(bars, key=lambda b: b.index))


SRIOV_KEYS = ("total_vfs", "vf_offset", "vf_stride", "vf_bars")


def _sriov(value: object, path: str) -> Sriov:
    data = _mapping(value, path)
    _keys(data, SRIOV_KEYS, path)
    return Sriov(
        total_vfs=_int(data, "total_vfs", path, U16_MAX, None),
        vf_offset=_int(data, "vf_offset", path, U16_MAX, None),
        vf_stride=_int(data, "vf_stride", path, U16_MAX, None),
        vf_bars=_bars(data.get("vf_bars", []), f"{path}.vf_bars", 6, pinnable=False),
    )


FUNCTION_KEYS = (
    "type",
    "device",
    "function",
    "count",
    "bars",
    "sriov",
    "ari",
    "siov",
    "ari_forwarding",
    "children",
)


def _function(value: object, path: str, budget: int) -> tuple[PciFunction, int, int]:
    """One entry, its `count` and the functions one copy stands for (itself and its
    subtree, expanded); the subtree may use at most `budget - 1` functions."""
    data = _mapping(value, path)
    _keys(data, FUNCTION_KEYS, path)
    kind_name = data.get("type")
    kinds = {k.value: k for k in FunctionKind}
    if not isinstance(kind_name, str) or kind_name not in kinds:
        raise _error(f"{path}.type", f"{kind_name!r} is not one of {', '.join(kinds)}")
    kind = kinds[kind_name]
    device = _int(data, "device", path, MAX_DEVICE, None)
    function = _int(data, "function", path, MAX_ARI_FUNCTION, 0)
    count = data.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise _error(f"{path}.count", f"{count!r} is not a positive integer")
    if device + count - 1 > MAX_DEVICE:
        raise _error(
            f"{path}.count",
            f"{count} devices from device {device} run past device {MAX_DEVICE}",
        )
    for key in ("sriov", "ari", "siov") if kind.is_bridge else ("ari_forwarding", "children"):
        if key in data:
            where = "endpoints" if kind.is_bridge else "bridges and ports"
            raise _error(f"{path}.{key}", f"only {where} have {key}")
    sriov = None if data.get("sriov") is None else _sriov(data["sriov"], f"{path}.sriov")
    ari = _bool(data, "ari", path)
    if ari and device != 0:
        raise _error(f"{path}.ari", f"an ARI device is device 0, not {device}")
    children, subtree = _bus(data.get("children", []), f"{path}.children", budget - 1)
    return (
        PciFunction(
            kind=kind,
            device=device,
            function=function,
            bars=_bars(data.get("bars", []), f"{path}.bars", 2 if kind.is_bridge else 6),
            sriov=sriov,
            ari=ari,
            siov=_bool(data, "siov", path),
            ari_forwarding=_bool(data, "ari_forwarding", path),
            children=children,
        ),
        count,
        1 + subtree,
    )


def _too_many(path: str) -> VmLayoutError:
    return _error(
        path,
        f"the devices expand to more than {MAX_FUNCTIONS} functions, the limit after "
        "count expansion (all root complexes together; nested counts multiply)",
    )


def devices_from_data(
    value: object, path: str, budget: int = MAX_FUNCTIONS
) -> tuple[PciFunction, ...]:
    """The functions on one bus, `count` expanded, sorted by (device, function).

    Rejects what no real bus can hold: a duplicate device/function, a device without
    function 0 (it would be invisible), function numbers above 7 outside an ARI device;
    and a tree that expands to more than `budget` functions (see the module doc)."""
    return _bus(value, path, budget)[0]


def _bus(value: object, path: str, budget: int) -> tuple[tuple[PciFunction, ...], int]:
    """`devices_from_data` and the number of functions the bus holds, expanded."""
    entries: list[tuple[PciFunction, str]] = []
    total = 0
    for i, item in enumerate(_list(value, path)):
        entry_path = f"{path}[{i}]"
        function, count, each = _function(item, entry_path, budget - total)
        total += count * each
        if total > budget:
            raise _too_many(f"{entry_path}.count" if count > 1 else entry_path)
        for offset in range(count):
            copy = replace(function, device=function.device + offset)
            entries.append((copy, entry_path))
    seen: dict[tuple[int, int], str] = {}
    for function, entry_path in entries:
        key = (function.device, function.function)
        if key in seen:
            raise _error(
                entry_path,
                f"device {function.device} function {function.function} is already "
                f"described by {seen[key]}",
            )
        seen[key] = entry_path
    is_ari = any(f.ari for f, _ in entries if (f.device, f.function) == (0, 0))
    for function, entry_path in entries:
        if function.function > MAX_FUNCTION and not (function.device == 0 and is_ari):
            raise _error(
                f"{entry_path}.function",
                f"{function.function} is above 7; only an ARI device (device 0 whose "
                "function 0 has ari = true) has more functions",
            )
        if (function.device, 0) not in seen:
            raise _error(
                f"{entry_path}.device",
                f"device {function.device} has no function 0, so it would never be found",
            )
    return tuple(sorted((f for f, _ in entries), key=lambda f: (f.device, f.function))), total


def bar_to_data(bar: Bar) -> dict[str, Any]:
    data: dict[str, Any] = {
        "index": bar.index,
        "size": bar.size,
        "bits": bar.bits,
        "prefetchable": bar.prefetchable,
    }
    if bar.pinned is not None:
        data["pinned"] = bar.pinned
    return data


def devices_to_data(functions: Sequence[PciFunction]) -> list[dict[str, Any]]:
    """The config form (sizes in bytes) of the functions on one bus; reads back equal.

    A run of identical devices at consecutive device numbers is written as one entry per
    function with `count`, as `count` was read: the written form stays as small as the
    config (a device is compared without its number; copies read from one `count` share
    their subtree, so the comparison is cheap)."""
    by_device: dict[int, list[PciFunction]] = {}
    for f in functions:
        by_device.setdefault(f.device, []).append(f)
    numbers = sorted(by_device)
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(numbers):
        first = by_device[numbers[i]]
        shape = [replace(f, device=0) for f in first]
        run = 1
        while (
            i + run < len(numbers)
            and numbers[i + run] == numbers[i] + run
            and [replace(f, device=0) for f in by_device[numbers[i + run]]] == shape
        ):
            run += 1
        for f in first:
            data = _function_to_data(f)
            if run > 1:
                data["count"] = run
            out.append(data)
        i += run
    return out


def _function_to_data(f: PciFunction) -> dict[str, Any]:
    data: dict[str, Any] = {"type": f.kind.value, "device": f.device, "function": f.function}
    if f.bars:
        data["bars"] = [bar_to_data(b) for b in f.bars]
    if f.is_bridge:
        data["ari_forwarding"] = f.ari_forwarding
        data["children"] = devices_to_data(f.children)
    else:
        if f.sriov is not None:
            data["sriov"] = {
                "total_vfs": f.sriov.total_vfs,
                "vf_offset": f.sriov.vf_offset,
                "vf_stride": f.sriov.vf_stride,
                "vf_bars": [bar_to_data(b) for b in f.sriov.vf_bars],
            }
        if f.ari:
            data["ari"] = True
        if f.siov:
            data["siov"] = True
    return data


def count_functions(functions: Sequence[PciFunction], limit: int | None = None) -> int:
    """The functions of these trees, expanded; with `limit`, the count stops as soon as
    it passes `limit` (so counting a huge tree costs at most `limit` steps)."""
    total = 0
    for f in functions:
        remaining = None if limit is None else limit - total - 1
        total += 1 + count_functions(f.children, remaining)
        if limit is not None and total > limit:
            return total
    return total


def check_function_total(trees: Sequence[tuple[str, Sequence[PciFunction]]]) -> None:
    """Refuse a config whose root complexes together describe more than `MAX_FUNCTIONS`
    functions (each tree alone was checked while read); `trees` is (path, devices)."""
    remaining = MAX_FUNCTIONS
    for path, functions in trees:
        remaining -= count_functions(functions, remaining)
        if remaining < 0:
            raise _too_many(path)


def devices_from_vector(topology: Sequence[Mapping[str, Any]]) -> tuple[PciFunction, ...]:
    """A `pci.jsonl` topology as given, without the config's checks: the assignment stage
    reads odd shapes (a 64-bit BAR in the last register, a device without function 0,
    function numbers above 7) the way the reference's config-space walk does."""

    def bar(data: Mapping[str, Any]) -> Bar:
        pinned = data.get("pinned")
        return Bar(
            int(data["index"]),
            int(data["size"]),
            int(data.get("bits", 32)),
            bool(data.get("prefetchable", False)),
            None if pinned is None else int(pinned),
        )

    def function(data: Mapping[str, Any]) -> PciFunction:
        sriov = data.get("sriov")
        return PciFunction(
            kind=FunctionKind(data["type"]),
            device=int(data["device"]),
            function=int(data.get("function", 0)),
            bars=tuple(sorted((bar(b) for b in data.get("bars", [])), key=lambda b: b.index)),
            sriov=None
            if sriov is None
            else Sriov(
                int(sriov["total_vfs"]),
                int(sriov["vf_offset"]),
                int(sriov["vf_stride"]),
                tuple(bar(b) for b in sriov.get("vf_bars", [])),
            ),
            ari=bool(data.get("ari", False)),
            siov=bool(data.get("siov", False)),
            ari_forwarding=bool(data.get("ari_forwarding", False)),
            children=devices_from_vector(data.get("children", [])),
        )

    return tuple(function(f) for f in topology)
