"""`vmlayout inspect FILE.dtb`: which tree it is and the chipset ranges it carries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vmlayout.devicetree.fdt import FDT_MAGIC, Node, read_fdt, string
from vmlayout.errors import VmLayoutError
from vmlayout.layout import ChipsetMmioRanges
from vmlayout.ranges import MemoryRange, format_address, format_size


def sniff(path: Path, data: bytes | None) -> bool:
    return data is not None and len(data) >= 4 and int.from_bytes(data[:4], "big") == FDT_MAGIC


def decode_dtb(data: bytes) -> dict[str, Any]:
    """Kind of tree, recovered chipset windows and memory ranges."""
    from vmlayout.devicetree.linux import chipset_from_linux_tree, ram_from_linux_tree
    from vmlayout.devicetree.paravisor import chipset_from_host_tree, parse_host_tree

    root = read_fdt(data)
    chipset: ChipsetMmioRanges
    memory: list[tuple[MemoryRange, int | None]]
    if root.child("openvmm") is not None:
        kind = "linux"
        chipset = chipset_from_linux_tree(root)
        memory = [(r, None) for r in ram_from_linux_tree(root)]
    elif _has_vmbus_bus(root):
        kind = "paravisor"
        tree = parse_host_tree(data)
        chipset = chipset_from_host_tree(tree)
        memory = [(e.range, e.vnode) for e in tree.memory]
    else:
        raise VmLayoutError("unrecognised_input", "device tree carries no VMBus node")
    return {"kind": kind, "chipset": chipset, "memory": memory}


def _has_vmbus_bus(root: Node) -> bool:
    return any(
        c.prop("compatible") == string("microsoft,vmbus")
        for bus in root.children
        for c in bus.children
    )


def inspect(path: Path, data: bytes | None, fmt: str) -> tuple[str, int]:
    assert data is not None
    info = decode_dtb(data)
    chipset: ChipsetMmioRanges = info["chipset"]
    windows = {"low": chipset.low, "high": chipset.high, "vtl2": chipset.vtl2}
    if fmt == "json":
        doc = {
            "kind": f"dtb-{info['kind']}",
            "chipset": {k: r.to_pair() for k, r in windows.items()},
            "memory": [
                {"start": r.start, "end": r.end, "vnode": vnode} for r, vnode in info["memory"]
            ],
        }
        return json.dumps(doc) + "\n", 0
    lines = [f"{path.name}: {info['kind']} device tree, {len(data)} bytes"]
    for name, r in windows.items():
        empty = " (empty)" if r.is_empty() else ""
        lines.append(
            f"  chipset {name:<4} {format_address(r.start):>20} - {format_address(r.end):<20}"
            f" {format_size(r.size)}{empty}"
        )
    for r, vnode in info["memory"]:
        node = "" if vnode is None else f" node {vnode}"
        lines.append(
            f"  memory       {format_address(r.start):>20} - {format_address(r.end):<20}"
            f" {format_size(r.size)}{node}"
        )
    return "\n".join(lines) + "\n", 0
