"""PCAT BIOS configuration values (spec 03 §5): the items the legacy BIOS reads over its
config port, the INT 15h E820 helper and the layout part of the initial CMOS image.

The BIOS needs both chipset windows, so an empty one is rejected up front instead of
becoming a wrong gap size deep in POST.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from vmlayout.errors import VmLayoutError
from vmlayout.layout import ChipsetMmioRanges, MemoryLayout
from vmlayout.ranges import FOUR_GIB


class PcatItem(IntEnum):
    FIRST_MEMORY_BLOCK_SIZE = 0x00
    MEMORY_AMOUNT_ABOVE_4GB = 0x0D
    PCI_IO_GAP_START = 0x12
    MEMORY_ABOVE_HIGH_MMIO = 0x1F
    HIGH_MMIO_GAP_BASE_IN_MB = 0x20
    HIGH_MMIO_GAP_LENGTH_IN_MB = 0x21
    E820_ENTRY = 0x22
    INITIAL_MEGABYTES_BELOW_GAP = 0x23


U32 = 0xFFFF_FFFF


def _mb(value: int) -> int:
    return value >> 20


def _u32(item: PcatItem, value: int) -> int:
    if not 0 <= value <= U32:
        raise VmLayoutError("pcat_value_overflow", f"{item.name}: {value:#x} does not fit u32")
    return value


@dataclass(frozen=True, slots=True)
class PcatConfig:
    layout: MemoryLayout
    chipset: ChipsetMmioRanges

    def __post_init__(self) -> None:
        if self.chipset.low.is_empty() or self.chipset.high.is_empty():
            raise VmLayoutError(
                "incorrect_mmio_holes",
                "PCAT requires non-empty chipset low and high MMIO ranges "
                "(chipset_high_mmio_size must not be 0)",
            )

    def items(self) -> dict[PcatItem, int]:
        """The layout-derived items (E820_ENTRY aside: see `e820_helper`)."""
        ram = [r.range for r in self.layout.ram]
        high = self.chipset.high
        values = {
            PcatItem.FIRST_MEMORY_BLOCK_SIZE: ram[0].size >> 10,
            PcatItem.MEMORY_AMOUNT_ABOVE_4GB: _mb(sum(r.size for r in ram if r.end >= FOUR_GIB)),
            PcatItem.PCI_IO_GAP_START: self.chipset.low.start,
            PcatItem.MEMORY_ABOVE_HIGH_MMIO: _mb(sum(r.size for r in ram if r.start >= high.end)),
            PcatItem.HIGH_MMIO_GAP_BASE_IN_MB: _mb(high.start),
            PcatItem.HIGH_MMIO_GAP_LENGTH_IN_MB: _mb(high.size) - 1,
            PcatItem.INITIAL_MEGABYTES_BELOW_GAP: _mb(sum(r.size for r in ram if r.end < FOUR_GIB)),
        }
        return {item: _u32(item, value) for item, value in values.items()}

    def e820_helper(self, e820_entry: int, read_count: int) -> tuple[int, bool]:
        """(value, warned): the INT 15h helper's reply for RAM beyond the first range."""
        ram = [r.range for r in self.layout.ram]
        index = e820_entry + 1
        if e820_entry == 0 and len(ram) == 1:
            return 0, False
        if index >= len(ram):
            return 0, True
        r = ram[index]
        if read_count == 0:
            value = 1 | (0b100 if index + 1 != len(ram) else 0) | (_mb(r.size) << 3)
            return value & U32, False
        if read_count == 1:
            return r.start & U32, False
        if read_count == 2:
            return r.start >> 32, False
        return 0, True

    def cmos_memory_bytes(self) -> dict[int, int]:
        """CMOS offsets 0x15..0x18: base memory 640 KiB and extended memory in MiB."""
        extended = self.layout.ram[0].range.size >> 20
        if extended >= 0x10000:
            raise VmLayoutError(
                "pcat_value_overflow", "CMOS extended memory: first RAM range is too large"
            )
        return {0x15: 0x80, 0x16: 0x02, 0x17: extended & 0xFF, 0x18: extended >> 8}
