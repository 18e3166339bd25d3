"""`vmlayout inspect FILE.dtb`: which tree it is and the ranges it carries: chipset
windows, memory (with the paravisor's memory types), and in the Linux tree every
PCIe host bridge with its ECAM, windows and SMMU."""

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
    """Kind of tree, recovered chipset windows, memory ranges (range, vnode, type) and
    PCIe host bridges."""
    from vmlayout.devicetree.linux import (
        DtPcieBridge,
        chipset_from_linux_tree,
        pcie_from_linux_tree,
        ram_from_linux_tree,
    )
    from vmlayout.devicetree.paravisor import chipset_from_host_tree, parse_host_tree

    root = read_fdt(data)
    chipset: ChipsetMmioRanges
    memory: list[tuple[MemoryRange, int | None, str]]
    bridges: tuple[DtPcieBridge, ...] = ()
    kind = tree_kind(root)
    if kind == "linux":
        chipset = chipset_from_linux_tree(root)
        memory = [(r, None, "ram") for r in ram_from_linux_tree(root)]
        bridges = pcie_from_linux_tree(root)
    elif kind == "paravisor":
        tree = parse_host_tree(data)
        chipset = chipset_from_host_tree(tree)
        names = _memory_type_names()
        memory = [(e.range, e.vnode, names.get(e.entry_type, "?")) for e in tree.memory]
    else:
        raise VmLayoutError("unrecognised_input", f"this is {TREE_NAMES[None]}")
    return {"kind": kind, "chipset": chipset, "memory": memory, "pcie": bridges}


#: How a message names each kind of tree (None: one vmlayout does not write).
TREE_NAMES: dict[str | None, str] = {
    "linux": "an arm64 Linux tree",
    "paravisor": "a paravisor (IGVM host) tree",
    None: "a device tree vmlayout does not write (neither the arm64 Linux tree, which "
    "has an /openvmm node, nor a paravisor tree, which has a VMBus node)",
}


def tree_kind(root: Node) -> str | None:
    """ "linux" (OpenVMM's arm64 direct-boot tree), "paravisor" (the IGVM host tree)
    or None."""
    if root.child("openvmm") is not None:
        return "linux"
    if _has_vmbus_bus(root):
        return "paravisor"
    return None


def require_tree(data: bytes, wanted: str, file: str) -> None:
    """Refuse a tree of another kind by naming it (`paravisor.dtb: this is an arm64
    Linux tree, not a paravisor (IGVM host) tree`), before a reader of `wanted` trees
    would fail on the first property it misses."""
    kind = tree_kind(read_fdt(data))
    if kind != wanted:
        raise VmLayoutError(
            "wrong_tree", f"{file}: this is {TREE_NAMES[kind]}, not {TREE_NAMES[wanted]}"
        )


def _memory_type_names() -> dict[int, str]:
    """IGVM memory-map entry types (microsoft,igvm-type) by the paravisor module's names."""
    from vmlayout.devicetree import paravisor as p

    return {
        p.MEMORY: "ram",
        p.PLATFORM_RESERVED: "platform-reserved",
        p.PERSISTENT: "persistent",
        p.VTL2_PROTECTABLE: "vtl2-protectable",
    }


def _has_vmbus_bus(root: Node) -> bool:
    return any(
        c.prop("compatible") == string("microsoft,vmbus")
        for bus in root.children
        for c in bus.children
    )


#: The tree each name `emit all` writes holds.
_TREE_OF_FILE = {"linux.dtb": "linux", "paravisor.dtb": "paravisor"}


def inspect(path: Path, data: bytes | None, fmt: str) -> tuple[str, int]:
    assert data is not None
    info = decode_dtb(data)
    # The content decides what is decoded; a file named for the other tree (say an
    # arm64 linux.dtb copied over a paravisor.dtb) is said so, and fails.
    wanted = _TREE_OF_FILE.get(path.name)
    wrong = ""
    if wanted is not None and wanted != info["kind"]:
        wrong = f"{path.name}: this is {TREE_NAMES[info['kind']]}, not {TREE_NAMES[wanted]}"
    chipset: ChipsetMmioRanges = info["chipset"]
    windows = {"low": chipset.low, "high": chipset.high, "vtl2": chipset.vtl2}
    if fmt == "json":
        doc = {
            "kind": f"dtb-{info['kind']}",
            "chipset": {k: r.to_pair() for k, r in windows.items()},
            "memory": [
                {"start": r.start, "end": r.end, "vnode": vnode, "type": kind}
                for r, vnode, kind in info["memory"]
            ],
            "pcie": [
                {
                    "node": b.name,
                    "segment": b.segment,
                    "buses": [b.start_bus, b.end_bus],
                    "ecam": b.ecam.to_pair(),
                    "low_mmio": b.low_mmio.to_pair(),
                    "high_mmio": b.high_mmio.to_pair(),
                    "smmu": None if b.smmu is None else b.smmu.to_pair(),
                }
                for b in info["pcie"]
            ],
        }
        if wrong:
            doc["wrong_tree"] = wrong
        return json.dumps(doc) + "\n", 1 if wrong else 0
    lines = [f"{path.name}: {info['kind']} device tree, {len(data)} bytes"]
    if wrong:
        lines.append(f"✗ {wrong}")
    for name, r in windows.items():
        empty = " (empty)" if r.is_empty() else ""
        lines.append(
            f"  chipset {name:<4} {format_address(r.start):>20} - {format_address(r.end):<20}"
            f" {format_size(r.size)}{empty}"
        )
    for r, vnode, kind in info["memory"]:
        node = "" if vnode is None else f" node {vnode}"
        typed = "" if kind == "ram" else f" ({kind})"
        lines.append(
            f"  memory       {format_address(r.start):>20} - {format_address(r.end):<20}"
            f" {format_size(r.size)}{node}{typed}"
        )
    for b in info["pcie"]:
        lines.append(f"  {b.name}: segment {b.segment}, buses {b.start_bus}..{b.end_bus}")
        rc_windows = [("ECAM", b.ecam), ("low MMIO", b.low_mmio), ("high MMIO", b.high_mmio)]
        if b.smmu is not None:
            rc_windows.append(("SMMU", b.smmu))
        for label, r in rc_windows:
            shown = (
                "absent" if r.is_empty() else f"{format_address(r.start)} - {format_address(r.end)}"
            )
            lines.append(f"    {label:<10} {shown}")
    return "\n".join(lines) + "\n", 1 if wrong else 0
