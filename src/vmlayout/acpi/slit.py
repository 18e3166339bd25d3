"""The SLIT: the node-distance matrix, one byte per (from, to) pair."""

from __future__ import annotations

from typing import Any

from vmlayout.acpi.sdt import Table, bad, build_table, expect_signature
from vmlayout.binfmt import Struct

SLIT_BODY = Struct("SLIT body", (("locality_count", "Q"),))
SLIT_REVISION = 1
LOCAL_DISTANCE, REMOTE_DISTANCE = 10, 20


def build_slit(node_count: int, distances: tuple[tuple[int, int, int], ...] = ()) -> bytes:
    """10 on the diagonal, 20 elsewhere, then each configured (from, to, distance)
    applied in order."""
    matrix = bytearray(
        LOCAL_DISTANCE if i == j else REMOTE_DISTANCE
        for i in range(node_count)
        for j in range(node_count)
    )
    for src, dst, distance in distances:
        matrix[src * node_count + dst] = distance
    body = SLIT_BODY.pack(locality_count=node_count) + bytes(matrix)
    return build_table(b"SLIT", SLIT_REVISION, body)


def decode_slit(table: Table) -> list[list[int]]:
    """The distance matrix, row = from node."""
    expect_signature(table, "SLIT")
    body = table.body
    if len(body) < SLIT_BODY.size:
        raise bad("SLIT", "no locality count")
    n = SLIT_BODY.unpack(body, 0, "SLIT")["locality_count"]
    matrix = body[SLIT_BODY.size :]
    if len(matrix) != n * n:
        raise bad("SLIT", f"{n} localities need {n * n} distance bytes, {len(matrix)} present")
    return [list(matrix[i * n : (i + 1) * n]) for i in range(n)]


def summarize_slit(table: Table) -> dict[str, Any]:
    return {"distances": decode_slit(table)}
