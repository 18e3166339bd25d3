"""A small AML object model (spec 04 §1): every object serializes itself.

Objects are immutable values composed like the ASL they stand for, so a device reads
close to the spec's tables and its bytes come from one place. Only production is
needed; `decode.py` reads back the subset produced here. Resource descriptors are
declared with their decoder in `resources.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from vmlayout.acpi.resources import END_TAG
from vmlayout.acpi.resources import DWordMemory as DWordMemory  # re-exported for composing
from vmlayout.acpi.resources import Interrupt as Interrupt
from vmlayout.acpi.resources import IoPort as IoPort
from vmlayout.acpi.resources import Memory32Fixed as Memory32Fixed
from vmlayout.acpi.resources import QWordMemory as QWordMemory
from vmlayout.acpi.resources import WordBusNumber as WordBusNumber
from vmlayout.errors import VmLayoutError


class Aml(Protocol):
    def encode(self) -> bytes: ...


def _error(message: str) -> VmLayoutError:
    return VmLayoutError("aml_error", message)


# --- names -----------------------------------------------------------------------------

_LEAD = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_REST = _LEAD | set("0123456789")


def name_seg(segment: str) -> bytes:
    """A 4-byte NameSeg, right-padded with `_`."""
    if not 1 <= len(segment) <= 4 or segment[0] not in _LEAD or set(segment[1:]) - _REST:
        raise _error(f"invalid AML name segment {segment!r}")
    return segment.ljust(4, "_").encode("ascii")


def encode_name(path: str) -> bytes:
    """NameString: root/parent prefixes, then one, dual or multi name segments."""
    out = bytearray()
    rest = path
    if rest.startswith("\\"):
        out.append(0x5C)
        rest = rest[1:]
        if rest.startswith("^"):
            raise _error(f"{path!r}: '^' cannot follow the root prefix")
    while rest.startswith("^"):
        out.append(0x5E)
        rest = rest[1:]
    if not rest:
        raise _error(f"{path!r}: empty name path")
    segments = rest.split(".")
    if any("^" in s or "\\" in s for s in segments):
        raise _error(f"{path!r}: prefix characters inside a name path")
    if len(segments) == 2:
        out.append(0x2E)
    elif len(segments) > 2:
        if len(segments) > 255:
            raise _error(f"{path!r}: more than 255 segments")
        out += bytes((0x2F, len(segments)))
    for segment in segments:
        out += name_seg(segment)
    return bytes(out)


# --- lengths and data -----------------------------------------------------------------


def encode_pkglength(n: int) -> bytes:
    """PkgLength for `n` following bytes, counting its own bytes (correct at every
    boundary, unlike the reference; spec 04 §1.2)."""
    if n < 0:
        raise _error("negative package length")
    if n + 1 <= 63:
        return bytes((n + 1,))
    for k in (2, 3, 4):
        total = n + k
        if total < 1 << (4 + 8 * (k - 1)):
            rest = (total >> 4).to_bytes(k - 1, "little")
            return bytes((((k - 1) << 6) | (total & 0x0F),)) + rest
    raise _error(f"package of {n} bytes is too long for a PkgLength")


def encode_integer(value: int) -> bytes:
    if not 0 <= value < 1 << 64:
        raise _error(f"integer {value} is outside 0..2^64-1")
    if value == 0:
        return b"\x00"
    if value == 1:
        return b"\x01"
    for prefix, size in ((0x0A, 1), (0x0B, 2), (0x0C, 4), (0x0E, 8)):
        if value < 1 << (8 * size):
            return bytes((prefix,)) + value.to_bytes(size, "little")
    raise AssertionError("unreachable")


def encode_dword(value: int) -> bytes:
    return b"\x0c" + value.to_bytes(4, "little")


@dataclass(frozen=True, slots=True)
class Integer:
    value: int

    def encode(self) -> bytes:
        return encode_integer(self.value)


@dataclass(frozen=True, slots=True)
class String:
    text: str

    def encode(self) -> bytes:
        return b"\x0d" + self.text.encode("ascii") + b"\x00"


@dataclass(frozen=True, slots=True)
class Buffer:
    data: bytes

    def encode(self) -> bytes:
        size = encode_integer(len(self.data))
        return b"\x11" + encode_pkglength(len(size) + len(self.data)) + size + self.data


@dataclass(frozen=True, slots=True)
class Package:
    """Package of already-encoded elements (`count` of them)."""

    count: int
    elements: bytes

    def encode(self) -> bytes:
        if not 0 <= self.count <= 255:
            raise _error("a package holds at most 255 elements")
        body = bytes((self.count,)) + self.elements
        return b"\x12" + encode_pkglength(len(body)) + body

    @staticmethod
    def of_bytes(values: Sequence[int]) -> Package:
        """The sleep-package form: one raw byte per element."""
        return Package(len(values), bytes(values))

    @staticmethod
    def of(objects: Sequence[Aml]) -> Package:
        return Package(len(objects), b"".join(o.encode() for o in objects))


@dataclass(frozen=True, slots=True)
class EisaId:
    text: str

    @property
    def value(self) -> int:
        t = self.text
        if len(t) != 7 or not all("A" <= c <= "Z" for c in t[:3]):
            raise _error(f"invalid EISA id {t!r}")
        try:
            digits = [int(c, 16) for c in t[3:]]
        except ValueError:
            raise _error(f"invalid EISA id {t!r}") from None
        c1, c2, c3 = (ord(c) - 0x40 for c in t[:3])
        b0 = (c1 << 2) | (c2 >> 3)
        b1 = ((c2 & 7) << 5) | c3
        b2 = (digits[0] << 4) | digits[1]
        b3 = (digits[2] << 4) | digits[3]
        return b0 | b1 << 8 | b2 << 16 | b3 << 24

    def encode(self) -> bytes:
        return encode_integer(self.value)


@dataclass(frozen=True, slots=True)
class Raw:
    """Pre-encoded bytes (operand references such as a bare NameSeg)."""

    data: bytes

    def encode(self) -> bytes:
        return self.data


def seg(segment: str) -> Raw:
    return Raw(name_seg(segment))


def arg(n: int) -> Raw:
    return Raw(bytes((0x68 + n,)))


def local(n: int) -> Raw:
    return Raw(bytes((0x60 + n,)))


# --- named objects and control ---------------------------------------------------------


def _body(objects: Sequence[Aml]) -> bytes:
    return b"".join(o.encode() for o in objects)


@dataclass(frozen=True, slots=True)
class Name:
    path: str
    value: Aml

    def encode(self) -> bytes:
        return b"\x08" + encode_name(self.path) + self.value.encode()


@dataclass(frozen=True, slots=True)
class Device:
    path: str
    objects: tuple[Aml, ...]

    def encode(self) -> bytes:
        body = encode_name(self.path) + _body(self.objects)
        return b"\x5b\x82" + encode_pkglength(len(body)) + body


@dataclass(frozen=True, slots=True)
class Scope:
    path: str
    objects: tuple[Aml, ...]

    def encode(self) -> bytes:
        body = encode_name(self.path) + _body(self.objects)
        return b"\x10" + encode_pkglength(len(body)) + body


@dataclass(frozen=True, slots=True)
class Method:
    name: str
    argc: int
    ops: tuple[Aml, ...]
    serialized: bool = False
    sync_level: int = 0

    def encode(self) -> bytes:
        if not 0 <= self.argc <= 7 or not 0 <= self.sync_level <= 15:
            raise _error(f"method {self.name}: argc 0..7 and sync level 0..15")
        flags = (self.sync_level << 4) | (int(self.serialized) << 3) | self.argc
        body = name_seg(self.name) + bytes((flags,)) + _body(self.ops)
        return b"\x14" + encode_pkglength(len(body)) + body


@dataclass(frozen=True, slots=True)
class Op:
    """A fixed-arity operation: opcode then its pre-built operands."""

    opcode: int
    operands: tuple[Aml, ...]

    def encode(self) -> bytes:
        return bytes((self.opcode,)) + _body(self.operands)


def Return(value: Aml) -> Op:
    return Op(0xA4, (value,))


def And(a: Aml, b: Aml, target: Aml) -> Op:
    return Op(0x7B, (a, b, target))


def Or(a: Aml, b: Aml, target: Aml) -> Op:
    return Op(0x7D, (a, b, target))


def Store(src: Aml, dst: Aml) -> Op:
    return Op(0x70, (src, dst))


def LEqual(a: Aml, b: Aml) -> Op:
    return Op(0x93, (a, b))


def CreateDWordField(buffer: Aml, index: Aml, name: str) -> Op:
    return Op(0x8A, (buffer, index, seg(name)))


@dataclass(frozen=True, slots=True)
class If:
    predicate: Aml
    body: tuple[Aml, ...]

    def encode(self) -> bytes:
        payload = self.predicate.encode() + _body(self.body)
        return b"\xa0" + encode_pkglength(len(payload)) + payload


@dataclass(frozen=True, slots=True)
class Else:
    body: tuple[Aml, ...]

    def encode(self) -> bytes:
        payload = _body(self.body)
        return b"\xa1" + encode_pkglength(len(payload)) + payload


# --- resource descriptors (declared in `resources.py`) ----------------------------------


@dataclass(frozen=True, slots=True)
class ResourceTemplate:
    descriptors: tuple[Aml, ...]

    def encode(self) -> bytes:
        return Buffer(_body(self.descriptors) + END_TAG).encode()
