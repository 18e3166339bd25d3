"""Compatibility diff: what a change of config does to a guest kept across it.

The compatibility model (for hibernation, live migration and VMM upgrades, where the
guest keeps the addresses it saw before the change):

- *break*: a range present on both sides that moved, shrank or vanished (a saved BAR or
  mapped register may sit in the lost part), and any change to RAM at all — size,
  placement, vNUMA node, an extent appearing or vanishing — because the guest's saved
  memory map no longer matches.
- *additive*: a non-RAM range that grew in place (same start) or a new non-RAM range;
  every existing address keeps its meaning.

`--strict` makes every change a break (for fleets that demand identical layouts).
Ranges are compared under the one naming scheme of `vmlayout.report.named_ranges`; a
root complex's PCI assignment (its `pci` object) adds every BAR, VF BAR region and
bridge window under the name `resolve` prints (`rc0 03:00.0 BAR1`, `rc0 00:00.0 pref`,
as `vmlayout.pci.model.resource_name`), classified like any other non-RAM range, and each bridge's
bus numbers (`rc0 00:00.0 buses`): a bridge whose secondary or subordinate bus changed
is `renumbered`, a break (the devices behind it get new BDFs).
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from vmlayout.config import config_from_dict, load_config
from vmlayout.errors import VmLayoutError
from vmlayout.pci.model import BAR, BUSES, MEM, PREF, VF_BAR, resource_name
from vmlayout.policy import VmConfig, resolve
from vmlayout.ranges import MemoryRange, format_address, format_size
from vmlayout.report import NamedRange, named_ranges, resolved_to_json


class Change(Enum):
    MOVED = "moved"
    SHRANK = "shrank"
    GREW = "grew"
    NODE_CHANGED = "node_changed"
    VANISHED = "vanished"
    APPEARED = "appeared"
    RENUMBERED = "renumbered"
    DEVICE_CHANGED = "device_changed"
    FIRMWARE_CHANGED = "firmware_changed"


class ChangeClass(Enum):
    BREAK = "break"
    ADDITIVE = "additive"
    #: Same addresses, but a firmware view (ACPI, device tree) tells the guest
    #: something different: passes unless --strict.
    FIRMWARE = "firmware"


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A `[start, end)` byte range that need not be page aligned: a BAR may be 16 bytes,
    so the PCI rows of a diff use this where layout ranges use `MemoryRange`."""

    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class BusNumbers:
    """A bridge's bus numbers, as its config space holds them."""

    primary: int
    secondary: int
    subordinate: int

    def text(self) -> str:
        return f"buses {self.secondary:02x}..{self.subordinate:02x}"

    def to_json(self) -> dict[str, int]:
        return {
            "primary": self.primary,
            "secondary": self.secondary,
            "subordinate": self.subordinate,
        }


Extent = MemoryRange | Span


@dataclass(frozen=True, slots=True)
class Setting:
    """A firmware-only config value (`numa_node`, `processors.vp_count`, …), JSON-able."""

    value: Any

    def text(self) -> str:
        return "(none)" if self.value is None else json.dumps(self.value)


@dataclass(frozen=True, slots=True)
class RangeChange:
    name: str
    change: Change
    before: Extent | BusNumbers | Setting | None
    after: Extent | BusNumbers | Setting | None
    change_class: ChangeClass = ChangeClass.BREAK
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        def pair(r: Extent | BusNumbers | Setting | None) -> Any:
            if isinstance(r, BusNumbers):
                return r.to_json()
            if isinstance(r, Setting):
                return r.value
            return None if r is None else [r.start, r.end]

        return {
            "name": self.name,
            "change": self.change.value,
            "class": self.change_class.value,
            "before": pair(self.before),
            "after": pair(self.after),
            "reason": self.reason,
        }


def _span(r: Extent) -> str:
    return f"[{format_address(r.start)}, {format_address(r.end)})"


@dataclass(frozen=True, slots=True)
class _Entry:
    """One compared range: a layout range (`NamedRange`) or a PCI BAR or window."""

    range: Extent
    is_ram: bool = False
    vnode: int | None = None
    #: What the range is, for reasons: `range`, `BAR`, `VF BAR region`, `bridge window`.
    noun: str = "range"


