"""Half-open guest-physical ranges, address formatting and size parsing.

Everything downstream speaks in `MemoryRange`; keeping equality field-wise (an empty
range at 4 GiB is not `EMPTY`) matters because firmware views leak an empty range's
start into their bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import ClassVar

from vmlayout.errors import VmLayoutError

PAGE_SIZE = 0x1000
KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
TIB = 1 << 40
FOUR_GIB = 1 << 32
U64_LIMIT = 1 << 64
MAX_ADDRESS = U64_LIMIT - PAGE_SIZE


@dataclass(frozen=True, slots=True, order=True)
class MemoryRange:
    """A page-aligned `[start, end)` byte range; ordering is `(start, end)`."""

    start: int
    end: int

    EMPTY: ClassVar[MemoryRange]

    def __post_init__(self) -> None:
        if self.start % PAGE_SIZE or self.end % PAGE_SIZE:
            raise ValueError(f"range {self.start:#x}-{self.end:#x} is not page aligned")
        if not 0 <= self.start <= self.end <= MAX_ADDRESS:
            raise ValueError(f"range {self.start:#x}-{self.end:#x} is out of bounds")

    @property
    def size(self) -> int:
        return self.end - self.start

    def is_empty(self) -> bool:
        return self.start == self.end

    def overlaps(self, other: MemoryRange) -> bool:
        return self.end > other.start and self.start < other.end

    def contains(self, other: MemoryRange) -> bool:
        return self.start <= other.start and self.end >= other.end

    def contains_addr(self, address: int) -> bool:
        return self.start <= address < self.end

    def intersection(self, other: MemoryRange) -> MemoryRange:
        start = max(self.start, other.start)
        end = min(self.end, other.end)
        return MemoryRange(start, end) if start <= end else EMPTY

    def __str__(self) -> str:
        return f"{format_address(self.start)}-{format_address(self.end)}"

    def to_pair(self) -> list[int]:
        return [self.start, self.end]


EMPTY = MemoryRange(0, 0)
MemoryRange.EMPTY = EMPTY


def align_down(value: int, alignment: int) -> int:
    return value & ~(alignment - 1)


def align_up(value: int, alignment: int) -> int | None:
    """Round up, or None where u64 arithmetic would overflow (as the reference)."""
    if value + alignment - 1 >= U64_LIMIT:
        return None
    return align_down(value + alignment - 1, alignment)


def is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def subtract_ranges(
    left: Iterable[MemoryRange], right: Iterable[MemoryRange]
) -> Iterator[MemoryRange]:
    """Parts of sorted disjoint `left` not covered by sorted disjoint `right`."""
    holes = list(right)
    for piece in left:
        cursor = piece.start
        for hole in holes:
            if hole.end <= cursor or hole.is_empty():
                continue
            if hole.start >= piece.end:
                break
            if hole.start > cursor:
                yield MemoryRange(cursor, hole.start)
            cursor = max(cursor, hole.end)
            if cursor >= piece.end:
                break
        if cursor < piece.end:
            yield MemoryRange(cursor, piece.end)


def format_address(value: int) -> str:
    """`0x1_0000_0000`: hex with `_` every four digits, easy to read at TiB scale."""
    return f"{value:#_x}"


_UNITS: dict[str, int] = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4, "P": 5}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B)?\s*$", re.IGNORECASE)
_ACCEPTED = (
    "a non-negative integer, a 0x hex string, or a number with a binary unit "
    "(K/M/G/T/P or KiB..PiB, e.g. 4G, 512 MiB)"
)


#: Longer than any size below 2**64 can be written ("0x" and 16 digits, or 20 digits,
#: a fraction and a unit), with room for leading zeros.
_MAX_SIZE_CHARS = 64


def parse_size(value: object, field: str) -> int:
    """Parse a byte count as QEMU does (units are powers of 1024), naming `field` on error."""
    if isinstance(value, bool):
        raise VmLayoutError("invalid_config", f"{field}: expected a size, got a boolean")
    if isinstance(value, int):
        if value < 0:
            raise VmLayoutError(
                "invalid_config", f"{field}: {value} is negative; expected {_ACCEPTED}"
            )
        return value
    if not isinstance(value, str):
        raise VmLayoutError(
            "invalid_config", f"{field}: expected {_ACCEPTED}, got {type(value).__name__}"
        )
    text = value.strip().replace("_", "")
    if len(text) > _MAX_SIZE_CHARS:
        # Every valid size is below 2**64 (20 digits); refuse long digit strings before
        # converting (int() of thousands of digits is slow, and refused past 4,300).
        raise VmLayoutError(
            "invalid_config",
            f"{field}: a size string of {len(text)} characters is too long; expected {_ACCEPTED}",
        )
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        return int(text, 16)
    match = _SIZE_RE.match(text)
    if match is None or (match.group(3) and match.group(3).upper() == "B" and match.group(2) == ""):
        raise VmLayoutError(
            "invalid_config", f"{field}: cannot parse {value!r}; expected {_ACCEPTED}"
        )
    number, unit, suffix = match.groups()
    if suffix is not None and suffix.lower() == "b" and unit:
        # "4GB" is ambiguous (decimal or binary?): refuse rather than guess.
        raise VmLayoutError(
            "invalid_config",
            f"{field}: {value!r} is ambiguous; "
            f"write {number}{unit.upper()}iB or {number}{unit.upper()}",
        )
    scale: int = 1024 ** _UNITS[unit.upper()]
    whole, _, frac = number.partition(".")
    numerator = int(whole + frac) * scale
    denominator: int = 10 ** len(frac)
    if numerator % denominator:
        raise VmLayoutError(
            "invalid_config",
            f"{field}: {value!r} is not a whole number of bytes; expected {_ACCEPTED}",
        )
    return numerator // denominator


def format_size(size: int) -> str:
    """Largest binary unit that divides exactly, else bytes with thousands grouping."""
    for shift, unit in ((50, "PiB"), (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    for shift, unit in ((50, "PiB"), (40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if size >= 1 << shift:
            return f"{size / (1 << shift):.2f} {unit}"
    return f"{size} B"


def readable_size(size: int) -> str:
    """The size in its largest exact unit and, when that reads as a long number
    (`262143 MiB`), the same value as a round size minus or plus a remainder."""
    exact = format_size(size)
    number = exact.split(" ", 1)[0]
    if not number.isdigit() or int(number) < 1024:
        return exact
    unit = 1 << ((size.bit_length() - 1) // 10 * 10)
    near = min((size // unit) * unit, -(-size // unit) * unit, key=lambda r: abs(size - r))
    rest = size - near
    if rest == 0 or near == 0:
        return exact
    return f"{exact} ({format_size(near)} {'+' if rest > 0 else '-'} {format_size(abs(rest))})"
