"""AML resource descriptors (ACPI 6.x §6.4): the `_CRS` buffers vmlayout writes and
reads back. Each descriptor type is one field table (`LAYOUT`) that its `encode` and
its `decode` both go through; only the mapping between the wire fields and the typed
value (a range's start and length; the wire's minimum, maximum and length) is per
type, and decoding checks that arithmetic — an empty range, a maximum below the
minimum, or a minimum + length that passes 2^64 is a one-line error, never a crash.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from vmlayout.binfmt import Struct
from vmlayout.errors import VmLayoutError
from vmlayout.ranges import PAGE_SIZE, MemoryRange

#: Large descriptors: bit 7 of the tag set, a 16-bit length of the bytes after it.
LARGE_ITEM = 0x80
LARGE_HEADER = Struct("large resource header", (("tag", "B"), ("length", "H")))
#: Small descriptors: tag = item name (bits 6:3) | length (bits 2:0).
SMALL_NAME_SHIFT, SMALL_LENGTH_MASK = 3, 0x7
SMALL_IO, SMALL_END_TAG = 0x08, 0x0F
END_TAG_LAYOUT = Struct("End Tag", (("tag", "B"), ("checksum", "B")))
#: Checksum byte 00: "not computed", as the reference emits.
END_TAG = END_TAG_LAYOUT.pack(tag=SMALL_END_TAG << SMALL_NAME_SHIFT | 1, checksum=0)


class ResourceType(enum.IntEnum):
    MEMORY = 0
    IO = 1
    BUS_NUMBER = 2


class GeneralFlags(enum.IntFlag):
    """Address space descriptors: consumer, decode, min/max fixed."""

    CONSUMER = 1 << 0
    SUBTRACTIVE_DECODE = 1 << 1
    MIN_FIXED = 1 << 2
    MAX_FIXED = 1 << 3


class MemoryFlags(enum.IntFlag):
    """Memory type-specific flags: read-write (bit 0), then the memory attribute in
    bits 2:1 (0 non-cacheable, 1 cacheable, 2 write-combining, 3 prefetchable)."""

    READ_WRITE = 1 << 0
    CACHEABLE = 1 << 1
    WRITE_COMBINING = 2 << 1
    PREFETCHABLE = 3 << 1


class InterruptFlags(enum.IntFlag):
    CONSUMER = 1 << 0
    EDGE = 1 << 1
    ACTIVE_LOW = 1 << 2
    SHARED = 1 << 3
    WAKE_CAPABLE = 1 << 4


FIXED_WINDOW = GeneralFlags.MIN_FIXED | GeneralFlags.MAX_FIXED
MMIO_FLAGS = MemoryFlags.READ_WRITE | MemoryFlags.CACHEABLE


def _error(message: str) -> VmLayoutError:
    return VmLayoutError("aml_error", message)


def _bad(what: str, reason: str) -> VmLayoutError:
    return VmLayoutError("invalid_acpi", f"{what}: {reason}")


class ResourceDescriptor:
    """A descriptor type: its tag and field table, and the wire fields of a value."""

    __slots__ = ()
    TAG: ClassVar[int]
    LAYOUT: ClassVar[Struct]

    @classmethod
    def header(cls) -> dict[str, int]:
        """The tag (and a large descriptor's length) every value of the type carries."""
        if cls.TAG & LARGE_ITEM:
            return {"tag": cls.TAG, "length": cls.LAYOUT.size - LARGE_HEADER.size}
        return {"tag": cls.TAG}

    def wire(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_wire(cls, values: dict[str, Any], what: str) -> Self:
        raise NotImplementedError

    def encode(self) -> bytes:
        return self.LAYOUT.pack(**self.header(), **self.wire())

    @classmethod
    def decode(cls, buffer: bytes, offset: int, what: str) -> Self:
        return cls.from_wire(cls.LAYOUT.unpack(buffer, offset, what), what)


class MemoryDescriptor(ResourceDescriptor):
    """A descriptor claiming memory: its range, or None when it is not page granular."""

    __slots__ = ()

    @property
    def memory(self) -> MemoryRange | None:
        raise NotImplementedError


def _page_range(start: int, length: int) -> MemoryRange | None:
    if start % PAGE_SIZE or length % PAGE_SIZE:
        return None
    try:
        return MemoryRange(start, start + length)
    except ValueError:
        return None


def _window(values: dict[str, Any], bits: int, what: str, kind: str) -> tuple[int, int]:
    """(minimum, length) of an address space descriptor, its arithmetic checked."""
    minimum, maximum, length = values["minimum"], values["maximum"], values["range_length"]
    where = f"{kind} at {minimum:#x}"
    if length == 0:
        raise _bad(what, f"{where}: empty range (length 0)")
    if maximum < minimum:
        raise _bad(what, f"{where}: maximum {maximum:#x} is below the minimum")
    if minimum + length > 1 << bits:
        raise _bad(what, f"{where}: minimum + length {length:#x} passes 2^{bits}")
    if maximum != minimum + length - 1:
        raise _bad(what, f"{where}: maximum {maximum:#x} is not minimum + length - 1")
    return minimum, length


def _address_space(name: str, width: str) -> Struct:
    return Struct(
        name,
        (
            ("tag", "B"),
            ("length", "H"),
            ("resource_type", "B"),
            ("general_flags", "B"),
            ("type_flags", "B"),
            ("granularity", width),
            ("minimum", width),
            ("maximum", width),
            ("translation", width),
            ("range_length", width),
        ),
    )


QWORD_ADDRESS = _address_space("QWordMemory", "Q")
DWORD_ADDRESS = _address_space("DWordMemory", "I")
WORD_ADDRESS = _address_space("WordBusNumber", "H")


def _memory_wire(name: str, bits: int, d: QWordMemory | DWordMemory) -> dict[str, Any]:
    """The address-space fields of a memory window of `bits` address bits."""
    maximum = d.start + d.length - 1
    if d.length == 0 or maximum >= 1 << bits:
        raise _error(f"{name} at {d.start:#x}: empty or beyond 2^{bits}")
    return {
        "resource_type": ResourceType.MEMORY,
        "general_flags": d.general_flags,
        "type_flags": d.type_flags,
        "granularity": 0,
        "minimum": d.start,
        "maximum": maximum,
        "translation": 0,
        "range_length": d.length,
    }


def _memory_from_wire(
    name: str, bits: int, values: dict[str, Any], what: str
) -> tuple[int, int, int, int]:
    """(start, length, general flags, type flags), the window's arithmetic checked."""
    if values["resource_type"] != ResourceType.MEMORY:
        raise _bad(what, f"{name} address space of type {values['resource_type']} is not ours")
    start, length = _window(values, bits, what, name)
    return start, length, values["general_flags"], values["type_flags"]


@dataclass(frozen=True, slots=True)
class QWordMemory(MemoryDescriptor):
    TAG: ClassVar[int] = 0x8A
    LAYOUT: ClassVar[Struct] = QWORD_ADDRESS

    start: int
    length: int
    general_flags: int = FIXED_WINDOW
    type_flags: int = MMIO_FLAGS

    def wire(self) -> dict[str, Any]:
        return _memory_wire("QWordMemory", 64, self)

    @classmethod
    def from_wire(cls, values: dict[str, Any], what: str) -> QWordMemory:
        return cls(*_memory_from_wire("QWordMemory", 64, values, what))

    @property
    def memory(self) -> MemoryRange | None:
        return _page_range(self.start, self.length)


@dataclass(frozen=True, slots=True)
class DWordMemory(MemoryDescriptor):
    TAG: ClassVar[int] = 0x87
    LAYOUT: ClassVar[Struct] = DWORD_ADDRESS

    start: int
    length: int
    general_flags: int = FIXED_WINDOW
    type_flags: int = MMIO_FLAGS

    def wire(self) -> dict[str, Any]:
        return _memory_wire("DWordMemory", 32, self)

    @classmethod
    def from_wire(cls, values: dict[str, Any], what: str) -> DWordMemory:
        return cls(*_memory_from_wire("DWordMemory", 32, values, what))

    @property
    def memory(self) -> MemoryRange | None:
        return _page_range(self.start, self.length)


@dataclass(frozen=True, slots=True)
class WordBusNumber(ResourceDescriptor):
    TAG: ClassVar[int] = 0x88
    LAYOUT: ClassVar[Struct] = WORD_ADDRESS

    minimum: int
    length: int

    @property
    def maximum(self) -> int:
        return self.minimum + self.length - 1

    def wire(self) -> dict[str, Any]:
        return {
            "resource_type": ResourceType.BUS_NUMBER,
            "general_flags": FIXED_WINDOW,
            "type_flags": 0,
            "granularity": 0,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "translation": 0,
            "range_length": self.length,
        }

    @classmethod
    def from_wire(cls, values: dict[str, Any], what: str) -> WordBusNumber:
        if values["resource_type"] != ResourceType.BUS_NUMBER:
            raise _bad(what, f"Word address space of type {values['resource_type']} is not ours")
        return cls(*_window(values, 16, what, "WordBusNumber"))


MEMORY32_FIXED = Struct(
    "Memory32Fixed", (("tag", "B"), ("length", "H"), ("info", "B"), ("base", "I"), ("size", "I"))
)


@dataclass(frozen=True, slots=True)
class Memory32Fixed(MemoryDescriptor):
    TAG: ClassVar[int] = 0x86
    LAYOUT: ClassVar[Struct] = MEMORY32_FIXED

    base: int
    length: int
    read_write: bool = True

    def wire(self) -> dict[str, Any]:
        return {"info": int(self.read_write), "base": self.base, "size": self.length}

    @classmethod
    def from_wire(cls, values: dict[str, Any], what: str) -> Memory32Fixed:
        base, size = values["base"], values["size"]
        if base + size > 1 << 32:
            raise _bad(what, f"Memory32Fixed at {base:#x}: base + length {size:#x} passes 2^32")
        return cls(base, size, bool(values["info"] & MemoryFlags.READ_WRITE))

    @property
    def memory(self) -> MemoryRange | None:
        return _page_range(self.base, self.length)


EXTENDED_INTERRUPT = Struct(
    "Interrupt", (("tag", "B"), ("length", "H"), ("flags", "B"), ("count", "B"), ("number", "I"))
)


@dataclass(frozen=True, slots=True)
class Interrupt(ResourceDescriptor):
    """An Extended Interrupt descriptor with one interrupt."""

    TAG: ClassVar[int] = 0x89
    LAYOUT: ClassVar[Struct] = EXTENDED_INTERRUPT

    number: int
    edge: bool
    active_low: bool = False
    shared: bool = False
    consumer: bool = True

    @property
    def flags(self) -> InterruptFlags:
        out = InterruptFlags(0)
        for flag, on in (
            (InterruptFlags.CONSUMER, self.consumer),
            (InterruptFlags.EDGE, self.edge),
            (InterruptFlags.ACTIVE_LOW, self.active_low),
            (InterruptFlags.SHARED, self.shared),
        ):
            if on:
                out |= flag
        return out

    def wire(self) -> dict[str, Any]:
        return {"flags": self.flags, "count": 1, "number": self.number}

    @classmethod
    def from_wire(cls, values: dict[str, Any], what: str) -> Interrupt:
        if values["count"] != 1:
            raise _bad(what, f"Interrupt descriptor lists {values['count']} interrupts, not 1")
        flags = InterruptFlags(values["flags"])
        return cls(
            values["number"],
            edge=InterruptFlags.EDGE in flags,
            active_low=InterruptFlags.ACTIVE_LOW in flags,
            shared=InterruptFlags.SHARED in flags,
            consumer=InterruptFlags.CONSUMER in flags,
        )


IO_PORT = Struct(
    "IO",
    (
        ("tag", "B"),
        ("decode", "B"),
        ("minimum", "H"),
        ("maximum", "H"),
        ("alignment", "B"),
        ("range_length", "B"),
    ),
)


@dataclass(frozen=True, slots=True)
class IoPort(ResourceDescriptor):
    TAG: ClassVar[int] = SMALL_IO << SMALL_NAME_SHIFT | (IO_PORT.size - 1)
    LAYOUT: ClassVar[Struct] = IO_PORT

    minimum: int
    maximum: int
    alignment: int
    length: int
    decode16: bool = True

    def wire(self) -> dict[str, Any]:
        return {
            "decode": int(self.decode16),
            "minimum": self.minimum,
            "maximum": self.maximum,
            "alignment": self.alignment,
            "range_length": self.length,
        }

    @classmethod
    def from_wire(cls, values: dict[str, Any], what: str) -> IoPort:
        if values["maximum"] < values["minimum"]:
            raise _bad(what, f"IO at {values['minimum']:#x}: maximum is below the minimum")
        return cls(
            values["minimum"],
            values["maximum"],
            values["alignment"],
            values["range_length"],
            bool(values["decode"] & 1),
        )


#: Every descriptor type vmlayout writes and reads, by tag byte.
DESCRIPTOR_TYPES: dict[int, type[ResourceDescriptor]] = {
    cls.TAG: cls
    for cls in (QWordMemory, DWordMemory, WordBusNumber, Memory32Fixed, Interrupt, IoPort)
}


def decode_resources(buffer: bytes, what: str) -> list[ResourceDescriptor]:
    """Resource descriptors of a `_CRS` buffer, up to and including the End Tag."""
    out: list[ResourceDescriptor] = []
    offset = 0
    while offset < len(buffer):
        tag = buffer[offset]
        if tag & LARGE_ITEM:
            if offset + LARGE_HEADER.size > len(buffer):
                raise _bad(what, f"_CRS descriptor at {offset} is truncated")
            size = LARGE_HEADER.size + LARGE_HEADER.unpack(buffer, offset, what)["length"]
        else:
            size = 1 + (tag & SMALL_LENGTH_MASK)
            if tag >> SMALL_NAME_SHIFT == SMALL_END_TAG:
                if offset + size != len(buffer) or size != END_TAG_LAYOUT.size:
                    raise _bad(what, "_CRS has bytes after the End Tag")
                return out
        if offset + size > len(buffer):
            raise _bad(what, f"_CRS descriptor at {offset} runs past the buffer")
        cls = DESCRIPTOR_TYPES.get(tag)
        if cls is None or size != cls.LAYOUT.size:
            raise _bad(what, f"_CRS descriptor {tag:#04x} of {size} bytes is not ours")
        out.append(cls.decode(buffer, offset, what))
        offset += size
    raise _bad(what, "_CRS has no End Tag")