def _entry(named: NamedRange) -> _Entry:
    return _Entry(named.range, named.kind == "ram", named.vnode)


class _Occupancy:
    """Where the old layout had something: grown space is free only where no other old
    range sat (a range nested in the grown one, or holding it, does not count)."""

    def __init__(self, entries: Mapping[str, _Entry]) -> None:
        rows = sorted((e.range.start, e.range.end, name) for name, e in entries.items())
        self.rows = rows
        self.starts = [r[0] for r in rows]
        #: covered[i]: the highest end among rows[0..i], so a search for ranges
        #: reaching into `[start, end)` walks back only while one still can.
        self.covered = []
        high = 0
        for _, e, _ in rows:
            high = max(high, e)
            self.covered.append(high)

    def blockers(self, own: Extent, start: int, end: int) -> list[str]:
        """Old ranges over `[start, end)` other than `own`'s nest (ordered by address)."""
        out = []
        j = bisect.bisect_left(self.starts, end) - 1
        while j >= 0 and self.covered[j] > start:
            s, e, name = self.rows[j]
            nested = (own.start <= s and e <= own.end) or (s <= own.start and own.end <= e)
            if e > start and not nested:
                out.append(name)
            j -= 1
        return out[::-1]


def _grew(
    old: _Entry, new: _Entry, occupied: _Occupancy | None
) -> tuple[Change, ChangeClass, str] | None:
    """A non-RAM range whose new extent holds its old one: additive when every added
    byte was free before (it may grow down, up or both), a break when it grew over a
    range that was there."""
    a, b = old.range, new.range
    if not (b.start <= a.start and a.end <= b.end) or (a.start, a.end) == (b.start, b.end):
        return None
    parts = [(x, y) for x, y in ((b.start, a.start), (a.end, b.end)) if x < y]
    where = ", ".join(_span(Span(x, y)) for x, y in parts)
    grown = format_size(sum(y - x for x, y in parts))
    sides = "down" if a.end == b.end else "up" if a.start == b.start else "down and up"
    blockers = [] if occupied is None else [
        n for x, y in parts for n in occupied.blockers(a, x, y)
    ]  # fmt: skip
    if blockers:
        shown = ", ".join(dict.fromkeys(blockers[:3])) + (", …" if len(blockers) > 3 else "")
        return (
            Change.GREW,
            ChangeClass.BREAK,
            f"grows {sides} by {grown} over {shown}, which a saved guest still has there",
        )
    return (
        Change.GREW,
        ChangeClass.ADDITIVE,
        f"grows {sides} by {grown} over space that was free ({where}); everything "
        "mapped in it before is still inside it",
    )


