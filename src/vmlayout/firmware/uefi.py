"""The UEFI config blob (spec 03 §7): how the layout reaches the guest firmware.

MmioRanges is written from `ChipsetMmioRanges` (never from positions in a list of MMIO
gaps), and an empty high window keeps its real start page, exactly as the reference
does; the memory map lists RAM only. Non-layout settings are explicit options with
reproducible defaults (zero entropy, zero GUID) so the same config always gives the
same bytes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from vmlayout.arch import Arch, InterruptController
from vmlayout.binfmt import Struct
from vmlayout.errors import VmLayoutError
from vmlayout.layout import ChipsetMmioRanges, MemoryRangeWithNode
from vmlayout.platform import DEFAULT_PLATFORM, Platform
from vmlayout.ranges import PAGE_SIZE, MemoryRange
from vmlayout.topology import DEFAULT_PROCESSORS, Processors

if TYPE_CHECKING:
    from vmlayout.policy import ResolvedLayout, VmConfig


class StructureType(IntEnum):
    STRUCTURE_COUNT = 0x00
    BIOS_INFORMATION = 0x01
    SRAT = 0x02
    MEMORY_MAP = 0x03
    ENTROPY = 0x04
    BIOS_GUID = 0x05
    FLAGS = 0x12
    PROCESSOR_INFORMATION = 0x13
    MMIO_RANGES = 0x14
    AARCH64_MPIDR = 0x15
    ACPI_TABLE = 0x16
    NVDIMM_COUNT = 0x17
    VPCI_INSTANCE_FILTER = 0x19
    GIC = 0x23
    MCFG = 0x24
    SSDT = 0x25
    PCIE_BAR_APERTURES = 0x28


#: Every id the format defines (0x00..0x28); others cannot be skipped with confidence.
KNOWN_TYPES = range(0x00, 0x29)

HEADER = Struct("structure header", (("structure_type", "I"), ("length", "I")))
STRUCTURE_COUNT = Struct(
    "StructureCount", (("total_structure_count", "I"), ("total_config_blob_size", "I"))
)
BIOS_INFORMATION = Struct("BiosInformation", (("bios_size_pages", "I"), ("flags", "I")))
MEMORY_RANGE = Struct(
    "MemoryRangeV5",
    (("base_address", "Q"), ("length", "Q"), ("flags", "I"), ("reserved", "I")),
)
MMIO_RANGE = Struct("MmioRange", (("mmio_page_number_start", "Q"), ("mmio_size_in_pages", "Q")))
PROCESSOR_INFORMATION = Struct(
    "ProcessorInformation",
    (
        ("max_processor_count", "I"),
        ("processor_count", "I"),
        ("processors_per_virtual_socket", "I"),
        ("threads_per_processor", "I"),
    ),
)
FLAGS = Struct("Flags", (("flags", "Q"),))
GIC = Struct("Gic", (("distributor_base", "Q"), ("redistributors_base", "Q")))
GUID = Struct("GUID", (("data1", "I"), ("data2", "H"), ("data3", "H"), ("data4", "8s")))

BIOS_SIZE_PAGES = 0x600000 // PAGE_SIZE
NULL_GUID = uuid.UUID(int=0)


class Flag(IntEnum):
    """Bit positions of the Flags structure (spec 03 §7.5) that vmlayout sets."""

    SERIAL_CONTROLLERS_ENABLED = 0
    HIBERNATE_ENABLED = 6
    DISABLE_FRONTPAGE = 14
    MTRRS_INITIALIZED_AT_LOAD = 28
    VMBUS_DISABLED = 30
    PCI_RESOURCES_PRE_ASSIGNED = 31


@dataclass(frozen=True, slots=True)
class UefiOptions:
    """What the blob takes from the VM description besides the layout: its processors
    and platform sections (`UefiOptions.of(config)`). Defaults reproduce spec 03 §9.4."""

    processors: Processors = DEFAULT_PROCESSORS
    platform: Platform = DEFAULT_PLATFORM
    arch: Arch = Arch.X86_64

    @classmethod
    def of(cls, config: VmConfig) -> UefiOptions:
        return cls(config.processors, config.platform, config.arch)

    @property
    def vp_count(self) -> int:
        return self.processors.vp_count

    @property
    def vps_per_socket(self) -> int:
        return min(self.processors.socket_size(self.arch), self.vp_count)

    @property
    def bios_guid(self) -> uuid.UUID:
        return self.platform.uefi.guid

    @property
    def entropy(self) -> bytes:
        return self.platform.uefi.entropy

    @property
    def gic(self) -> tuple[int, int] | None:
        """(distributor, redistributors) for the Gic structure, on a GIC platform."""
        if self.arch.spec.interrupt_controller is not InterruptController.GIC:
            return None
        return self.platform.gic.distributor_base, self.platform.gic.redistributors_base

    @property
    def flags(self) -> int:
        bits = [Flag.HIBERNATE_ENABLED, Flag.MTRRS_INITIALIZED_AT_LOAD]
        bits.append(Flag.PCI_RESOURCES_PRE_ASSIGNED)
        if self.platform.serial:
            bits.append(Flag.SERIAL_CONTROLLERS_ENABLED)
        if not self.platform.uefi.frontpage:
            bits.append(Flag.DISABLE_FRONTPAGE)
        if not self.platform.vmbus:
            bits.append(Flag.VMBUS_DISABLED)
        return sum(1 << b for b in bits)


def _structure(kind: int, payload: bytes) -> bytes:
    padded = payload + bytes(-len(payload) % 8)
    return HEADER.pack(structure_type=kind, length=8 + len(padded)) + padded


def _guid_bytes(value: uuid.UUID) -> bytes:
    return value.bytes_le  # data1..3 little-endian, data4 as stored


def memory_map_payload(ram: tuple[MemoryRangeWithNode, ...]) -> bytes:
    return b"".join(
        MEMORY_RANGE.pack(base_address=r.range.start, length=r.range.size, flags=0, reserved=0)
        for r in ram
    )


def mmio_ranges_payload(chipset: ChipsetMmioRanges) -> bytes:
    return b"".join(
        MMIO_RANGE.pack(
            mmio_page_number_start=r.start // PAGE_SIZE, mmio_size_in_pages=r.size // PAGE_SIZE
        )
        for r in (chipset.low, chipset.high)
    )


def _complete(structures: list[bytes]) -> bytes:
    body = b"".join(structures)
    total = 16 + len(body)
    count = STRUCTURE_COUNT.pack(
        total_structure_count=len(structures) + 1, total_config_blob_size=total
    )
    return _structure(StructureType.STRUCTURE_COUNT, count) + body


def encode_layout_blob(ram: tuple[MemoryRangeWithNode, ...], chipset: ChipsetMmioRanges) -> bytes:
    """StructureCount, MemoryMap, MmioRanges: the layout-carrying part (uefi vectors)."""
    return _complete(
        [
            _structure(StructureType.MEMORY_MAP, memory_map_payload(ram)),
            _structure(StructureType.MMIO_RANGES, mmio_ranges_payload(chipset)),
        ]
    )


def encode_config_blob(
    ram: tuple[MemoryRangeWithNode, ...],
    chipset: ChipsetMmioRanges,
    options: UefiOptions = UefiOptions(),
    acpi_tables: tuple[bytes, ...] = (),
) -> bytes:
    """The blob in the reference loader's structure order (spec 03 §7.4)."""
    structures = [
        _structure(
            StructureType.BIOS_INFORMATION,
            BIOS_INFORMATION.pack(bios_size_pages=BIOS_SIZE_PAGES, flags=0),
        ),
        _structure(StructureType.MEMORY_MAP, memory_map_payload(ram)),
        _structure(StructureType.BIOS_GUID, _guid_bytes(options.bios_guid)),
        _structure(StructureType.ENTROPY, options.entropy),
        _structure(StructureType.MMIO_RANGES, mmio_ranges_payload(chipset)),
        _structure(
            StructureType.PROCESSOR_INFORMATION,
            PROCESSOR_INFORMATION.pack(
                max_processor_count=options.vp_count,
                processor_count=options.vp_count,
                processors_per_virtual_socket=options.vps_per_socket,
                threads_per_processor=2 if options.processors.smt else 1,
            ),
        ),
        _structure(StructureType.FLAGS, FLAGS.pack(flags=options.flags)),
    ]
    if options.gic is not None:
        structures.append(
            _structure(
                StructureType.GIC,
                GIC.pack(distributor_base=options.gic[0], redistributors_base=options.gic[1]),
            )
        )
    structures += [_structure(StructureType.ACPI_TABLE, table) for table in acpi_tables]
    return _complete(structures)


