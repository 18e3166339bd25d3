"""Read our ACPI tables back: headers and checksums, SRAT, MCFG, the devices and
`_CRS` resources of a DSDT/SSDT, and the platform tables (MADT, SLIT, CEDT, IVRS,
DMAR, IORT, GTDT, PPTT), read with the encoder's record declarations where it has
them, so the two cannot drift apart.

The AML reader understands exactly the subset `aml.py` produces (names, devices,
scopes, methods, data objects) and rejects anything else with a one-line error, so
a corrupted table can never be mistaken for a valid one or crash the inspector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vmlayout.acpi.cxl import CFMWS, CHBS
from vmlayout.acpi.iommu import (
    DEVICE_SCOPE_IOAPIC,
    DMAR_DRHD,
    IORT_BODY,
    IORT_ID_MAPPING,
    IORT_NODE,
    IORT_ROOT_COMPLEX,
    IORT_ROOT_COMPLEX_TYPE,
    IORT_SMMUV3,
    IORT_SMMUV3_TYPE,
)
from vmlayout.acpi.tables import (
    GTDT_BODY,
    HEADER,
    MADT_GIC_ITS,
    MADT_GIC_MSI_FRAME,
    MADT_GICC,
    MADT_GICD,
    MCFG_ENTRY,
    PPTT_PROCESSOR,
    RSDP,
    SRAT_MEMORY,
    checksum,
)
from vmlayout.binfmt import Struct
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


def _records(
    body: bytes, offset: int, what: str, length_at: int = 1, width: int = 1
) -> list[tuple[int, int]]:
    """(offset, length) of each record from `offset` to the end of `body`, its length
    the `width`-byte field at `length_at`: MADT, SRAT, PPTT 1 byte at 1 (the default);
    CEDT, IVRS, DMAR 2 bytes at 2; IORT 2 bytes at 1."""
    header = length_at + width
    out = []
    while offset < len(body):
        if offset + header > len(body):
            raise _bad(what, f"record header at {offset + 36:#x} is truncated")
        length = int.from_bytes(body[offset + length_at : offset + header], "little")
        if length < header or offset + length > len(body):
            raise _bad(what, f"record at {offset + 36:#x} has bad length {length}")
        out.append((offset, length))
        offset += length
    return out


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
    memory: list[SratMemory] = []
    others: list[tuple[int, int]] = []
    for offset, length in _records(body, 12, "SRAT"):
        kind = body[offset]
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
            elif op == 0x14:
                pkg_end, inner = self.pkglength(offset + 1)
                name, after = self.name(inner)
                device.names[name] = ("method", self.byte(after) & 7)
                offset = pkg_end
            elif op in (0xA0, 0xA1):
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
                fields = {"min": u(body + 5, 2), "max": u(body + 7, 2), "length": u(body + 11, 2)}
                out.append(Descriptor("bus", fields))
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


# --- the platform tables (MADT, SLIT, CEDT, IVRS, DMAR, IORT, GTDT, PPTT) ---------------


def _expect(table: Table, signature: str) -> None:
    if table.signature != signature:
        raise _bad(signature, f"signature is {table.signature!r}")


def _u(body: bytes, offset: int, size: int) -> int:
    return int.from_bytes(body[offset : offset + size], "little")


MADT_KINDS = {
    0x0: "local_apic",
    0x1: "io_apic",
    0x2: "interrupt_override",
    0x4: "local_apic_nmi",
    0x9: "local_x2apic",
    0xB: "gicc",
    0xC: "gicd",
    0xD: "gic_msi_frame",
    0xF: "gic_its",
}

#: The GIC entries, read with the encoder's declarations: (record, {output key: field}).
MADT_GIC_FIELDS: dict[int, tuple[Struct, dict[str, str]]] = {
    0xB: (MADT_GICC, {"uid": "uid", "flags": "flags", "gicr_base": "gicr_base", "mpidr": "mpidr"}),
    0xC: (MADT_GICD, {"base": "base", "version": "gic_version"}),
    0xD: (MADT_GIC_MSI_FRAME, {"base": "base", "spi_count": "spi_count", "spi_base": "spi_base"}),
    0xF: (MADT_GIC_ITS, {"id": "its_id", "base": "base"}),
}
#: The shortest entry of each type that holds the fields `decode_madt` reads.
MADT_MIN_LENGTH = {
    0x0: 8,
    0x1: 12,
    0x2: 10,
    0x4: 6,
    0x9: 16,
    **{kind: record.size for kind, (record, _) in MADT_GIC_FIELDS.items()},
}


def decode_madt(table: Table) -> list[dict[str, Any]]:
    """Every MADT entry with its identifying fields (processor UIDs, APIC ids, GIC
    bases); unknown entry types are listed by number."""
    _expect(table, "APIC")
    body = table.body
    if len(body) < 8:
        raise _bad("APIC", "body shorter than the local interrupt controller header")
    out: list[dict[str, Any]] = []
    for offset, length in _records(body, 8, "APIC"):
        kind = body[offset]
        e: dict[str, Any] = {"type": MADT_KINDS.get(kind, kind)}
        if length < MADT_MIN_LENGTH.get(kind, 2):
            raise _bad("APIC", f"entry at {offset + 36:#x} is too short for its type")
        if kind == 0x0:
            e |= {
                "uid": body[offset + 2],
                "apic_id": body[offset + 3],
                "flags": _u(body, offset + 4, 4),
            }
        elif kind == 0x1:
            e |= {
                "id": body[offset + 2],
                "base": _u(body, offset + 4, 4),
                "gsi_base": _u(body, offset + 8, 4),
            }
        elif kind == 0x2:
            e |= {
                "source": body[offset + 3],
                "gsi": _u(body, offset + 4, 4),
                "flags": _u(body, offset + 8, 2),
            }
        elif kind == 0x9:
            e |= {
                "apic_id": _u(body, offset + 4, 4),
                "flags": _u(body, offset + 8, 4),
                "uid": _u(body, offset + 12, 4),
            }
        elif kind in MADT_GIC_FIELDS:
            record, keys = MADT_GIC_FIELDS[kind]
            values = record.unpack(body, offset)
            e |= {key: values[name] for key, name in keys.items()}
        out.append(e)
    return out


def decode_slit(table: Table) -> list[list[int]]:
    """The distance matrix, row = from node."""
    _expect(table, "SLIT")
    body = table.body
    if len(body) < 8:
        raise _bad("SLIT", "no locality count")
    n = _u(body, 0, 8)
    if len(body) != 8 + n * n:
        raise _bad("SLIT", f"{n} localities need {n * n} distance bytes, {len(body) - 8} present")
    return [list(body[8 + i * n : 8 + (i + 1) * n]) for i in range(n)]


@dataclass(frozen=True, slots=True)
class CxlWindows:
    uid: int
    chbcr: MemoryRange | None = None
    hdm: MemoryRange | None = None


def _range(start: int, size: int, what: str) -> MemoryRange:
    try:
        if size == 0:
            raise ValueError("empty")
        return MemoryRange(start, start + size)
    except ValueError:
        raise _bad(what, f"impossible range {start:#x}+{size:#x}") from None


def _base(value: int, what: str) -> int:
    """A register window base: the layout places every one page aligned."""
    if value % PAGE_SIZE:
        raise _bad(what, f"register base {value:#x} is not page aligned")
    return value


def decode_cedt(table: Table) -> list[CxlWindows]:
    """Per host bridge UID, its CHBCR (from CHBS) and fixed memory window (from the
    CFMWS whose target list names it), in UID order of first appearance."""
    _expect(table, "CEDT")
    body = table.body
    by_uid: dict[int, CxlWindows] = {}
    for offset, length in _records(body, 0, "CEDT", 2, 2):
        kind = body[offset]
        if kind == 0:
            if length < CHBS.size:
                raise _bad("CEDT", f"CHBS at {offset + 36:#x} is too short")
            chbs = CHBS.unpack(body, offset)
            uid = chbs["uid"]
            old = by_uid.get(uid, CxlWindows(uid))
            chbcr = _range(chbs["base"], chbs["size"], "CEDT CHBS")
            by_uid[uid] = CxlWindows(uid, chbcr, old.hdm)
        elif kind == 1:
            if length < CFMWS.size + 4:
                raise _bad("CEDT", f"CFMWS at {offset + 36:#x} is too short")
            cfmws = CFMWS.unpack(body, offset)
            hdm = _range(cfmws["base"], cfmws["size"], "CEDT CFMWS")
            ways = 1 << cfmws["eniw"] if cfmws["eniw"] < 8 else 0
            if length < CFMWS.size + 4 * ways or ways != 1:
                raise _bad("CEDT", f"CFMWS at {offset + 36:#x}: only 1-way windows are decoded")
            uid = _u(body, offset + CFMWS.size, 4)
            old = by_uid.get(uid, CxlWindows(uid))
            by_uid[uid] = CxlWindows(uid, old.chbcr, hdm)
    return list(by_uid.values())


@dataclass(frozen=True, slots=True)
class IommuEntry:
    """An IOMMU as the IVRS or DMAR describes it (the IORT's are `IortNode`s): register
    base, PCI segment, the buses (IVRS only), whether it remaps the IO-APIC."""

    base: int
    segment: int
    buses: tuple[int, int] | None = None
    ioapic: bool = False


def decode_ivrs(table: Table) -> tuple[dict[str, int], list[IommuEntry]]:
    """(IVinfo fields, one entry per IVHD of type 10h/11h/40h)."""
    _expect(table, "IVRS")
    body = table.body
    if len(body) < 12:
        raise _bad("IVRS", "no IVinfo")
    info = _u(body, 0, 4)
    fields = {"efr_sup": info & 1, "pa_size": (info >> 8) & 0x7F, "va_size": (info >> 15) & 0x7F}
    units = []
    for offset, length in _records(body, 12, "IVRS", 2, 2):
        kind = body[offset]
        if kind not in (0x10, 0x11, 0x40):
            continue
        header = 24 if kind == 0x10 else 40
        if length < header:
            raise _bad("IVRS", f"IVHD at {offset + 48:#x} is too short")
        start = end = None
        ioapic = False
        pos = offset + header
        while pos < offset + length:
            entry = body[pos]
            size = 4 if entry < 0x40 else 8 if entry < 0x80 else 0
            if size == 0 or pos + size > offset + length:
                raise _bad("IVRS", f"device entry {entry:#04x} at {pos + 36:#x} is not decoded")
            if entry == 0x03:
                start = _u(body, pos + 1, 2) >> 8
            elif entry == 0x04:
                end = _u(body, pos + 1, 2) >> 8
            elif entry == 0x48 and body[pos + 7] == 1:
                ioapic = True
            pos += size
        buses = (start, end) if start is not None and end is not None else None
        base, segment = _base(_u(body, offset + 8, 8), "IVRS"), _u(body, offset + 16, 2)
        units.append(IommuEntry(base, segment, buses, ioapic=ioapic))
    return fields, units


def decode_dmar(table: Table) -> tuple[int, list[IommuEntry]]:
    """(host address width in bits, one entry per DRHD)."""
    _expect(table, "DMAR")
    body = table.body
    if len(body) < 12:
        raise _bad("DMAR", "no host address width")
    units = []
    for offset, length in _records(body, 12, "DMAR", 2, 2):
        if _u(body, offset, 2) != 0:
            continue
        if length < DMAR_DRHD.size:
            raise _bad("DMAR", f"DRHD at {offset + 36:#x} is too short")
        drhd = DMAR_DRHD.unpack(body, offset)
        ioapic = False
        pos = offset + DMAR_DRHD.size
        while pos < offset + length:
            if pos + 2 > offset + length or body[pos + 1] < 6:  # a scope header without its path
                raise _bad("DMAR", f"device scope at {pos + 36:#x} is truncated")
            ioapic |= body[pos] == DEVICE_SCOPE_IOAPIC
            pos += body[pos + 1]
        base = _base(drhd["base"], "DMAR")
        units.append(IommuEntry(base, drhd["segment"], ioapic=ioapic))
    return body[0] + 1, units


@dataclass(frozen=True, slots=True)
class IortNode:
    kind: str  # "its_group", "root_complex", "smmuv3" or the type number
    offset: int
    identifier: int
    #: (input base, id count, output base, output node offset, flags) per ID mapping.
    mappings: tuple[tuple[int, int, int, int, int], ...]
    segment: int | None = None
    base: int | None = None
    gsivs: tuple[int, int] | None = None  # SMMUv3 (event, global error)


def decode_iort(table: Table) -> list[IortNode]:
    _expect(table, "IORT")
    body = table.body
    if len(body) < 12:
        raise _bad("IORT", "no node count")
    header = IORT_BODY.unpack(body)
    count, first = header["node_count"], header["node_offset"] - 36
    if not IORT_BODY.size <= first <= len(body):
        raise _bad("IORT", f"node offset {first + 36:#x} is outside the table")
    nodes = []
    for offset, length in _records(body, first, "IORT", 1, 2):
        if length < IORT_NODE.size:
            raise _bad("IORT", f"node at {offset + 36:#x} is too short")
        node = IORT_NODE.unpack(body, offset)
        kind, mapping_count = node["type"], node["mapping_count"]
        step = IORT_ID_MAPPING.size
        if mapping_count and node["mapping_offset"] + step * mapping_count > length:
            raise _bad("IORT", f"node at {offset + 36:#x}: ID mappings run past the node")
        mappings = tuple(
            tuple(IORT_ID_MAPPING.unpack(body, offset + node["mapping_offset"] + step * i).values())
            for i in range(mapping_count)
        )
        segment = base = gsivs = None
        if kind == IORT_ROOT_COMPLEX_TYPE and length >= IORT_NODE.size + IORT_ROOT_COMPLEX.size:
            segment = IORT_ROOT_COMPLEX.unpack(body, offset + IORT_NODE.size)["segment"]
        elif kind == IORT_SMMUV3_TYPE and length >= IORT_NODE.size + IORT_SMMUV3.size:
            smmu = IORT_SMMUV3.unpack(body, offset + IORT_NODE.size)
            base = _base(smmu["base"], "IORT")
            gsivs = (smmu["event_gsiv"], smmu["gerr_gsiv"])
        nodes.append(
            IortNode(
                {0: "its_group", 2: "root_complex", 4: "smmuv3"}.get(kind, str(kind)),
                offset + 36,
                node["identifier"],
                mappings,
                segment,
                base,
                gsivs,
            )
        )
    if len(nodes) != count:
        raise _bad("IORT", f"header counts {count} nodes, {len(nodes)} present")
    return nodes


def decode_gtdt(table: Table) -> dict[str, int]:
    _expect(table, "GTDT")
    if len(table.body) < GTDT_BODY.size:
        raise _bad("GTDT", f"body shorter than {GTDT_BODY.size} bytes")
    return GTDT_BODY.unpack(table.body)


def decode_pptt(table: Table) -> list[dict[str, int]]:
    """Processor nodes (offset, flags, parent offset, ACPI processor id); caches are
    counted as processor private resources only."""
    _expect(table, "PPTT")
    body = table.body
    out = []
    for offset, length in _records(body, 0, "PPTT"):
        if body[offset] != 0:
            continue
        if length < PPTT_PROCESSOR.size:
            raise _bad("PPTT", f"processor node at {offset + 36:#x} is too short")
        node = PPTT_PROCESSOR.unpack(body, offset)
        out.append(
            {
                "offset": offset + 36,
                "flags": node["flags"],
                "parent": node["parent"],
                "acpi_processor_id": node["acpi_processor_id"],
            }
        )
    return out


def register_window(base: int, size: int, what: str) -> MemoryRange:
    """An IOMMU's register window from the base a table gives and the size its kind has."""
    return _range(base, size, what)


def decode_srat_processors(table: Table, enabled_only: bool = False) -> list[tuple[int, int]]:
    """(APIC id, x2APIC id or GICC ACPI UID; vnode) of every processor affinity entry
    (with `enabled_only`, of those whose Enabled flag is set: the ones an OS uses)."""
    _expect(table, "SRAT")
    body = table.body
    out = []
    # type -> (minimum length, id (offset, width), vnode (offset, width), flags offset)
    layouts = {0: (16, (3, 1), None, 4), 2: (24, (8, 4), (4, 4), 12), 3: (18, (6, 4), (2, 4), 10)}
    for offset, length in _records(body, 12, "SRAT"):
        layout = layouts.get(body[offset])
        if layout is None or length < layout[0]:
            continue
        _, (id_at, id_width), vnode_field, flags_at = layout
        if enabled_only and not _u(body, offset + flags_at, 4) & 1:
            continue
        if vnode_field is None:  # Local APIC: proximity domain split 7:0 and 31:8
            vnode = body[offset + 2] | _u(body, offset + 9, 3) << 8
        else:
            vnode = _u(body, offset + vnode_field[0], vnode_field[1])
        out.append((_u(body, offset + id_at, id_width), vnode))
    return out
