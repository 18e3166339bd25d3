"""The GTDT (aarch64): the generic timer's interrupts. Only the virtual EL1 timer is
wired (level, active low); there is no memory-mapped counter."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from vmlayout.acpi.sdt import Table, bad, build_table, expect_signature
from vmlayout.binfmt import Packed, Struct

GTDT_BODY = Struct(
    "GTDT body",
    (
        ("cnt_control_base", "Q"),
        ("reserved", "I"),
        ("secure_el1_gsiv", "I"),
        ("secure_el1_flags", "I"),
        ("non_secure_el1_gsiv", "I"),
        ("non_secure_el1_flags", "I"),
        ("virtual_el1_gsiv", "I"),
        ("virtual_el1_flags", "I"),
        ("el2_gsiv", "I"),
        ("el2_flags", "I"),
        ("cnt_read_base", "Q"),
        ("platform_timer_count", "I"),
        ("platform_timer_offset", "I"),
        ("virtual_el2_gsiv", "I"),
        ("virtual_el2_flags", "I"),
    ),
)
GTDT_REVISION = 3
#: A counter block address of all ones: "not provided".
NO_COUNTER_BLOCK = 0xFFFF_FFFF_FFFF_FFFF


class TimerFlags(enum.IntFlag):
    NONE = 0
    EDGE = 1 << 0
    ACTIVE_LOW = 1 << 1
    ALWAYS_ON = 1 << 2


@dataclass(frozen=True, slots=True)
class Gtdt(Packed):
    LAYOUT: ClassVar[Struct] = GTDT_BODY

    virtual_el1_gsiv: int
    virtual_el1_flags: TimerFlags = TimerFlags.ACTIVE_LOW
    cnt_control_base: int = NO_COUNTER_BLOCK
    cnt_read_base: int = NO_COUNTER_BLOCK
    secure_el1_gsiv: int = 0
    secure_el1_flags: TimerFlags = TimerFlags.NONE
    non_secure_el1_gsiv: int = 0
    non_secure_el1_flags: TimerFlags = TimerFlags.NONE
    el2_gsiv: int = 0
    el2_flags: TimerFlags = TimerFlags.NONE
    platform_timer_count: int = 0
    platform_timer_offset: int = 0
    virtual_el2_gsiv: int = 0
    virtual_el2_flags: TimerFlags = TimerFlags.NONE


def build_gtdt(virt_timer_ppi: int) -> bytes:
    return build_table(b"GTDT", GTDT_REVISION, Gtdt(virt_timer_ppi).pack())


def decode_gtdt(table: Table) -> Gtdt:
    expect_signature(table, "GTDT")
    if len(table.body) < GTDT_BODY.size:
        raise bad("GTDT", f"body shorter than {GTDT_BODY.size} bytes")
    return Gtdt.unpack(table.body, 0, "GTDT")


def summarize_gtdt(table: Table) -> dict[str, Any]:
    """Every field of the field table (reserved included), by name."""
    decode_gtdt(table)
    return {"timers": GTDT_BODY.unpack(table.body, 0, "GTDT")}
