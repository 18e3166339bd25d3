"""Read our ACPI tables back. The table decoders live with their encoders, one module
per table family (`madt`, `srat`, `iommu`, …), and are gathered here so a reader has
one import; this module itself holds the AML reader of a DSDT/SSDT's devices.

The AML reader understands exactly the subset `aml.py` produces (names, devices,
scopes, methods, data objects) and rejects anything else with a one-line error, so
a corrupted table can never be mistaken for a valid one or crash the inspector. It
walks the object tree with an explicit stack (no recursion), and objects may nest at
most `AML_MAX_DEPTH` deep and number at most `AML_MAX_OBJECTS`: beyond either the
table is refused, so work and memory stay linear in what vmlayout itself writes,
however the objects nest or repeat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vmlayout.acpi.cxl import CxlWindows, decode_cedt
from vmlayout.acpi.fadt import decode_fadt
from vmlayout.acpi.gtdt import decode_gtdt
from vmlayout.acpi.iommu import (
    IommuEntry,
    IortNode,
    decode_dmar,
    decode_iort,
    decode_ivrs,
    register_window,
)
from vmlayout.acpi.madt import decode_madt
from vmlayout.acpi.mcfg import McfgEntry, decode_mcfg
from vmlayout.acpi.pptt import decode_pptt
from vmlayout.acpi.resources import MemoryDescriptor, ResourceDescriptor, decode_resources
from vmlayout.acpi.rsdp import decode_rsdp, decode_xsdt
from vmlayout.acpi.sdt import HEADER, Table, bad, decode_table, require_checksum
from vmlayout.acpi.slit import decode_slit
from vmlayout.acpi.srat import SratMemory, decode_srat, decode_srat_processors
from vmlayout.errors import VmLayoutError
from vmlayout.ranges import MemoryRange

__all__ = [
    "AML_MAX_DEPTH",
    "AML_MAX_OBJECTS",
    "AmlDevice",
    "CxlWindows",
    "IommuEntry",
    "IortNode",
    "McfgEntry",
    "MemoryDescriptor",
    "ResourceDescriptor",
    "SratMemory",
    "Table",
    "chipset_from_dsdt",
    "chipset_of_devices",
    "decode_cedt",
    "decode_definition_block",
    "decode_dmar",
    "decode_fadt",
    "decode_gtdt",
    "decode_iort",
    "decode_ivrs",
    "decode_madt",
    "decode_mcfg",
    "decode_pptt",
    "decode_resources",
    "decode_rsdp",
    "decode_slit",
    "decode_srat",
    "decode_srat_processors",
    "decode_table",
    "decode_xsdt",
    "device_memory",
    "register_window",
    "require_checksum",
]

#: How deep Scope and Device objects may nest (Method, If and Else bodies are skipped,
#: not walked): vmlayout writes at
#: most 3 levels and real firmware rarely passes 10, so this bounds the work (paths
#: grow with depth) without refusing any real table.
AML_MAX_DEPTH = 125
#: How many devices and named values (together) a definition block may hold: vmlayout
#: writes at most ~5,100 devices (4,096 processors, 1,000 virtio slots) with a few
#: names each; the cap keeps memory proportional to it, not to a 64 MiB input.
AML_MAX_OBJECTS = 1 << 17

# AML opcodes of the subset read here (ACPI 6.x §20).
NAME_OP, SCOPE_OP, METHOD_OP, IF_OP, ELSE_OP = 0x08, 0x10, 0x14, 0xA0, 0xA1
EXT_OP_PREFIX, DEVICE_OP = 0x5B, 0x82
ROOT_CHAR, PARENT_PREFIX, DUAL_NAME_PREFIX, MULTI_NAME_PREFIX = 0x5C, 0x5E, 0x2E, 0x2F
ZERO_OP, ONE_OP, ONES_OP = 0x00, 0x01, 0xFF
INTEGER_PREFIXES = {0x0A: 1, 0x0B: 2, 0x0C: 4, 0x0E: 8}
STRING_PREFIX, BUFFER_OP, PACKAGE_OP = 0x0D, 0x11, 0x12
METHOD_ARG_COUNT_MASK = 0x07
NAME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@dataclass(slots=True)
class AmlDevice:
    path: str
    names: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Frame:
    """An open Scope (`device` None: names in it are not recorded) or Device."""

    end: int
    scope: str
    device: AmlDevice | None


class _Reader:
    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.what = what

    def fail(self, offset: int, reason: str) -> VmLayoutError:
        return bad(self.what, f"AML offset {offset + HEADER.size:#x}: {reason}")

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
        while self.byte(offset) in (ROOT_CHAR, PARENT_PREFIX):
            prefix += "\\" if self.data[offset] == ROOT_CHAR else "^"
            offset += 1
        lead = self.byte(offset)
        if lead == DUAL_NAME_PREFIX:
            count, offset = 2, offset + 1
        elif lead == MULTI_NAME_PREFIX:
            count, offset = self.byte(offset + 1), offset + 2
        elif lead == 0x00:
            return prefix, offset + 1
        else:
            count = 1
        segments = []
        for _ in range(count):
            raw = self.data[offset : offset + 4]
            if len(raw) < 4 or not all(c in NAME_CHARS for c in raw):
                raise self.fail(offset, "invalid name segment")
            segments.append(raw.decode("ascii").rstrip("_") or "_")
            offset += 4
        return prefix + ".".join(segments), offset

    def integer(self, offset: int) -> tuple[int, int] | None:
        """A constant integer object (Zero, One, Ones, Byte…QWord), or None."""
        op = self.byte(offset)
        if op in (ZERO_OP, ONE_OP, ONES_OP):
            return {ZERO_OP: 0, ONE_OP: 1, ONES_OP: (1 << 64) - 1}[op], offset + 1
        size = INTEGER_PREFIXES.get(op)
        if size is None:
            return None
        end = offset + 1 + size
        if end > len(self.data):
            raise self.fail(offset, "truncated integer")
        return int.from_bytes(self.data[offset + 1 : end], "little"), end

    def data_object(self, offset: int) -> tuple[Any, int]:
        number = self.integer(offset)
        if number is not None:
            return number
        op = self.data[offset]
        if op == STRING_PREFIX:
            end = self.data.find(b"\x00", offset + 1)
            if end < 0:
                raise self.fail(offset, "unterminated string")
            return self.data[offset + 1 : end].decode("latin-1"), end + 1
        if op == BUFFER_OP:
            end, inner = self.pkglength(offset + 1)
            size = self.integer(inner)  # a constant size only: no nested objects
            if size is None or size[1] + size[0] > end:
                raise self.fail(offset, "buffer size exceeds its package")
            return bytes(self.data[size[1] : size[1] + size[0]]), end
        if op == PACKAGE_OP:
            end, inner = self.pkglength(offset + 1)
            return ("package", bytes(self.data[inner:end])), end
        raise self.fail(offset, f"unsupported data object opcode {op:#04x}")

    def devices(self) -> list[AmlDevice]:
        """Every device in table order, walking nested objects with an explicit stack."""
        found: list[AmlDevice] = []
        stack = [_Frame(len(self.data), "\\", None)]
        offset = 0
        stored = 0
        while stack:
            if stored > AML_MAX_OBJECTS:
                raise self.fail(
                    offset,
                    f"more than {AML_MAX_OBJECTS} devices and named values (vmlayout's limit)",
                )
            frame = stack[-1]
            if offset >= frame.end:
                if offset != frame.end:
                    where = frame.device.path if frame.device else "object"
                    raise self.fail(offset, f"{where} runs past its package")
                stack.pop()
                continue
            op = self.byte(offset)
            device = frame.device
            if op == NAME_OP:
                path, after = self.name(offset + 1)
                value, offset = self.data_object(after)
                if device is not None:
                    device.names[path] = value
                    stored += 1
            elif op == EXT_OP_PREFIX and self.byte(offset + 1) == DEVICE_OP:
                pkg_end, inner = self.pkglength(offset + 2)
                path, offset = self.name(inner)
                child = AmlDevice(_join(device.path if device else frame.scope, path))
                found.append(child)
                stored += 1
                stack.append(self._open(offset, _Frame(pkg_end, child.path, child), len(stack)))
            elif op == SCOPE_OP and device is None:
                pkg_end, inner = self.pkglength(offset + 1)
                path, offset = self.name(inner)
                scope = _Frame(pkg_end, _join(frame.scope, path), None)
                stack.append(self._open(offset, scope, len(stack)))
            elif op == METHOD_OP and device is not None:
                pkg_end, inner = self.pkglength(offset + 1)
                name, after = self.name(inner)
                device.names[name] = ("method", self.byte(after) & METHOD_ARG_COUNT_MASK)
                stored += 1
                offset = pkg_end
            elif op in (METHOD_OP, IF_OP, ELSE_OP):
                offset, _ = self.pkglength(offset + 1)
            else:
                inside = f" in {device.path}" if device else ""
                raise self.fail(offset, f"unsupported opcode {op:#04x}{inside}")
        return found

    def _open(self, offset: int, frame: _Frame, depth: int) -> _Frame:
        """`frame` as the `depth`-th nested object, if within the limit."""
        if depth > AML_MAX_DEPTH:
            raise self.fail(
                offset, f"objects nest deeper than {AML_MAX_DEPTH} levels (vmlayout's limit)"
            )
        return frame


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
        raise bad(table.signature, "not a definition block")
    return _Reader(table.body, table.signature).devices()


def device_memory(device: AmlDevice, what: str) -> tuple[MemoryRange, ...]:
    """The memory ranges of a device's `_CRS`."""
    crs = device.names.get("_CRS")
    if not isinstance(crs, bytes):
        raise bad(what, f"{device.path} has no _CRS buffer")
    ranges = []
    for d in decode_resources(crs, what):
        if isinstance(d, MemoryDescriptor):
            if d.memory is None:
                raise bad(what, f"{device.path}: memory descriptor {d} is not page granular")
            ranges.append(d.memory)
    return tuple(ranges)


def chipset_from_dsdt(data: bytes) -> tuple[str, tuple[MemoryRange, ...]]:
    """(device path, memory ranges) of the DSDT's chipset MMIO device (VMOD or PCI0)."""
    table = decode_table(data, "DSDT")
    require_checksum(table, "DSDT")
    return chipset_of_devices(decode_definition_block(table))


def chipset_of_devices(found: list[AmlDevice]) -> tuple[str, tuple[MemoryRange, ...]]:
    """`chipset_from_dsdt` over a DSDT's devices already decoded."""
    devices = {d.path: d for d in found}
    for path in ("\\_SB.PCI0", "\\_SB.VMOD"):
        if path in devices:
            return path, device_memory(devices[path], "DSDT")
    raise bad("DSDT", "no \\_SB.VMOD or \\_SB.PCI0 device")
