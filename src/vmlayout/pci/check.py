"""Checks of a written assignment (`pci.json`) on its own: for `inspect DIR`.

From a `pci.jsonl` RESULT and the root complex's windows alone: every BAR is naturally
aligned and lies inside its bridge's window (or, on the root bus, inside the root
complex's low or high window), every bridge window inside its parent's window of the
same kind, and nothing on one bus overlaps anything else on that bus.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vmlayout.errors import VmLayoutError
from vmlayout.pci.model import BAR, BUSES, MEM, PREF, VF_BAR, resource_name

Region = tuple[int, int]  # [start, end)
NESTING_OK = "every BAR and bridge window inside its parent, none overlapping"


def _bus(bdf: str) -> int:
    return int(bdf[:2], 16)


def _inside(inner: Region, outers: list[Region | None]) -> bool:
    return any(o is not None and o[0] <= inner[0] and inner[1] <= o[1] for o in outers)


def _window(value: Any) -> Region | None:
    return None if value is None else (int(value[0]), int(value[1]) + 1)


def nesting_problems(result: Mapping[str, Any], low: Region, high: Region) -> list[str]:
    """Every violation, described; empty when the assignment nests cleanly."""
    try:
        return _problems(result, low, high)
    except (KeyError, TypeError, ValueError, IndexError) as error:
        raise VmLayoutError("invalid_artifact", f"pci.json: malformed result ({error})") from None


def _problems(result: Mapping[str, Any], low: Region, high: Region) -> list[str]:
    problems = []
    bridge_of_bus = {int(b["secondary"]): str(b["bdf"]) for b in result["buses"]}
    windows = {
        str(w["bdf"]): (_window(w["mem"]), _window(w["pref"])) for w in result["bridge_windows"]
    }
    roots: tuple[Region | None, Region | None] = (
        low if low[0] < low[1] else None,
        high if high[0] < high[1] else None,
    )

    def parent_windows(bdf: str) -> tuple[Region | None, Region | None]:
        bridge = bridge_of_bus.get(_bus(bdf))
        return roots if bridge is None else windows.get(bridge, (None, None))

    per_bus: dict[int, list[tuple[Region, str]]] = {}
    leaves = [
        (
            str(b["bdf"]),
            resource_name(None, str(b["bdf"]), BAR, int(b["index"])),
            int(b["address"]),
            int(b["size"]),
            int(b["size"]),
        )
        for b in result["bars"]
    ] + [
        (
            str(v["bdf"]),
            resource_name(None, str(v["bdf"]), VF_BAR, int(v["index"])),
            int(v["address"]),
            int(v["total_size"]),
            int(v["size"]),
        )
        for v in result["vf_bars"]
    ]
    for bdf, what, address, size, alignment in leaves:
        region = (address, address + size)
        name = f"{what} [{address:#x}, {region[1]:#x})"
        if alignment and address % alignment:
            problems.append(f"{name} is not aligned to {alignment:#x}")
        mem, pref = parent_windows(bdf)
        if not _inside(region, [mem, pref]):
            problems.append(f"{name} is outside its parent's windows")
        per_bus.setdefault(_bus(bdf), []).append((region, name))
    for bdf, (mem, pref) in windows.items():
        parent_mem, parent_pref = parent_windows(bdf)
        on_root = bridge_of_bus.get(_bus(bdf)) is None
        for kind, window, parents in (
            (MEM, mem, [parent_mem]),
            # On the root bus a prefetchable pool falls back to low when high is empty.
            (PREF, pref, [parent_pref, parent_mem] if on_root else [parent_pref]),
        ):
            if window is None:
                continue
            name = f"{resource_name(None, bdf, kind)} window [{window[0]:#x}, {window[1]:#x})"
            if not _inside(window, parents):
                problems.append(f"{name} is outside its parent's {kind} window")
            per_bus.setdefault(_bus(bdf), []).append((window, name))
    for items in per_bus.values():
        items.sort()
        reach, reach_name = -1, ""
        for region, name in items:
            if reach > region[0]:
                problems.append(f"{reach_name} overlaps {name}")
            if region[1] > reach:
                reach, reach_name = region[1], name
    return problems


def assignment_rows(result: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(name, `start-end`) of every BAR, VF BAR region and window: what a re-assignment
    must reproduce."""
    rows = []
    for b in result["bars"]:
        name = resource_name(None, b["bdf"], BAR, b["index"])
        rows.append((name, f"{b['address']:#x}+{b['size']:#x}"))
    for v in result["vf_bars"]:
        name = resource_name(None, v["bdf"], VF_BAR, v["index"])
        rows.append((name, f"{v['address']:#x}+{v['total_size']:#x}"))
    for w in result["bridge_windows"]:
        for kind in (MEM, PREF):
            if w[kind] is not None:
                name = resource_name(None, w["bdf"], kind)
                rows.append((name, f"{w[kind][0]:#x}-{w[kind][1]:#x}"))
    for b in result["buses"]:
        name = resource_name(None, b["bdf"], BUSES)
        rows.append((name, f"{b['primary']}/{b['secondary']}/{b['subordinate']}"))
    return tuple(rows)