def _classify(
    old: _Entry | None, new: _Entry | None, occupied: _Occupancy | None = None
) -> tuple[Change, ChangeClass, str] | None:
    """The change between two versions of one named range, its class and a reason."""
    subject = old or new
    assert subject is not None
    is_ram = subject.is_ram or (new is not None and new.is_ram)
    noun = subject.noun
    pci = noun != "range"
    if old is None:
        assert new is not None
        if is_ram:
            return (
                Change.APPEARED,
                ChangeClass.BREAK,
                f"new guest RAM {_span(new.range)}: a saved guest's memory map no longer matches",
            )
        what = f"new {noun}" if pci else "new range"
        return (
            Change.APPEARED,
            ChangeClass.ADDITIVE,
            f"{what} {_span(new.range)}; no existing address changes meaning",
        )
    if new is None:
        what = "guest RAM" if is_ram else noun
        return (
            Change.VANISHED,
            ChangeClass.BREAK,
            f"{what} {_span(old.range)} is gone; a saved guest may still use addresses in it",
        )
    a, b = old.range, new.range
    if noun in ("BAR", "VF BAR region") and a.size != b.size:
        return (
            Change.DEVICE_CHANGED,
            ChangeClass.BREAK,
            f"the {noun} is {format_size(b.size)} instead of {format_size(a.size)}: the "
            "device a saved guest's driver knows is not this one",
        )
    if not is_ram:
        grew = _grew(old, new, occupied)
        if grew is not None:
            return grew
    if a.start != b.start:
        moved = f"starts at {format_address(b.start)} instead of {format_address(a.start)}; "
        if pci:
            return (
                Change.MOVED,
                ChangeClass.BREAK,
                f"{moved}a guest that kept its {noun}s across the change (hibernation, "
                "migration, preserve_bars) still uses the old address",
            )
        what = "guest memory" if is_ram else "what a saved guest mapped there"
        return (
            Change.MOVED,
            ChangeClass.BREAK,
            f"{moved}{what} is no longer where the guest saved it",
        )
    if b.end < a.end:
        lost = (
            "guest memory there is gone"
            if is_ram
            else "a saved guest's mapping of it reaches past its end"
            if pci
            else "BARs or mappings there break"
        )
        return (
            Change.SHRANK,
            ChangeClass.BREAK,
            f"loses {format_size(a.end - b.end)} at {_span(Span(b.end, a.end))}; {lost}",
        )
    if b.end > a.end:  # RAM (a non-RAM range grown in place is `_grew`'s)
        return (
            Change.GREW,
            ChangeClass.BREAK,
            f"guest RAM grows by {format_size(b.end - a.end)}; a saved guest's memory map "
            "no longer matches",
        )
    if old.vnode != new.vnode:
        return (
            Change.NODE_CHANGED,
            ChangeClass.BREAK,
            f"vNUMA node {old.vnode} -> {new.vnode}: the guest's saved topology no longer matches",
        )
    return None


def _classify_buses(
    old: BusNumbers | None, new: BusNumbers | None
) -> tuple[Change, ChangeClass, str] | None:
    """A bridge's bus numbers: renumbered or gone is a break, a new bridge is additive."""
    if old is None:
        assert new is not None
        return (
            Change.APPEARED,
            ChangeClass.ADDITIVE,
            f"new bridge with {new.text()}; additive by itself (a bridge it renumbers is "
            "its own break)",
        )
    if new is None:
        return (
            Change.VANISHED,
            ChangeClass.BREAK,
            f"bridge with {old.text()} is gone; a saved guest may still address devices there",
        )
    if (old.secondary, old.subordinate) == (new.secondary, new.subordinate):
        return None
    return (
        Change.RENUMBERED,
        ChangeClass.BREAK,
        f"{old.text()} -> {new.text()}: the devices behind this bridge get new bus numbers, "
        "so a saved guest's BDFs and config-space accesses miss them",
    )


#: Noun of each kind of PCI row, for reasons.
_PCI_NOUNS = {"bar": "BAR", "vf-bar": "VF BAR region", "window": "bridge window"}


_U64 = 1 << 64


def _uint(value: Any, what: str, limit: int = _U64) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
        bound = "2^64" if limit == _U64 else str(limit)
        raise ValueError(f"{what} is not an integer from 0 below {bound}")
    return value


def _end(start: int, size: int, what: str) -> int:
    if start + size > _U64:
        raise ValueError(f"{what} ends beyond 2^64")
    return start + size


def check_bdf(value: Any, what: str) -> str:
    """`BB:DD.F` as `vmlayout.pci.model.bdf_text` writes it (F decimal, up to 255 with ARI)."""
    import re

    if (
        not isinstance(value, str)
        or re.fullmatch(r"[0-9a-f]{2}:[0-9a-f]{2}\.[0-9]{1,3}", value) is None
    ):
        raise ValueError(f"{what} is not a bus:device.function")
    return value


def _pci_of(rc: Any) -> tuple[str, Mapping[str, Any]] | None:
    """(root-complex name, its `pci` object) or None for a root complex without devices."""
    if not isinstance(rc, Mapping):
        raise TypeError("a root complex is not an object")
    pci = rc.get("pci")
    if pci is None:
        return None
    if not isinstance(pci, Mapping):
        raise TypeError(f"{rc['name']}: pci is not an object")
    return str(rc["name"]), pci


def _list(pci: Mapping[str, Any], key: str, rc: str) -> list[Mapping[str, Any]]:
    if key not in pci:
        raise ValueError(f"{rc}: pci.{key} is missing")
    items = pci[key]
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise TypeError(f"{rc}: pci.{key} is not a list of objects")
    return items


