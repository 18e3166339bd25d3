"""The PPTT (aarch64): the processor hierarchy without caches, a package node per
MPIDR Aff2 and a core node per (Aff2, Aff1) named by its first VP's UID."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from vmlayout.acpi.sdt import (
    HEADER,
    Table,
    build_table,
    entries,
    expect_signature,
    require_length,
    typed_header,
)
from vmlayout.binfmt import Packed, Struct
from vmlayout.topology import mpidr_of

PPTT_PROCESSOR = Struct(
    "PPTT processor",
    (
        ("type", "B"),
        ("length", "B"),
        ("reserved", "H"),
        ("flags", "I"),
        ("parent", "I"),
        ("acpi_processor_id", "I"),
        ("private_resources", "I"),
    ),
)
PPTT_REVISION = 1


class ProcessorNodeFlags(enum.IntFlag):
    PHYSICAL_PACKAGE = 1 << 0
    ACPI_PROCESSOR_ID_VALID = 1 << 1
    THREAD = 1 << 2
    LEAF = 1 << 3
    IDENTICAL = 1 << 4


@dataclass(frozen=True, slots=True)
class ProcessorNode(Packed):
    """A processor hierarchy node; `parent` is the parent node's table offset (0: none).
    Private resources are counted only (vmlayout lists none)."""

    TYPE: ClassVar[int] = 0
    LAYOUT: ClassVar[Struct] = PPTT_PROCESSOR
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = typed_header(TYPE, PPTT_PROCESSOR)

    flags: ProcessorNodeFlags
    parent: int = 0
    acpi_processor_id: int = 0
    private_resources: int = 0


def pptt_of(vp_count: int) -> list[ProcessorNode]:
    """VPs sharing a core (Aff0 only differs, SMT off) add no node, as in the reference."""
    nodes: list[ProcessorNode] = []
    sockets: dict[int, tuple[int, set[int]]] = {}
    for vp in range(vp_count):
        mpidr = mpidr_of(vp)
        socket, core = (mpidr >> 16) & 0xFF, (mpidr >> 8) & 0xFF
        if socket not in sockets:
            sockets[socket] = (HEADER.size + PPTT_PROCESSOR.size * len(nodes), set())
            nodes.append(ProcessorNode(ProcessorNodeFlags.PHYSICAL_PACKAGE))
        socket_offset, cores = sockets[socket]
        if core not in cores:
            cores.add(core)
            flags = ProcessorNodeFlags.ACPI_PROCESSOR_ID_VALID
            nodes.append(ProcessorNode(flags, socket_offset, vp + 1))
    return nodes


def build_pptt(vp_count: int) -> bytes:
    body = b"".join(node.pack() for node in pptt_of(vp_count))
    return build_table(b"PPTT", PPTT_REVISION, body)


def decode_pptt_nodes(table: Table) -> list[tuple[int, ProcessorNode]]:
    """(table offset, node) of every processor node; other node types (caches) skipped."""
    expect_signature(table, "PPTT")
    out = []
    for entry in entries(table.body, 0, "PPTT"):
        if entry.type != ProcessorNode.TYPE:
            continue
        require_length(entry, PPTT_PROCESSOR.size, "PPTT", "processor node")
        out.append((entry.table_offset, ProcessorNode.unpack(table.body, entry.offset, "PPTT")))
    return out


def decode_pptt(table: Table) -> list[dict[str, int]]:
    """Processor nodes as `inspect` lists them: offset, flags, parent, ACPI id."""
    return [
        {
            "offset": offset,
            "flags": int(node.flags),
            "parent": node.parent,
            "acpi_processor_id": node.acpi_processor_id,
        }
        for offset, node in decode_pptt_nodes(table)
    ]


def summarize_pptt(table: Table) -> dict[str, Any]:
    return {"processors": decode_pptt(table)}