def uefi_blob_of(resolved: ResolvedLayout) -> bytes:
    """The blob of the VM `resolved` describes (its RAM, chipset windows, processors and
    platform)."""
    return encode_config_blob(
        resolved.memory_layout.ram, resolved.chipset, UefiOptions.of(resolved.config)
    )


# --- decoding -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UefiStructure:
    offset: int
    structure_type: int
    length: int
    payload: bytes
    fields: dict[str, Any] = field(hash=False, compare=False)

    @property
    def name(self) -> str:
        try:
            return StructureType(self.structure_type).name
        except ValueError:
            return f"type {self.structure_type:#x}"


@dataclass(frozen=True, slots=True)
class UefiBlob:
    structures: tuple[UefiStructure, ...]
    #: RAM ranges of the MemoryMap structure (flags 0) in blob order; () if absent.
    memory_map: tuple[MemoryRange, ...]
    #: (low, high) from MmioRanges, an empty high keeping its start; None if absent.
    mmio_ranges: tuple[MemoryRange, MemoryRange] | None


def _bad(offset: int, reason: str) -> VmLayoutError:
    return VmLayoutError("invalid_uefi_blob", f"offset {offset:#x}: {reason}")


def _page_range(entry: dict[str, Any], offset: int) -> MemoryRange:
    start = entry["mmio_page_number_start"] * PAGE_SIZE
    end = start + entry["mmio_size_in_pages"] * PAGE_SIZE
    if end >= 1 << 64:
        raise _bad(offset, "MmioRanges entry runs past the 64-bit address space")
    return MemoryRange(start, end)


