"""Binary structures declared as data: one field table per structure, with the single
`pack` and the single `unpack` built from it, so an encoder and its decoder cannot
drift apart. Everything firmware-facing here is little-endian without padding.

A field's format is a `struct` code or another `Struct` (a nested record such as an
ACPI Generic Address, packed from and unpacked to a dict). Fields named `reserved…`
may be left out of `pack`: they are zeros. `Packed` binds a frozen dataclass to a
field table, so a typed record is encoded and decoded through that one table.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
import sys
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self, cast

from vmlayout.errors import VmLayoutError

Format = typing.Union[str, "Struct"]


@dataclass(frozen=True, slots=True)
class Struct:
    """A named, fixed-size little-endian record: `fields` are (name, format)."""

    name: str
    fields: tuple[tuple[str, Format], ...]
    _codec: struct.Struct = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        codes = (f"{f.size}s" if isinstance(f, Struct) else f for _, f in self.fields)
        object.__setattr__(self, "_codec", struct.Struct("<" + "".join(codes)))

    @property
    def size(self) -> int:
        return self._codec.size

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.fields)

    def pack(self, **values: Any) -> bytes:
        missing = [n for n in self.names if n not in values and not n.startswith("reserved")]
        extra = [n for n in values if n not in self.names]
        if missing or extra:
            raise TypeError(f"{self.name}: missing {missing} / unexpected {extra}")
        items = []
        for name, fmt in self.fields:
            value = values.get(name)
            if isinstance(fmt, Struct):
                value = bytes(fmt.size) if value is None else fmt.pack(**value)
            elif value is None:
                value = b"" if fmt.endswith("s") else 0
            items.append(value)
        try:
            return self._codec.pack(*items)
        except struct.error as error:
            raise VmLayoutError("encode_error", f"{self.name}: {error}") from None

    def unpack(self, data: bytes, offset: int = 0, what: str = "") -> dict[str, Any]:
        """Decode at `offset`; truncation is a one-line error naming the offset."""
        if offset < 0 or offset + self.size > len(data):
            raise VmLayoutError(
                "truncated",
                f"{what or self.name}: {self.size}-byte {self.name} at offset {offset:#x} "
                f"runs past the end of the {len(data)}-byte input",
            )
        values = dict(zip(self.names, self._codec.unpack_from(data, offset), strict=True))
        for name, fmt in self.fields:
            if isinstance(fmt, Struct):
                values[name] = fmt.unpack(values[name], 0, what)
        return values


class Packed:
    """Mixin for a frozen dataclass that is one `LAYOUT` record: its fields are the
    layout's, less the `FIXED` ones (type codes and lengths, written by `pack`) and the
    reserved ones (zeros). `pack` and `unpack` are the only encoder and decoder, so a
    record type cannot be written with one field table and read with another. Fields
    annotated with an `enum.IntFlag` come back as that flag type."""

    __slots__ = ()
    LAYOUT: ClassVar[Struct]
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = ()

    def values(self) -> dict[str, Any]:
        """The layout's field values: the dataclass's (nested records as dicts) and the
        fixed ones."""
        out = dict(self.FIXED)
        for f in dataclasses.fields(_dataclass(self)):
            value = getattr(self, f.name)
            out[f.name] = value.values() if isinstance(value, Packed) else value
        return out

    def pack(self) -> bytes:
        return self.LAYOUT.pack(**self.values())

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Self:
        """The record from unpacked field values (the fixed and reserved ones ignored)."""
        kwargs = {}
        for name, convert in _converters(cls).items():
            kwargs[name] = values[name] if convert is None else convert(values[name])
        return cast(Self, cast(Any, cls)(**kwargs))

    @classmethod
    def unpack(cls, data: bytes, offset: int = 0, what: str = "") -> Self:
        return cls.from_values(cls.LAYOUT.unpack(data, offset, what))


def _dataclass(value: object) -> Any:
    assert dataclasses.is_dataclass(value)
    return value


_CONVERTERS: dict[type, dict[str, Callable[[Any], Any] | None]] = {}


def _converters(cls: type) -> Mapping[str, Callable[[Any], Any] | None]:
    """Each dataclass field of `cls` and how an unpacked value becomes the field's type
    (an `enum.IntFlag`, or a nested `Packed` record from its dict), None when it is
    used as unpacked (cached per class)."""
    found = _CONVERTERS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        found = {}
        for f in dataclasses.fields(cls):
            hint = hints.get(f.name)
            convert: Callable[[Any], Any] | None = None
            if isinstance(hint, type) and issubclass(hint, Packed):
                convert = hint.from_values
            elif isinstance(hint, type) and issubclass(hint, enum.IntFlag):
                convert = hint
            found[f.name] = convert
        _CONVERTERS[cls] = found
    return found


def packed_types() -> list[type[Packed]]:
    """Every `Packed` record type defined so far, as its module names it (for the tests
    that prove each one's field table round-trips and covers its dataclass). A
    `slots=True` dataclass replaces its class; the replaced one is skipped."""
    out: list[type[Packed]] = []
    pending = list(Packed.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if getattr(sys.modules.get(cls.__module__), cls.__name__, None) is cls:
            out.append(cls)
    return out