def pci_ranges(layout: Mapping[str, Any]) -> list[tuple[str, str, Span]]:
    """(name, kind, range) of every BAR, VF BAR region and bridge window of a layout's
    `pci` objects, named as `resolve` prints them (`vmlayout.pci.model.resource_name`):
    `<rc> <bdf> BAR<i>`, `<rc> <bdf> VF-BAR<i>`, `<rc> <bdf> mem|pref`. Raises KeyError,
    TypeError or ValueError (one line) on a malformed object."""
    rows: list[tuple[str, str, Span]] = []
    for rc in layout["pcie_root_complexes"]:
        found = _pci_of(rc)
        if found is None:
            continue
        name, pci = found
        for key, label, kind, size_key in (
            ("bars", "BAR", BAR, "size"),
            ("vf_bars", "VF-BAR", VF_BAR, "total_size"),
        ):
            for b in _list(pci, key, name):
                bdf = check_bdf(b["bdf"], f"{name}: a {label}'s bdf")
                index = _uint(b["index"], f"{name} {bdf}: a {label} index", 6)
                where = resource_name(name, bdf, kind, index)
                start = _uint(b["address"], f"{where}: address")
                size = _uint(b[size_key], f"{where}: {size_key}")
                rows.append((where, kind, Span(start, _end(start, size, where))))
        for w in _list(pci, "bridge_windows", name):
            bdf = check_bdf(w["bdf"], f"{name}: a bridge window's bdf")
            for kind in (MEM, PREF):
                window = w[kind]
                if window is None:
                    continue
                where = resource_name(name, bdf, kind)
                if not isinstance(window, list) or len(window) != 2:
                    raise ValueError(f"{where} is not a [base, limit] pair")
                base, limit = _uint(window[0], f"{where} base"), _uint(window[1], f"{where} limit")
                if limit < base:
                    raise ValueError(f"{where}: limit below base")
                rows.append((where, "window", Span(base, limit + 1)))
    return rows


def pci_buses(layout: Mapping[str, Any]) -> dict[str, BusNumbers]:
    """`<rc> <bdf> buses` -> the bus numbers of every bridge of a layout's `pci` objects."""
    out: dict[str, BusNumbers] = {}
    for rc in layout["pcie_root_complexes"]:
        found = _pci_of(rc)
        if found is None:
            continue
        name, pci = found
        for b in _list(pci, "buses", name):
            where = resource_name(name, check_bdf(b["bdf"], f"{name}: a bridge bdf"), BUSES)
            numbers = [
                _uint(b[k], f"{where}: {k}", 256) for k in ("primary", "secondary", "subordinate")
            ]
            out[where] = BusNumbers(*numbers)
    return out


def _entries(layout: Mapping[str, Any]) -> dict[str, _Entry]:
    entries = {n.name: _entry(n) for n in named_ranges(layout)}
    for name, kind, span in pci_ranges(layout):
        entries[name] = _Entry(span, noun=_PCI_NOUNS[kind])
    return entries


#: What the guest sees differently when a firmware-only config field changes (the
#: layout ignores these fields; the ACPI tables and device trees state them).
_FIRMWARE_EFFECTS = {
    "numa_node": "the guest sees root complex {rc} in another vNUMA node (ACPI _PXM in "
    "the SSDT, device-tree numa-node-id)",
    "preserve_bars": "the guest is told otherwise whether to keep the BARs the VMM "
    "assigned behind {rc} (ACPI _DSM 'ignore boot configuration', device-tree "
    "linux,pci-probe-only)",
    "numa_distances": "the guest sees other vNUMA distances (ACPI SLIT)",
    "processors": "the guest enumerates other processors (MADT, SRAT, PPTT; device-tree cpus)",
    "platform": "the firmware describes the platform otherwise (ACPI tables, device trees, "
    "UEFI blob, initial MTRRs)",
}
_RC_FIRMWARE_FIELDS = ("numa_node", "preserve_bars")
_VM_FIRMWARE_FIELDS = ("numa_distances", "processors", "platform")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def _settings(config: VmConfig) -> dict[str, tuple[str, Any]]:
    """Every firmware-only setting of a config: name -> (effect key, JSON value). A
    section that is a dataclass (processors, platform and its subsections) is one
    setting per leaf field (`platform.gic.its_base`), so a field added to it later is
    compared without a change here."""
    out: dict[str, tuple[str, Any]] = {}

    def leaves(key: str, name: str, value: Any) -> None:
        if is_dataclass(value) and not isinstance(value, type):
            for f in fields(value):
                leaves(key, f"{name}.{f.name}", getattr(value, f.name))
        else:
            out[name] = (key, _jsonable(value))

    for key in _VM_FIRMWARE_FIELDS:
        leaves(key, key, getattr(config, key))
    for rc in config.pcie_root_complexes:
        for key in _RC_FIRMWARE_FIELDS:
            out[f"{rc.name} {key}"] = (key, _jsonable(getattr(rc, key)))
    return out


