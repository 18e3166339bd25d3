"""Read our ACPI tables back: headers and checksums, SRAT, MCFG, and the devices and
`_CRS` resources of a DSDT/SSDT.

The AML reader understands exactly the subset `aml.py` produces (names, devices,
scopes, methods, data objects) and rejects anything else with a one-line error, so
a corrupted table can never be mistaken for a valid one or crash the inspector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vmlayout.acpi.tables import HEADER, MCFG_ENTRY, RSDP, SRAT_MEMORY, checksum
from vmlayout.errors import VmLayoutError
from vmlayout.ranges import PAGE_SIZE, MemoryRange


def _bad(what: str, reason: str) -> VmLayoutError:
    return VmLayoutError("invalid_acpi", f"{what}: {reason}")


@dataclass(frozen=True, slots=True)
class Table:
    signature: str
    header: dict[str, Any]
    body: bytes
    checksum_ok: bool


def decode_table(data: bytes, what: str = "table") -> Table:
    if len(data) < HEADER.size:
        raise _bad(what, f"{len(data)} bytes is shorter than the 36-byte header")
    header = HEADER.unpack(data)
    if header["length"] != len(data):
        raise _bad(what, f"header length {header['length']} but {len(data)} bytes present")
    try:
        signature = header["signature"].decode("ascii")
    except UnicodeDecodeError:
        raise _bad(what, "signature is not ASCII") from None
    return Table(signature, header, data[HEADER.size :], checksum(data) == 0)


def require_checksum(table: Table, what: str) -> None:
    if not table.checksum_ok:
        raise _bad(what, "checksum does not sum to zero")


def decode_rsdp(data: bytes) -> dict[str, Any]:
    if len(data) != RSDP.size:
        raise _bad("RSDP", f"{len(data)} bytes, expected {RSDP.size}")
    fields = RSDP.unpack(data)
    if fields["signature"] != b"RSD PTR ":
        raise _bad("RSDP", "signature is not 'RSD PTR '")
    fields["checksum_ok"] = checksum(data[:20]) == 0 and checksum(data) == 0
    return fields


@dataclass(frozen=True, slots=True)
class SratMemory:
    range: MemoryRange
    vnode: int
    flags: int


def decode_srat(table: Table) -> tuple[list[SratMemory], list[tuple[int, int]]]:
    """(memory affinity entries, (type, length) of the other entries)."""
    if table.signature != "SRAT":
        raise _bad("SRAT", f"signature is {table.signature!r}")
    body = table.body
    offset = 12
    memory: list[SratMemory] = []
    others: list[tuple[int, int]] = []
    while offset < len(body):
        if offset + 2 > len(body):
            raise _bad("SRAT", f"entry header at {offset + 36:#x} is truncated")
        kind, length = body[offset], body[offset + 1]
        if length < 2 or offset + length > len(body):
            raise _bad("SRAT", f"entry at {offset + 36:#x} has bad length {length}")
        if kind == 1:
            if length != SRAT_MEMORY.size:
                raise _bad("SRAT", f"memory entry at {offset + 36:#x} has length {length}")
            e = SRAT_MEMORY.unpack(body, offset)
            start, end = e["base"], e["base"] + e["size"]
            if start % PAGE_SIZE or end % PAGE_SIZE or end >= 1 << 64:
                raise _bad("SRAT", f"memory entry at {offset + 36:#x} is not page aligned")
            memory.append(SratMemory(MemoryRange(start, end), e["proximity_domain"], e["flags"]))
        else:
            others.append((kind, length))
        offset += length
    return memory, others


@dataclass(frozen=True, slots=True)
class McfgEntry:
    base: int
    segment: int
    start_bus: int
    end_bus: int

    @property
    def ecam(self) -> MemoryRange:
        """The ECAM bytes of the listed buses (the bus-0 base rule undone)."""
        start = self.base + (self.start_bus << 20)
        end = self.base + ((self.end_bus + 1) << 20)
        if end >= 1 << 64 or self.end_bus < self.start_bus or self.base % PAGE_SIZE:
            raise _bad("MCFG", f"entry for segment {self.segment} has an impossible range")
        return MemoryRange(start, end)


def decode_mcfg(table: Table) -> list[McfgEntry]:
    if table.signature != "MCFG":
        raise _bad("MCFG", f"signature is {table.signature!r}")
    body = table.body
    if len(body) < 8 or (len(body) - 8) % MCFG_ENTRY.size:
        raise _bad("MCFG", f"body of {len(body)} bytes is not 8 + 16·n")
    entries = []
    for offset in range(8, len(body), MCFG_ENTRY.size):
        e = MCFG_ENTRY.unpack(body, offset)
        entries.append(McfgEntry(e["base"], e["segment"], e["start_bus"], e["end_bus"]))
    return entries


# --- AML -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Descriptor:
    kind: str  # "qword_memory", "dword_memory", "memory32_fixed", "io", "interrupt", "bus"
    fields: dict[str, int]

    @property
    def memory(self) -> MemoryRange | None:
        if self.kind in ("qword_memory", "dword_memory", "memory32_fixed"):
            start, length = self.fields["min"], self.fields["length"]
            if start % PAGE_SIZE or length % PAGE_SIZE:
                return None
            return MemoryRange(start, start + length)
        return None


@dataclass(slots=True)
class AmlDevice:
    path: str
    names: dict[str, Any] = field(default_factory=dict)


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.what = what

    def fail(self, offset: int, reason: str) -> VmLayoutError:
        return _bad(self.what, f"AML offset {offset + 36:#x}: {reason}")

    def byte(self, offset: int) -> int:
        if offset >= len(self.data):
            raise self.fail(offset, "truncated")
        return self.data[offset]

    def pkglength(self, offset: int) -> tuple[int, int]:
        """(end offset of the package, offset after the PkgLength)."""
        lead = self.byte(offset)
        count = lead >> 6
        if count == 0:
            total = lead & 0x3F
        else:
            if lead & 0x30:
                raise self.fail(offset, "PkgLength reserved bits set")
            total = lead & 0x0F
            for i in range(count):
                total |= self.byte(offset + 1 + i) << (4 + 8 * i)
        end = offset + total
        if total < count + 1 or end > len(self.data):
            raise self.fail(offset, f"package length {total} runs past the table")
        return end, offset + 1 + count

    def name(self, offset: int) -> tuple[str, int]:
        prefix = ""
        while self.byte(offset) in (0x5C, 0x5E):
            prefix += "\\" if self.data[offset] == 0x5C else "^"
            offset += 1
        lead = self.byte(offset)
        if lead == 0x2E:
            count, offset = 2, offset + 1
        elif lead == 0x2F:
            count, offset = self.byte(offset + 1), offset + 2
        elif lead == 0x00:
            return prefix, offset + 1
        else:
            count = 1
        segments = []
        for _ in range(count):
            raw = self.data[offset : offset + 4]
            if len(raw) < 4 or not all(c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_" for c in raw):
                raise self.fail(offset, "invalid name segment")
            segments.append(raw.decode("ascii").rstrip("_") or "_")
            offset += 4
        return prefix + ".".join(segments), offset

    def data_object(self, offset: int) -> tuple[Any, int]:
        op = self.byte(offset)
        if op in (0x00, 0x01, 0xFF):
            return {0x00: 0, 0x01: 1, 0xFF: (1 << 64) - 1}[op], offset + 1
        sizes = {0x0A: 1, 0x0B: 2, 0x0C: 4, 0x0E: 8}
        if op in sizes:
            end = offset + 1 + sizes[op]
            if end > len(self.data):
                raise self.fail(offset, "truncated integer")
            return int.from_bytes(self.data[offset + 1 : end], "little"), end
        if op == 0x0D:
            end = self.data.find(b"\x00", offset + 1)
            if end < 0:
                raise self.fail(offset, "unterminated string")
            return self.data[offset + 1 : end].decode("latin-1"), end + 1
        if op == 0x11:
            end, inner = self.pkglength(offset + 1)
            size, start = self.data_object(inner)
            if not isinstance(size, int) or start + size > end:
                raise self.fail(offset, "buffer size exceeds its package")
            return bytes(self.data[start : start + size]), end
        if op == 0x12:
            end, inner = self.pkglength(offset + 1)
            return ("package", bytes(self.data[inner:end])), end
        raise self.fail(offset, f"unsupported data object opcode {op:#04x}")

    def terms(self, offset: int, end: int, scope: str, devices: list[AmlDevice]) -> None:
        current: AmlDevice | None = None
        while offset < end:
            op = self.byte(offset)
            if op == 0x08:
                path, after = self.name(offset + 1)
                value, offset = self.data_object(after)
                owner = current if current is not None else None
                if owner is not None:
                    owner.names[path] = value
            elif op == 0x5B and self.byte(offset + 1) == 0x82:
                pkg_end, inner = self.pkglength(offset + 2)
                path, body = self.name(inner)
                device = AmlDevice(_join(scope, path))
                devices.append(device)
                self._device_terms(body, pkg_end, device, devices)
                offset = pkg_end
            elif op == 0x10:
                pkg_end, inner = self.pkglength(offset + 1)
                path, body = self.name(inner)
                self.terms(body, pkg_end, _join(scope, path), devices)
                offset = pkg_end
            elif op in (0x14, 0xA0, 0xA1):
                offset, _ = self.pkglength(offset + 1)
            else:
                raise self.fail(offset, f"unsupported opcode {op:#04x}")
        if offset != end:
            raise self.fail(offset, "object runs past its package")

    def _device_terms(
        self, offset: int, end: int, device: AmlDevice, devices: list[AmlDevice]
    ) -> None:
        while offset < end:
            op = self.byte(offset)
            if op == 0x08:
                path, after = self.name(offset + 1)
                value, offset = self.data_object(after)
                device.names[path] = value
            elif op == 0x5B and self.byte(offset + 1) == 0x82:
                pkg_end, inner = self.pkglength(offset + 2)
                path, body = self.name(inner)
                child = AmlDevice(_join(device.path, path))
                devices.append(child)
                self._device_terms(body, pkg_end, child, devices)
                offset = pkg_end
            elif op in (0x14, 0xA0, 0xA1):
                offset, _ = self.pkglength(offset + 1)
            else:
                raise self.fail(offset, f"unsupported opcode {op:#04x} in {device.path}")
        if offset != end:
            raise self.fail(offset, f"{device.path} runs past its package")


def _join(scope: str, path: str) -> str:
    if path.startswith("\\"):
        return path
    base = scope.rstrip(".")
    if base == "\\":
        return "\\" + path
    return f"{base}.{path}"


def decode_definition_block(table: Table) -> list[AmlDevice]:
    """Every device of a DSDT/SSDT with its named values, in table order."""
    if table.signature not in ("DSDT", "SSDT"):
        raise _bad(table.signature, "not a definition block")
    reader = _Reader(table.body, table.signature)
    devices: list[AmlDevice] = []
    reader.terms(0, len(table.body), "\\", devices)
    return devices


def decode_resources(buffer: bytes, what: str) -> list[Descriptor]:
    """Resource descriptors of a `_CRS` buffer, up to and including the End Tag."""
    out: list[Descriptor] = []
    offset = 0

    def u(start: int, size: int) -> int:
        return int.from_bytes(buffer[start : start + size], "little")

    while offset < len(buffer):
        tag = buffer[offset]
        if tag & 0x80:
            if offset + 3 > len(buffer):
                raise _bad(what, f"_CRS descriptor at {offset} is truncated")
            length = u(offset + 1, 2)
            body = offset + 3
            end = body + length
            if end > len(buffer):
                raise _bad(what, f"_CRS descriptor at {offset} runs past the buffer")
            if tag == 0x8A and length == 43:
                out.append(
                    Descriptor(
                        "qword_memory" if buffer[body] == 0 else "qword_other",
                        {"min": u(body + 11, 8), "max": u(body + 19, 8), "length": u(body + 35, 8)},
                    )
                )
            elif tag == 0x87 and length == 23:
                out.append(
                    Descriptor(
                        "dword_memory",
                        {"min": u(body + 7, 4), "max": u(body + 11, 4), "length": u(body + 19, 4)},
                    )
                )
            elif tag == 0x86 and length == 9:
                out.append(
                    Descriptor("memory32_fixed", {"min": u(body + 1, 4), "length": u(body + 5, 4)})
                )
            elif tag == 0x88 and length == 13:
                out.append(Descriptor("bus", {"min": u(body + 5, 2), "length": u(body + 11, 2)}))
            elif tag == 0x89:
                out.append(Descriptor("interrupt", {"number": u(body + 2, 4)}))
            else:
                raise _bad(what, f"_CRS descriptor {tag:#04x} of length {length} is not ours")
            offset = end
        else:
            kind, length = (tag >> 3) & 0xF, tag & 7
            if offset + 1 + length > len(buffer):
                raise _bad(what, f"_CRS descriptor at {offset} runs past the buffer")
            if kind == 0xF:
                if offset + 2 != len(buffer):
                    raise _bad(what, "_CRS has bytes after the End Tag")
                return out
            if kind == 0x8 and length == 7:
                out.append(
                    Descriptor("io", {"min": u(offset + 2, 2), "length": buffer[offset + 7]})
                )
            else:
                raise _bad(what, f"_CRS small descriptor {tag:#04x} is not ours")
            offset += 1 + length
    raise _bad(what, "_CRS has no End Tag")


def device_memory(device: AmlDevice, what: str) -> tuple[MemoryRange, ...]:
    """The memory ranges of a device's `_CRS`."""
    crs = device.names.get("_CRS")
    if not isinstance(crs, bytes):
        raise _bad(what, f"{device.path} has no _CRS buffer")
    ranges = []
    for d in decode_resources(crs, what):
        if d.kind in ("qword_memory", "dword_memory", "memory32_fixed"):
            r = d.memory
            if r is None or d.fields.get("max", r.end - 1) != r.end - 1:
                raise _bad(what, f"{device.path}: inconsistent memory descriptor")
            ranges.append(r)
    return tuple(ranges)


def chipset_from_dsdt(data: bytes) -> tuple[str, tuple[MemoryRange, ...]]:
    """(device path, memory ranges) of the DSDT's chipset MMIO device (VMOD or PCI0)."""
    table = decode_table(data, "DSDT")
    require_checksum(table, "DSDT")
    devices = {d.path: d for d in decode_definition_block(table)}
    for path in ("\\_SB.PCI0", "\\_SB.VMOD"):
        if path in devices:
            return path, device_memory(devices[path], "DSDT")
    raise _bad("DSDT", "no \\_SB.VMOD or \\_SB.PCI0 device")
