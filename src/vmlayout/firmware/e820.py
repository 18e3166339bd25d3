"""The E820 map of a Linux direct boot (spec 03 §6).

Built from the memory layout alone: the chipset windows reach a direct-booted Linux only
through ACPI, so they are simply absent here (holes), never listed as reserved.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from vmlayout.binfmt import Struct
from vmlayout.errors import VmLayoutError
from vmlayout.layout import MemoryLayout
from vmlayout.ranges import PAGE_SIZE, MemoryRange

ACPI_TABLES_BASE = 0x19000
RSDP_BASE = 0xE0000
ONE_MIB = 0x100000
MAX_ENTRIES = 128
ZERO_PAGE_E820_ENTRIES_OFFSET = 0x1E8
ZERO_PAGE_E820_TABLE_OFFSET = 0x2D0

ENTRY = Struct("e820 entry", (("addr", "Q"), ("size", "Q"), ("type", "I")))


class E820Type(IntEnum):
    RAM = 1
    RESERVED = 2
    ACPI = 3
    NVS = 4
    UNUSABLE = 5


@dataclass(frozen=True, slots=True)
class E820Entry:
    addr: int
    size: int
    type: int

    @property
    def end(self) -> int:
        return self.addr + self.size

    @property
    def type_name(self) -> str:
        try:
            return E820Type(self.type).name
        except ValueError:
            return f"type {self.type}"


def _page_up(value: int) -> int:
    return -(-value // PAGE_SIZE) * PAGE_SIZE


def build_e820(
    layout: MemoryLayout, acpi_len: int = 0, smbios_len: int = 0, additional_page_count: int = 0
) -> tuple[E820Entry, ...]:
    ram = [r.range for r in layout.ram]
    first = ram[0]
    if first.start != 0 or first.end < ONE_MIB:
        # The zero page, page tables and the BIOS area live in [0, 1 MiB); the
        # reference asserts this rather than reporting it.
        raise VmLayoutError(
            "e820_requires_low_ram",
            f"e820: Linux direct boot needs RAM from 0 to at least 1 MiB, but the first "
            f"RAM range is {first} (a large chipset_low_mmio_size or ram_start_address "
            "moves RAM up)",
        )
    for name, value in (
        ("acpi_len", acpi_len),
        ("smbios_len", smbios_len),
        ("additional_page_count", additional_page_count),
    ):
        if value < 0:
            raise VmLayoutError("invalid_argument", f"{name}: must not be negative")
    acpi_end = ACPI_TABLES_BASE + _page_up(acpi_len)
    smbios_end = acpi_end + _page_up(smbios_len)
    additional_end = smbios_end + additional_page_count * PAGE_SIZE
    if additional_end > RSDP_BASE:
        raise VmLayoutError(
            "low_tables_too_large",
            f"e820: low tables end at {additional_end:#x}, beyond {RSDP_BASE:#x}",
        )
    entries: list[E820Entry] = []

    def push(addr: int, size: int, kind: E820Type) -> None:
        if size == 0:
            return
        if len(entries) == MAX_ENTRIES:
            raise VmLayoutError(
                "too_many_memory_ranges",
                f"e820: too many memory ranges to fit in the {MAX_ENTRIES}-entry e820 map",
            )
        entries.append(E820Entry(addr, size, int(kind)))

    push(0, ACPI_TABLES_BASE, E820Type.RAM)
    push(ACPI_TABLES_BASE, _page_up(acpi_len), E820Type.ACPI)
    push(acpi_end, _page_up(smbios_len), E820Type.RESERVED)
    push(smbios_end, additional_page_count * PAGE_SIZE, E820Type.RESERVED)
    push(additional_end, RSDP_BASE - additional_end, E820Type.RAM)
    push(RSDP_BASE, ONE_MIB - RSDP_BASE, E820Type.RESERVED)
    push(ONE_MIB, first.end - ONE_MIB, E820Type.RAM)
    for r in ram[1:]:
        push(r.start, r.size, E820Type.RAM)
    return tuple(entries)


def e820_to_json(entries: tuple[E820Entry, ...]) -> dict[str, list[list[int]]]:
    """Exactly an e820 vector's `expect`: `[addr, size, type]` in table order."""
    return {"e820": [[e.addr, e.size, e.type] for e in entries]}


def encode_e820(entries: tuple[E820Entry, ...]) -> bytes:
    """The packed 20-byte entries, as they sit in the zero page's e820_table."""
    return b"".join(ENTRY.pack(addr=e.addr, size=e.size, type=e.type) for e in entries)


def decode_e820(data: bytes) -> tuple[E820Entry, ...]:
    if len(data) % ENTRY.size:
        raise VmLayoutError(
            "invalid_e820", f"{len(data)} bytes is not a whole number of 20-byte entries"
        )
    if len(data) // ENTRY.size > MAX_ENTRIES:
        raise VmLayoutError("invalid_e820", f"more than {MAX_ENTRIES} entries")
    entries = tuple(
        E820Entry(**ENTRY.unpack(data, offset)) for offset in range(0, len(data), ENTRY.size)
    )
    for i, e in enumerate(entries):
        if e.end > 1 << 64:
            raise VmLayoutError("invalid_e820", f"entry {i}: runs past the 64-bit space")
    return entries


def e820_ranges(entries: tuple[E820Entry, ...]) -> tuple[MemoryRange, ...]:
    """Page-granular ranges of every entry (RAM-like or reserved), for cross-checks."""
    out = []
    for i, e in enumerate(entries):
        if e.addr % PAGE_SIZE or e.size % PAGE_SIZE:
            raise VmLayoutError("invalid_e820", f"entry {i}: not page aligned")
        out.append(MemoryRange(e.addr, e.end))
    return tuple(out)
