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
Ranges are compared under the one naming scheme of `vmlayout.report.named_ranges`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from vmlayout.config import config_from_dict, load_config
from vmlayout.errors import VmLayoutError
from vmlayout.policy import resolve
from vmlayout.ranges import MemoryRange, format_address, format_size
from vmlayout.report import NamedRange, named_ranges, resolved_to_json


class Change(Enum):
    MOVED = "moved"
    SHRANK = "shrank"
    GREW = "grew"
    NODE_CHANGED = "node_changed"
    VANISHED = "vanished"
    APPEARED = "appeared"


class ChangeClass(Enum):
    BREAK = "break"
    ADDITIVE = "additive"


@dataclass(frozen=True, slots=True)
class RangeChange:
    name: str
    change: Change
    before: MemoryRange | None
    after: MemoryRange | None
    change_class: ChangeClass = ChangeClass.BREAK
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        def pair(r: MemoryRange | None) -> list[int] | None:
            return None if r is None else [r.start, r.end]

        return {
            "name": self.name,
            "change": self.change.value,
            "class": self.change_class.value,
            "before": pair(self.before),
            "after": pair(self.after),
            "reason": self.reason,
        }


def _span(r: MemoryRange) -> str:
    return f"[{format_address(r.start)}, {format_address(r.end)})"


def _classify(
    name: str, old: NamedRange | None, new: NamedRange | None
) -> tuple[Change, ChangeClass, str] | None:
    """The change between two versions of one named range, its class and a reason."""
    subject = old or new
    assert subject is not None
    is_ram = subject.kind == "ram" or (new is not None and new.kind == "ram")
    if old is None:
        assert new is not None
        if is_ram:
            return (
                Change.APPEARED,
                ChangeClass.BREAK,
                f"new guest RAM {_span(new.range)}: a saved guest's memory map no longer matches",
            )
        return (
            Change.APPEARED,
            ChangeClass.ADDITIVE,
            f"new range {_span(new.range)}; no existing address changes meaning",
        )
    if new is None:
        what = "guest RAM" if is_ram else "range"
        return (
            Change.VANISHED,
            ChangeClass.BREAK,
            f"{what} {_span(old.range)} is gone; a saved guest may still use addresses in it",
        )
    a, b = old.range, new.range
    if a.start != b.start:
        what = "guest memory" if is_ram else "what a saved guest mapped there"
        return (
            Change.MOVED,
            ChangeClass.BREAK,
            f"starts at {format_address(b.start)} instead of {format_address(a.start)}; "
            f"{what} is no longer where the guest saved it",
        )
    if b.end < a.end:
        return (
            Change.SHRANK,
            ChangeClass.BREAK,
            f"loses {format_size(a.end - b.end)} at {_span(MemoryRange(b.end, a.end))}; "
            + ("guest memory there is gone" if is_ram else "BARs or mappings there break"),
        )
    if b.end > a.end:
        if is_ram:
            return (
                Change.GREW,
                ChangeClass.BREAK,
                f"guest RAM grows by {format_size(b.end - a.end)}; a saved guest's memory map "
                "no longer matches",
            )
        return (
            Change.GREW,
            ChangeClass.ADDITIVE,
            f"grows in place by {format_size(b.end - a.end)}; existing addresses keep working",
        )
    if old.vnode != new.vnode:
        return (
            Change.NODE_CHANGED,
            ChangeClass.BREAK,
            f"vNUMA node {old.vnode} -> {new.vnode}: the guest's saved topology no longer matches",
        )
    return None


def diff_layouts(
    before: dict[str, Any], after: dict[str, Any], strict: bool = False
) -> list[RangeChange]:
    """Every change between two layouts (in `resolve --format json` form), breaks first,
    then by address."""
    old = {n.name: n for n in named_ranges(before)}
    new = {n.name: n for n in named_ranges(after)}
    changes = []
    for name in [*old, *(n for n in new if n not in old)]:
        verdict = _classify(name, old.get(name), new.get(name))
        if verdict is None:
            continue
        change, klass, reason = verdict
        if strict and klass is ChangeClass.ADDITIVE:
            klass, reason = ChangeClass.BREAK, f"{reason} (--strict: any change breaks)"
        o, n = old.get(name), new.get(name)
        changes.append(
            RangeChange(
                name, change, None if o is None else o.range, None if n is None else n.range,
                klass, reason,
            )
        )  # fmt: skip
    classes = list(ChangeClass)
    return sorted(
        changes,
        key=lambda c: (
            classes.index(c.change_class),
            (c.before or c.after or MemoryRange(0, 0)).start,
            c.name,
        ),
    )


def is_compatible(changes: list[RangeChange]) -> bool:
    return all(c.change_class is ChangeClass.ADDITIVE for c in changes)


def change_counts(changes: list[RangeChange]) -> dict[str, int]:
    """Counts by class and by change, every key present."""
    counts = Counter(c.change_class.value for c in changes)
    counts.update(c.change.value for c in changes)
    return {
        key: counts[key] for key in [*(k.value for k in ChangeClass), *(c.value for c in Change)]
    }


def verdict_to_json(changes: list[RangeChange], strict: bool = False) -> dict[str, Any]:
    """`diff --format json`: the verdict, the counts and every change."""
    return {
        "compatible": is_compatible(changes),
        "strict": strict,
        "counts": change_counts(changes),
        "changes": [c.to_json() for c in changes],
    }


def load_layout(path: str | Path, arch: str | None = None) -> dict[str, Any]:
    """A saved `resolve --format json` output as is, or a config file resolved now."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        from vmlayout.inputs import parse_json, read_bytes, shown

        data = parse_json(read_bytes(path, "invalid_input"), shown(path), "invalid_input")
        if isinstance(data, dict) and "placed" in data and "chipset" in data:
            return check_saved_layout(data, str(path))
        return resolved_to_json(resolve(config_from_dict(data, arch)))
    return resolved_to_json(resolve(load_config(path, arch)))


def check_saved_layout(data: Any, where: str) -> dict[str, Any]:
    """Validate the parts of a saved layout that the diff reads (one-line reason)."""
    if not isinstance(data, dict):
        raise VmLayoutError("invalid_input", f"{where}: not a saved vmlayout layout: not an object")
    try:
        named_ranges(data)
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

    def span(r: MemoryRange | None) -> str:
        if r is None:
            return "-"
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
    if is_compatible(changes):
        lines.append(f"compatible{mode}: {counts['additive']} additive change(s), no breaks")
    else:
        lines.append(
            f"INCOMPATIBLE{mode}: {counts['break']} break(s), {counts['additive']} additive"
        )
    return "\n".join(lines) + "\n"
