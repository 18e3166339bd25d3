"""PCAT BIOS configuration values (spec 03 §5): the items the legacy BIOS reads over its
config port, the INT 15h E820 helper and the initial 256-byte CMOS image.

The BIOS needs both chipset windows, so an empty one is rejected up front instead of
becoming a wrong gap size deep in POST. Likewise a first RAM range of 64 GiB or more
cannot be written to the 16-bit CMOS extended-memory field (the reference asserts);
it is refused by name rather than truncated into a BIOS that sees the wrong size.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

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
CMOS_SIZE = 256
BASE_MEMORY_KIB = 640
#: CMOS offsets of the layout-dependent fields and the two checksums (MSB first).
CMOS_BASE_MEMORY = 0x15
CMOS_EXT_MEMORY = 0x17
CMOS_CHECKSUM = 0x2E
CMOS_EXT_CHECKSUM = 0x3E
#: Bytes the basic checksum covers: 0x10..0x2D.
CMOS_CHECKSUM_SPAN = range(0x10, 0x2E)
#: Bytes the extended checksum covers: 0x37..0x3D and 0x40..0x7F.
CMOS_EXT_CHECKSUM_SPAN = (*range(0x37, 0x3E), *range(0x40, 0x80))

#: The BIOS token table's defaults plus OpenVMM's fixed choices (math coprocessor, ACPI
#: on, parallel port off, one floppy as A:, IDE config reset, "optimum" chipset timings),
#: with the layout fields and both checksums left zero. Bytes 0..0x0D (the RTC) stay 0.
#: Equal to the reference's unit-test image with those fields cleared.
CMOS_DEFAULTS = bytes.fromhex(
    "00000000000000000000000000000000400000201f0000000030300000000000"
    "0000000000000030302607070707000000000000000000000000108600400000"
    "00000000000000000000000000481a1971a91800a8f149761401809300400300"
    "00085aacfe1032547698bae400000000000003"
).ljust(CMOS_SIZE, b"\0")


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
        self.cmos_memory_bytes()  # refuses a first RAM range the CMOS cannot describe

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
        """CMOS offsets 0x15..0x18: base memory 640 KiB and extended memory in MiB.

        Extended memory is the whole first RAM range in MiB (not minus 1 MiB): the
        BIOS subtracts the low megabyte itself."""
        first = self.layout.ram[0].range
        extended = first.size >> 20
        if extended >= 0x10000:
            raise VmLayoutError(
                "pcat_first_ram_too_large",
                f"CMOS extended memory: the first RAM range {first} is {first.size >> 30} GiB; "
                "PCAT needs it below 64 GiB (a 16-bit MiB count)",
            )
        return {
            CMOS_BASE_MEMORY: BASE_MEMORY_KIB & 0xFF,
            CMOS_BASE_MEMORY + 1: BASE_MEMORY_KIB >> 8,
            CMOS_EXT_MEMORY: extended & 0xFF,
            CMOS_EXT_MEMORY + 1: extended >> 8,
        }

    def e820_helper_replies(self) -> list[list[int]]:
        """The three reads of item 0x22 for entries 0 .. max(RAM ranges - 1, 1) - 1: one
        triple per RAM range beyond the first (the BIOS reports ram[0] itself)."""
        count = max(len(self.layout.ram) - 1, 1)
        return [[self.e820_helper(entry, n)[0] for n in range(3)] for entry in range(count)]

    def to_json(self) -> dict[str, Any]:
        """Exactly a pcat vector's `expect`."""
        return {
            "items": {f"{item.value:#04x}": value for item, value in self.items().items()},
            "e820_helper": self.e820_helper_replies(),
            "cmos": self.cmos_image().hex(),
        }

    def cmos_image(self) -> bytes:
        """The complete initial CMOS image the RTC starts with."""
        image = bytearray(CMOS_DEFAULTS)
        for offset, value in self.cmos_memory_bytes().items():
            image[offset] = value
        return bytes(cmos_with_checksums(image))


def cmos_checksums(image: bytes | bytearray) -> tuple[int, int]:
    """(basic, extended): the u16 byte sums the BIOS verifies at POST."""
    basic = sum(image[i] for i in CMOS_CHECKSUM_SPAN)
    extended = sum(image[i] for i in CMOS_EXT_CHECKSUM_SPAN)
    return basic & 0xFFFF, extended & 0xFFFF


def cmos_with_checksums(image: bytearray) -> bytearray:
    """Stores both checksums big-endian (MSB at the lower offset), as the BIOS reads them."""
    basic, extended = cmos_checksums(image)
    image[CMOS_CHECKSUM : CMOS_CHECKSUM + 2] = basic.to_bytes(2, "big")
    image[CMOS_EXT_CHECKSUM : CMOS_EXT_CHECKSUM + 2] = extended.to_bytes(2, "big")
    return image


def decode_cmos(image: bytes) -> dict[str, int | bool]:
    """The layout fields of a CMOS image and whether its stored checksums hold."""
    if len(image) != CMOS_SIZE:
        raise VmLayoutError("invalid_cmos", f"CMOS image: {len(image)} bytes, expected 256")
    basic, extended = cmos_checksums(image)
    stored_basic = int.from_bytes(image[CMOS_CHECKSUM : CMOS_CHECKSUM + 2], "big")
    stored_ext = int.from_bytes(image[CMOS_EXT_CHECKSUM : CMOS_EXT_CHECKSUM + 2], "big")
    return {
        "base_memory_kib": int.from_bytes(image[CMOS_BASE_MEMORY : CMOS_BASE_MEMORY + 2], "little"),
        "extended_memory_mib": int.from_bytes(
            image[CMOS_EXT_MEMORY : CMOS_EXT_MEMORY + 2], "little"
        ),
        "checksum": stored_basic,
        "checksum_ok": stored_basic == basic,
        "extended_checksum": stored_ext,
        "extended_checksum_ok": stored_ext == extended,
    }
