"""`vmlayout inspect pci.json`: `emit all`'s PCI assignment decoded on its own.

`pci.json` holds, per root complex that lists devices, its resolved `low_mmio` and
`high_mmio` windows (`[start, end)`) and its assignment (`pci`, a `pci.jsonl` RESULT).
Every BAR, VF BAR region and bridge window is listed under the name `resolve` prints
(`rc0 03:00.0 BAR1`, `rc0 00:00.0 pref`), every bridge with its bus numbers, and the
file is checked as `inspect DIR` checks it (`vmlayout.pci.check`): every BAR aligned and
inside its bridge's window (or the root complex's windows), every bridge window inside
its parent's, nothing on one bus overlapping. A problem is reported with exit status 1.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vmlayout.errors import VmLayoutError
from vmlayout.inspect.binaries import json_document, sniffed_object
from vmlayout.pci.model import VF_BAR, resource_name
from vmlayout.ranges import format_address, format_size

_KEY = "root_complexes"


def sniff(path: Path, data: bytes | None) -> bool:
    doc = sniffed_object(data, path.name)
    return doc is not None and _KEY in doc and "placed" not in doc and "msrs" not in doc


def _bad(where: str, what: str) -> VmLayoutError:
    return VmLayoutError("invalid_artifact", f"{where}: {what}")


def _window(value: Any, where: str, what: str) -> tuple[int, int]:
    """A root-complex window `[start, end)` as pci.json records it."""
    if isinstance(value, list) and len(value) == 2:
        start, end = value
        numbers = all(isinstance(x, int) and not isinstance(x, bool) for x in (start, end))
        if numbers and 0 <= start <= end <= 1 << 64:
            return int(start), int(end)
    raise _bad(where, f"{what} is not a [start, end) pair of addresses")


def _bdf_list(pci: Mapping[str, Any], key: str, where: str, rc: str) -> list[str]:
    from vmlayout.inspect.diff import check_bdf

    value = pci.get(key, [])
    if not isinstance(value, list):
        raise _bad(where, f"{rc}: pci.{key} is not a list")
    try:
        return [check_bdf(item, f"{rc}: an entry of pci.{key}") for item in value]
    except ValueError as error:
        raise _bad(where, str(error)) from None


def _root_complex(rc: Any, where: str) -> dict[str, Any]:
    from vmlayout.inspect.diff import pci_buses, pci_ranges
    from vmlayout.pci.check import nesting_problems

    if not isinstance(rc, Mapping):
        raise _bad(where, "a root complex is not an object")
    name = rc.get("name")
    if not isinstance(name, str) or not name or not name.isprintable() or " " in name:
        raise _bad(where, "a root complex has no valid name")
    low = _window(rc.get("low_mmio"), where, f"{name}: low_mmio")
    high = _window(rc.get("high_mmio"), where, f"{name}: high_mmio")
    pci = rc.get("pci")
    if not isinstance(pci, Mapping):
        raise _bad(where, f"{name}: pci is missing or not an object")
    wrapped = {"pcie_root_complexes": [{"name": name, "pci": pci}]}
    try:
        ranges = pci_ranges(wrapped)
        buses = pci_buses(wrapped)
        vfs = {}
        for v in pci.get("vf_bars", []):
            count, size = v["total_vfs"], v["size"]
            for value in (count, size):
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int)
                    or not 0 <= value < 1 << 64
                ):
                    raise ValueError(f"{name} {v['bdf']}: a VF BAR's size or total_vfs is invalid")
            vfs[resource_name(name, v["bdf"], VF_BAR, v["index"])] = (count, size)
    except KeyError as error:
        raise _bad(where, f"{name}: pci: missing field {error.args[0]!s}") from None
    except (TypeError, ValueError) as error:
        raise _bad(where, str(error)) from None
    flags = {
        key: _bdf_list(pci, key, where, name)
        for key in ("ari_forwarding_enabled", "ari_capable_hierarchy", "unscanned")
    }
    try:
        problems = nesting_problems(pci, low, high)
    except VmLayoutError as error:
        raise _bad(where, f"{name}: {error.message.removeprefix('pci.json: ')}") from None
    # By address, a window before what it holds (as the resolve table).
    ranges.sort(key=lambda row: (row[2].start, -row[2].end, row[1] != "window", row[0]))
    return {
        "name": name,
        "low_mmio": low,
        "high_mmio": high,
        "ranges": ranges,
        "vfs": vfs,
        "buses": buses,
        **flags,
        "problems": problems,
    }


def pci_view(doc: Any, where: str) -> list[dict[str, Any]]:
    """Every root complex of a pci.json document, decoded and checked (one-line errors)."""
    if not isinstance(doc, dict):
        raise _bad(where, "not a JSON object")
    complexes = doc.get(_KEY)
    if not isinstance(complexes, list):
        raise _bad(where, f"{_KEY} is not a list")
    view = [_root_complex(rc, where) for rc in complexes]
    names = [rc["name"] for rc in view]
    if len(set(names)) != len(names):
        raise _bad(where, "two root complexes share a name")
    return view


def _attributes(rc: dict[str, Any], name: str, kind: str) -> str:
    if kind == "window":
        return "bridge window" + (" pref" if name.endswith(" pref") else "")
    if kind == "vf-bar":
        count, size = rc["vfs"][name]
        return f"VF BARs x{count} VFs of {format_size(size)}"
    return "BAR"


def _window_text(label: str, window: tuple[int, int]) -> str:
    start, end = window
    if start == end:
        return f"{label} (empty)"
    return f"{label} {format_address(start)}..{format_address(end)} ({format_size(end - start)})"


def _rc_text(rc: dict[str, Any]) -> list[str]:
    lines = [
        f"{rc['name']}: {_window_text('low_mmio', rc['low_mmio'])}, "
        f"{_window_text('high_mmio', rc['high_mmio'])}; {len(rc['buses'])} bridge(s), "
        f"{len(rc['ranges'])} BAR(s) and window(s)"
    ]
    from vmlayout.pci_layout.report import range_table

    table = [
        (name, format_address(span.start), format_address(span.end), format_size(span.size),
         _attributes(rc, name, kind))
        for name, kind, span in rc["ranges"]
    ]  # fmt: skip
    lines += range_table(table, indent="  ")
    for name, numbers in rc["buses"].items():
        lines.append(
            f"  {name}: primary {numbers.primary:02x}, secondary {numbers.secondary:02x}, "
            f"subordinate {numbers.subordinate:02x}"
        )
    for key, label in (
        ("ari_forwarding_enabled", "ARI forwarding enabled"),
        ("ari_capable_hierarchy", "ARI capable hierarchy"),
        ("unscanned", "not scanned"),
    ):
        if rc[key]:
            lines.append(f"  {label}: {', '.join(rc[key])}")
    if rc["problems"]:
        lines += [f"  PROBLEM: {problem}" for problem in rc["problems"]]
    else:
        from vmlayout.pci.check import NESTING_OK

        lines.append(f"  nesting: {NESTING_OK}")
    return lines


def _rc_json(rc: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": rc["name"],
        "low_mmio": list(rc["low_mmio"]),
        "high_mmio": list(rc["high_mmio"]),
        "ranges": [
            {"name": name, "kind": kind, "start": span.start, "end": span.end}
            for name, kind, span in rc["ranges"]
        ],
        "buses": [{"name": name, **numbers.to_json()} for name, numbers in rc["buses"].items()],
        "ari_forwarding_enabled": rc["ari_forwarding_enabled"],
        "ari_capable_hierarchy": rc["ari_capable_hierarchy"],
        "unscanned": rc["unscanned"],
        "problems": rc["problems"],
    }


def inspect(path: Path, data: bytes | None, fmt: str) -> tuple[str, int]:
    assert data is not None
    view = pci_view(json_document(data, path.name), path.name)
    problems = sum(len(rc["problems"]) for rc in view)
    status = 1 if problems else 0
    if fmt == "json":
        doc = {"kind": "pci", "ok": not problems, "root_complexes": [_rc_json(rc) for rc in view]}
        return json.dumps(doc) + "\n", status
    lines = [f"{path.name}: PCI assignment of {len(view)} root complex(es)"]
    for rc in view:
        lines.append("")
        lines += _rc_text(rc)
    lines.append("")
    if problems:
        lines.append(f"INCONSISTENT: {problems} nesting problem(s)")
    else:
        lines.append("consistent: every BAR and bridge window nests inside its parent")
    return "\n".join(lines) + "\n", status