def firmware_changes(before: VmConfig, after: VmConfig) -> list[RangeChange]:
    """Changes only firmware views show: same addresses, but the guest is told
    something different (class `firmware`)."""
    old, new = _settings(before), _settings(after)
    out = []
    for name in [*old, *(n for n in new if n not in old)]:
        if name not in old or name not in new:
            continue  # a root complex that came or went shows in its ranges
        (key, a), (_, b) = old[name], new[name]
        if a == b:
            continue
        ra, rb = Setting(a), Setting(b)
        effect = _FIRMWARE_EFFECTS[key].format(rc=name.split(" ")[0])
        reason = f"{ra.text()} -> {rb.text()}: {effect}; every address stays"
        out.append(RangeChange(name, Change.FIRMWARE_CHANGED, ra, rb, ChangeClass.FIRMWARE, reason))
    return out


def diff_layouts(
    before: dict[str, Any],
    after: dict[str, Any],
    strict: bool = False,
    configs: tuple[VmConfig, VmConfig] | None = None,
) -> list[RangeChange]:
    """Every change between two layouts (in `resolve --format json` form, PCI
    assignments included), breaks first, then by address (bus numbers, then firmware
    settings last). With both `configs`, firmware-only settings are compared too."""
    changes: list[RangeChange] = []

    def add(
        name: str,
        verdict: tuple[Change, ChangeClass, str] | None,
        o: Extent | BusNumbers | None,
        n: Extent | BusNumbers | None,
    ) -> None:
        if verdict is None:
            return
        change, klass, reason = verdict
        changes.append(RangeChange(name, change, o, n, klass, reason))

    old, new = _entries(before), _entries(after)
    occupied = _Occupancy(old)
    for name in [*old, *(n for n in new if n not in old)]:
        o, n = old.get(name), new.get(name)
        add(
            name,
            _classify(o, n, occupied),
            None if o is None else o.range,
            None if n is None else n.range,
        )
    old_buses, new_buses = pci_buses(before), pci_buses(after)
    for name in [*old_buses, *(n for n in new_buses if n not in old_buses)]:
        ob, nb = old_buses.get(name), new_buses.get(name)
        add(name, _classify_buses(ob, nb), ob, nb)
    if configs is not None:
        changes += firmware_changes(*configs)
    if strict:
        changes = [
            c
            if c.change_class is ChangeClass.BREAK
            else RangeChange(
                c.name, c.change, c.before, c.after, ChangeClass.BREAK,
                f"{c.reason} (--strict: any change breaks)",
            )
            for c in changes
        ]  # fmt: skip
    classes = list(ChangeClass)

    def order(c: RangeChange) -> tuple[int, int, int, str]:
        subject = c.before or c.after
        if isinstance(subject, Setting):
            return classes.index(c.change_class), 2, 0, c.name
        if isinstance(subject, BusNumbers) or subject is None:
            return classes.index(c.change_class), 1, 0, c.name
        return classes.index(c.change_class), 0, subject.start, c.name

    return sorted(changes, key=order)


def is_compatible(changes: list[RangeChange]) -> bool:
    return all(c.change_class is not ChangeClass.BREAK for c in changes)


