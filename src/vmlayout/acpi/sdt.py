"""The system description table frame every ACPI table shares (spec 04 §2): the
36-byte header, its checksum, the OEM identities vmlayout writes, and the walk over a
table's variable-length entries. Both directions of every table go through here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vmlayout.binfmt import Struct
from vmlayout.errors import VmLayoutError
from vmlayout.ranges import MemoryRange

HEADER = Struct(
    "ACPI table header",
    (
        ("signature", "4s"),
        ("length", "I"),
        ("revision", "B"),
        ("checksum", "B"),
        ("oem_id", "6s"),
        ("oem_table_id", "8s"),
        ("oem_revision", "I"),
        ("creator_id", "4s"),
        ("creator_revision", "I"),
    ),
)


@dataclass(frozen=True, slots=True)
class HeaderFlavour:
    oem_id: bytes
    oem_table_id: bytes
    oem_revision: int
    creator_id: bytes
    creator_revision: int


DSDT_FLAVOUR = HeaderFlavour(b"MSFTVM", b"DSDT01\0\0", 1, b"MSFT", 0x05000000)
SSDT_FLAVOUR = HeaderFlavour(b"MSFTVM", b"SSDT01\0\0", 1, b"MSFT", 0x01000000)
CEDT_FLAVOUR = HeaderFlavour(b"MSFTVM", b"CEDT01\0\0", 1, b"MSFT", 0x01000000)
STANDARD_FLAVOUR = HeaderFlavour(b"HVLITE", b"HVLITETB", 0, b"MSHV", 0)
#: The OEM ids vmlayout (like the reference) writes: how a table of ours is recognised.
OEM_IDS = frozenset(f.oem_id for f in (DSDT_FLAVOUR, SSDT_FLAVOUR, CEDT_FLAVOUR, STANDARD_FLAVOUR))


def checksum(data: bytes | bytearray) -> int:
    return -sum(data) & 0xFF


def build_table(
    signature: bytes, revision: int, body: bytes, flavour: HeaderFlavour = STANDARD_FLAVOUR
) -> bytes:
    """Header + body with length and checksum filled in."""
    length = HEADER.size + len(body)
    if length >= 1 << 32:
        raise VmLayoutError("acpi_error", f"{signature.decode()}: table too large")
    fields: dict[str, Any] = {
        "signature": signature,
        "length": length,
        "revision": revision,
        "oem_id": flavour.oem_id,
        "oem_table_id": flavour.oem_table_id,
        "oem_revision": flavour.oem_revision,
        "creator_id": flavour.creator_id,
        "creator_revision": flavour.creator_revision,
    }
    unsummed = HEADER.pack(checksum=0, **fields) + body
    return HEADER.pack(checksum=checksum(unsummed), **fields) + body


def bad(what: str, reason: str) -> VmLayoutError:
    return VmLayoutError("invalid_acpi", f"{what}: {reason}")


@dataclass(frozen=True, slots=True)
class Table:
    signature: str
    header: dict[str, Any]
    body: bytes
    checksum_ok: bool


def decode_table(data: bytes, what: str = "table") -> Table:
    if len(data) < HEADER.size:
        raise bad(what, f"{len(data)} bytes is shorter than the 36-byte header")
    header = HEADER.unpack(data)
    if header["length"] != len(data):
        raise bad(what, f"header length {header['length']} but {len(data)} bytes present")
    try:
        signature = header["signature"].decode("ascii")
    except UnicodeDecodeError:
        raise bad(what, "signature is not ASCII") from None
    return Table(signature, header, data[HEADER.size :], checksum(data) == 0)


def checked_range(start: int, size: int, what: str, empty_ok: bool = False) -> MemoryRange:
    """`[start, start + size)` from a table's fields, or a one-line error when it is
    empty (unless `empty_ok`), not page aligned or runs past the address space: the
    arithmetic of an untrusted table is checked before a range exists."""
    try:
        if size == 0 and not empty_ok:
            raise ValueError("empty")
        return MemoryRange(start, start + size)
    except ValueError:
        raise bad(what, f"impossible range {start:#x}+{size:#x}") from None


def require_checksum(table: Table, what: str) -> None:
    if not table.checksum_ok:
        raise bad(what, "checksum does not sum to zero")


def expect_signature(table: Table, signature: str) -> None:
    if table.signature != signature:
        raise bad(signature, f"signature is {table.signature!r}")


#: The (type, length) prefix of an entry, in each shape ACPI tables use.
ENTRY_HEADER_U8 = Struct("entry header", (("type", "B"), ("length", "B")))  # MADT SRAT PPTT
ENTRY_HEADER_U16 = Struct(  # CEDT IVRS
    "entry header", (("type", "B"), ("flags", "B"), ("length", "H"))
)
ENTRY_HEADER_TYPE16 = Struct("entry header", (("type", "H"), ("length", "H")))  # DMAR
IORT_ENTRY_HEADER = Struct("IORT node header", (("type", "B"), ("length", "H")))


@dataclass(frozen=True, slots=True)
class Entry:
    """One variable-length entry of a table body: its type, where it starts (in the
    body), and its length (at least its header's)."""

    type: int
    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length

    @property
    def table_offset(self) -> int:
        """Where the entry starts in the whole table (what error messages name)."""
        return self.offset + HEADER.size


def entries(
    body: bytes,
    offset: int,
    what: str,
    header: Struct = ENTRY_HEADER_U8,
    end: int | None = None,
) -> Iterator[Entry]:
    """Each entry from `offset` to `end` (default: the end of `body`), sized by its own
    length field; a truncated header or a length that is too short or runs past the
    end is a one-line error."""
    stop = len(body) if end is None else end
    while offset < stop:
        if offset + header.size > stop:
            raise bad(what, f"entry header at {offset + HEADER.size:#x} is truncated")
        fields = header.unpack(body, offset, what)
        length = fields["length"]
        if length < header.size or offset + length > stop:
            raise bad(what, f"entry at {offset + HEADER.size:#x} has bad length {length}")
        yield Entry(fields["type"], offset, length)
        offset += length


def require_length(entry: Entry, minimum: int, what: str, kind: str) -> None:
    """An entry must hold every field its type's record declares."""
    if entry.length < minimum:
        raise bad(what, f"{kind} at {entry.table_offset:#x} is too short ({entry.length} bytes)")


def typed_header(code: int, layout: Struct) -> tuple[tuple[str, int], ...]:
    """The `FIXED` fields of a fixed-size entry: its type code and its length."""
    return (("type", code), ("length", layout.size))


@dataclass(frozen=True, slots=True)
class UnknownEntry:
    """An entry of a type vmlayout does not decode: listed by type number, skipped."""

    type: int
    length: int