def _decode_payload(kind: int, payload: bytes, offset: int) -> dict[str, Any]:
    what = f"structure at {offset:#x}"
    if kind == StructureType.STRUCTURE_COUNT:
        return STRUCTURE_COUNT.unpack(payload, 0, what)
    if kind == StructureType.BIOS_INFORMATION:
        return BIOS_INFORMATION.unpack(payload, 0, what)
    if kind == StructureType.MEMORY_MAP:
        if len(payload) % MEMORY_RANGE.size:
            raise _bad(offset, f"MemoryMap payload of {len(payload)} bytes is not 24-byte entries")
        entries = [MEMORY_RANGE.unpack(payload, i, what) for i in range(0, len(payload), 24)]
        return {"entries": entries}
    if kind == StructureType.MMIO_RANGES:
        return {"ranges": [MMIO_RANGE.unpack(payload, i, what) for i in (0, 16)]}
    if kind == StructureType.PROCESSOR_INFORMATION:
        return PROCESSOR_INFORMATION.unpack(payload, 0, what)
    if kind == StructureType.FLAGS:
        return FLAGS.unpack(payload, 0, what)
    if kind == StructureType.GIC:
        return GIC.unpack(payload, 0, what)
    if kind in (StructureType.BIOS_GUID, StructureType.VPCI_INSTANCE_FILTER):
        g = GUID.unpack(payload, 0, what)
        return {"guid": str(uuid.UUID(bytes_le=payload[:16])), **{k: g[k] for k in ("data1",)}}
    if kind == StructureType.ACPI_TABLE:
        return {"signature": payload[:4].decode("latin-1"), "bytes": len(payload)}
    return {"bytes": len(payload)}


def decode_config_blob(data: bytes) -> UefiBlob:
    """Walk the structures, checking every length; raises only VmLayoutError."""
    if len(data) < 16:
        raise _bad(0, f"{len(data)} bytes is shorter than the 16-byte StructureCount")
    head = HEADER.unpack(data)
    if head["structure_type"] != StructureType.STRUCTURE_COUNT or head["length"] != 16:
        raise _bad(0, "the blob does not start with a 16-byte StructureCount structure")
    count = STRUCTURE_COUNT.unpack(data, 8)
    if count["total_config_blob_size"] != len(data):
        raise _bad(
            0,
            f"StructureCount says {count['total_config_blob_size']} bytes, "
            f"the input has {len(data)}",
        )
    structures: list[UefiStructure] = []
    offset = 0
    while offset < len(data):
        head = HEADER.unpack(data, offset, f"structure at {offset:#x}")
        kind, length = head["structure_type"], head["length"]
        if length < 8 or length % 8 or offset + length > len(data):
            raise _bad(offset, f"structure length {length} is not a multiple of 8 within the blob")
        if kind not in KNOWN_TYPES:
            raise _bad(offset, f"unknown structure type {kind:#x}")
        payload = data[offset + 8 : offset + length]
        fields = _decode_payload(kind, payload, offset)
        structures.append(UefiStructure(offset, kind, length, payload, fields))
        offset += length
    if len(structures) != count["total_structure_count"]:
        raise _bad(
            0,
            f"StructureCount says {count['total_structure_count']} structures, "
            f"found {len(structures)}",
        )
    memory_map: list[MemoryRange] = []
    mmio: tuple[MemoryRange, MemoryRange] | None = None
    for s in structures:
        if s.structure_type == StructureType.MEMORY_MAP:
            for i, e in enumerate(s.fields["entries"]):
                start, end = e["base_address"], e["base_address"] + e["length"]
                if start % PAGE_SIZE or end % PAGE_SIZE or end >= 1 << 64:
                    raise _bad(s.offset + 8 + 24 * i, "memory range is not page aligned")
                memory_map.append(MemoryRange(start, end))
        elif s.structure_type == StructureType.MMIO_RANGES:
            low, high = s.fields["ranges"]
            mmio = (_page_range(low, s.offset + 8), _page_range(high, s.offset + 24))
    return UefiBlob(tuple(structures), tuple(memory_map), mmio)


def has_config_blob_header(data: bytes) -> bool:
    """Starts like a blob (a 16-byte StructureCount); a damaged one is still recognised,
    so the decoder can say what is wrong with it."""
    return data[:8] == HEADER.pack(structure_type=StructureType.STRUCTURE_COUNT, length=16)