def change_counts(changes: list[RangeChange]) -> dict[str, int]:
    """Counts by class and by change, every key present."""
    counts = Counter(c.change_class.value for c in changes)
    counts.update(c.change.value for c in changes)
    return {
        key: counts[key] for key in [*(k.value for k in ChangeClass), *(c.value for c in Change)]
    }


@dataclass(frozen=True, slots=True)
class DiffResult:
    """The verdict of a diff (the library's `vmlayout.diff`; `to_json` is
    `diff --format json`): compatible means no change of class `break`."""

    compatible: bool
    strict: bool
    counts: Mapping[str, int]
    changes: tuple[RangeChange, ...]

    @classmethod
    def of(cls, changes: list[RangeChange], strict: bool = False) -> DiffResult:
        return cls(is_compatible(changes), strict, change_counts(changes), tuple(changes))

    def to_json(self) -> dict[str, Any]:
        return {
            "compatible": self.compatible,
            "strict": self.strict,
            "counts": dict(self.counts),
            "changes": [c.to_json() for c in self.changes],
        }


def verdict_to_json(changes: list[RangeChange], strict: bool = False) -> dict[str, Any]:
    """`diff --format json`: the verdict, the counts and every change."""
    return DiffResult.of(changes, strict).to_json()


def load_layout(path: str | Path, arch: str | None = None) -> dict[str, Any]:
    """A saved `resolve --format json` output as is, or a config file resolved now."""
    return load_side(path, arch)[0]


def load_side(
    path: str | Path, arch: str | None = None, side: str = ""
) -> tuple[dict[str, Any], VmConfig | None]:
    """(layout, config) of one side of a diff: a saved layout has no config (its
    firmware-only settings were not saved). With `side` ("A" or "B"), an error says
    which side failed."""
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            from vmlayout.inputs import parse_json, read_bytes, shown

            data = parse_json(read_bytes(path, "invalid_input"), shown(path), "invalid_input")
            if isinstance(data, dict) and "placed" in data and "chipset" in data:
                return check_saved_layout(data, str(path)), None
            config = config_from_dict(data, arch)
        else:
            config = load_config(path, arch)
        return resolved_to_json(resolve(config)), config
    except VmLayoutError as error:
        if not side:
            raise
        raise VmLayoutError(error.kind, f"side {side}: {error.message}") from None


def check_saved_layout(data: Any, where: str) -> dict[str, Any]:
    """Validate the parts of a saved layout that the diff reads (one-line reason)."""
    if not isinstance(data, dict):
        raise VmLayoutError("invalid_input", f"{where}: not a saved vmlayout layout: not an object")
    try:
        named_ranges(data)
        pci_ranges(data)
        pci_buses(data)
    except KeyError as error:
        reason = f"missing field {error.args[0]!s}"
    except (TypeError, ValueError, AttributeError, VmLayoutError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    else:
        return data
    raise VmLayoutError("invalid_input", f"{where}: not a saved vmlayout layout: {reason}")


def changes_to_table(changes: list[RangeChange], strict: bool = False) -> str:
    if not changes:
        return "no differences: compatible\n"

    def span(r: Extent | BusNumbers | Setting | None) -> str:
        if r is None:
            return "-"
        if isinstance(r, (BusNumbers, Setting)):
            return r.text()
        return f"{format_address(r.start)} - {format_address(r.end)} ({format_size(r.size)})"

    rows = [
        (c.change_class.value, c.change.value, c.name, span(c.before), span(c.after))
        for c in changes
    ]
    header = ("class", "change", "range", "before", "after")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]  # fmt: skip
    lines.append("")
    lines += [f"{c.name}: {c.reason}" for c in changes]
    counts = change_counts(changes)
    lines.append("")
    mode = " (--strict)" if strict else ""
    firmware = f", {counts['firmware']} firmware" if counts["firmware"] else ""
    if is_compatible(changes):
        lines.append(
            f"compatible{mode}: {counts['additive']} additive change(s){firmware}, no breaks"
        )
    else:
        lines.append(
            f"INCOMPATIBLE{mode}: {counts['break']} break(s), {counts['additive']} "
            f"additive{firmware}"
        )
    return "\n".join(lines) + "\n"
