"""Binary structures declared as data: one field table per structure, with the single
`pack` and the single `unpack` built from it, so an encoder and its decoder cannot
drift apart. Everything firmware-facing here is little-endian without padding."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from vmlayout.errors import VmLayoutError


@dataclass(frozen=True, slots=True)
class Struct:
    """A named, fixed-size little-endian record: `fields` are (name, struct format)."""

    name: str
    fields: tuple[tuple[str, str], ...]
    _codec: struct.Struct = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fmt = "<" + "".join(f for _, f in self.fields)
        object.__setattr__(self, "_codec", struct.Struct(fmt))

    @property
    def size(self) -> int:
        return self._codec.size

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.fields)

    def pack(self, **values: Any) -> bytes:
        missing = [n for n in self.names if n not in values]
        extra = [n for n in values if n not in self.names]
        if missing or extra:
            raise TypeError(f"{self.name}: missing {missing} / unexpected {extra}")
        try:
            return self._codec.pack(*(values[n] for n in self.names))
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
        values = self._codec.unpack_from(data, offset)
        return dict(zip(self.names, values, strict=True))
