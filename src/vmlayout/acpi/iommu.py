"""The IOMMU tables: IVRS (AMD-Vi) and DMAR (Intel VT-d) on x86_64, IORT (ITS group,
SMMUv3 and PCI root-complex nodes) on aarch64.

Each IOMMU's register window is the one the resolver placed for its root complex
(`ResolvedLayout.iommu_ranges`, in root-complex order); everything else here is fixed
by the emulated devices the reference exposes and is named as such. Every record is
a typed `Packed` value whose one field table both the encoder and the decoder use.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from vmlayout.acpi.sdt import (
    ENTRY_HEADER_TYPE16,
    ENTRY_HEADER_U8,
    ENTRY_HEADER_U16,
    HEADER,
    IORT_ENTRY_HEADER,
    STANDARD_FLAVOUR,
    Table,
    bad,
    build_table,
    checked_range,
    entries,
    expect_signature,
    require_length,
)
from vmlayout.binfmt import Packed, Struct
from vmlayout.errors import VmLayoutError
from vmlayout.policy import IommuKind
from vmlayout.ranges import PAGE_SIZE, MemoryRange

# --- AMD-Vi (IVRS) ---------------------------------------------------------------------

IVRS_BODY = Struct("IVRS body", (("iv_info", "I"), ("reserved", "8s")))
IVRS_REVISION = 2


class IvInfo(enum.IntFlag):
    """IVinfo: EFRSup (bit 0); the PA size (bits 14:8) and VA size (21:15) are fields."""

    EFR_SUP = 1 << 0


IV_INFO_PA_SHIFT, IV_INFO_VA_SHIFT, IV_INFO_SIZE_MASK = 8, 15, 0x7F
IVHD_10 = Struct(
    "IVHD type 10h",
    (
        ("type", "B"),
        ("flags", "B"),
        ("length", "H"),
        ("device_id", "H"),
        ("capability_offset", "H"),
        ("base", "Q"),
        ("segment", "H"),
        ("iommu_info", "H"),
        ("feature_reporting", "I"),
    ),
)
IVHD_11 = Struct(
    "IVHD type 11h",
    (
        ("type", "B"),
        ("flags", "B"),
        ("length", "H"),
        ("device_id", "H"),
        ("capability_offset", "H"),
        ("base", "Q"),
        ("segment", "H"),
        ("iommu_info", "H"),
        ("iommu_attributes", "I"),
        ("efr", "Q"),
        ("efr2", "Q"),
    ),
)
IVHD_ENTRY4 = Struct("IVHD 4-byte entry", (("type", "B"), ("device_id", "H"), ("dte", "B")))
IVHD_SPECIAL = Struct(
    "IVHD special entry",
    (
        ("type", "B"),
        ("reserved", "H"),
        ("dte", "B"),
        ("handle", "B"),
        ("source_device_id", "H"),
        ("variety", "B"),
    ),
)
IVHD_DEV_RANGE_START = 0x03
IVHD_DEV_RANGE_END = 0x04
IVHD_DEV_SPECIAL = 0x48
IVHD_SPECIAL_IOAPIC = 0x01
#: IVHD types with a header vmlayout reads (10h is the short, legacy one).
IVHD_HEADERS = {0x10: IVHD_10, 0x11: IVHD_11, 0x40: IVHD_11}
#: Device entry sizes by type range: 00h-3Fh 4 bytes, 40h-7Fh 8, 80h+ variable.
IVHD_ENTRY4_LIMIT, IVHD_ENTRY8_LIMIT = 0x40, 0x80
#: The emulated AMD IOMMU: capability block offset, advertised EFR, address widths.
AMD_IOMMU_CAP_OFFSET = 0x40
AMD_IOMMU_EFR = 0xC4
AMD_IOMMU_PA_BITS = 48
AMD_IOMMU_VA_BITS = 48
#: The southbridge IO-APIC's phantom requester id (devfn 0xA0 = 20.0) on segment 0
#: bus 0, and its MADT IO-APIC id.
IOAPIC_DEVFN = 0xA0
IOAPIC_ID = 0


@dataclass(frozen=True, slots=True)
class IvhdEntry4(Packed):
    """A 4-byte device entry: a device-range start (03h) or end (04h)."""

    LAYOUT: ClassVar[Struct] = IVHD_ENTRY4

    type: int
    device_id: int
    dte: int = 0


@dataclass(frozen=True, slots=True)
class IvhdSpecial(Packed):
    """An 8-byte special device entry (48h): the IO-APIC or HPET behind the IOMMU."""

    LAYOUT: ClassVar[Struct] = IVHD_SPECIAL
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = (("type", IVHD_DEV_SPECIAL),)

    handle: int
    source_device_id: int
    variety: int
    dte: int = 0


@dataclass(frozen=True, slots=True)
class Ivhd11(Packed):
    """An IVHD type 11h header; `length` covers the device entries after it."""

    LAYOUT: ClassVar[Struct] = IVHD_11
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = (("type", 0x11),)

    length: int
    device_id: int
    base: int
    segment: int
    capability_offset: int = AMD_IOMMU_CAP_OFFSET
    flags: int = 0
    iommu_info: int = 0
    iommu_attributes: int = 0
    efr: int = AMD_IOMMU_EFR
    efr2: int = 0


@dataclass(frozen=True, slots=True)
class IommuUnit:
    """One root complex's IOMMU: its register window base and the buses it covers."""

    base: int
    segment: int
    start_bus: int
    end_bus: int

    @property
    def covers_ioapic(self) -> bool:
        """The IO-APIC sits on segment 0 bus 0; the unit owning that bus remaps it."""
        return self.segment == 0 and self.start_bus == 0


def ivhd_entries(unit: IommuUnit) -> list[IvhdEntry4 | IvhdSpecial]:
    out: list[IvhdEntry4 | IvhdSpecial] = [
        IvhdEntry4(IVHD_DEV_RANGE_START, unit.start_bus << 8),
        IvhdEntry4(IVHD_DEV_RANGE_END, unit.end_bus << 8 | 0xFF),
    ]
    if unit.covers_ioapic:
        out.append(IvhdSpecial(IOAPIC_ID, IOAPIC_DEVFN, IVHD_SPECIAL_IOAPIC))
    return out


def build_ivrs(units: list[IommuUnit]) -> bytes:
    """One type-11h IVHD per unit (the emulated IOMMU is function 0 of device 0 on the
    root complex's first bus), covering its bus range; the IO-APIC entry on the unit
    owning segment 0 bus 0."""
    iv_info = (
        IvInfo.EFR_SUP
        | AMD_IOMMU_PA_BITS << IV_INFO_PA_SHIFT
        | AMD_IOMMU_VA_BITS << IV_INFO_VA_SHIFT
    )
    body = IVRS_BODY.pack(iv_info=iv_info)
    for unit in units:
        device_entries = b"".join(e.pack() for e in ivhd_entries(unit))
        header = Ivhd11(
            IVHD_11.size + len(device_entries), unit.start_bus << 8, unit.base, unit.segment
        )
        body += header.pack() + device_entries
    return build_table(b"IVRS", IVRS_REVISION, body, STANDARD_FLAVOUR)


@dataclass(frozen=True, slots=True)
class IommuEntry:
    """An IOMMU as the IVRS or DMAR describes it (the IORT's are `IortNode`s): register
    base, PCI segment, the buses (IVRS only), whether it remaps the IO-APIC."""

    base: int
    segment: int
    buses: tuple[int, int] | None = None
    ioapic: bool = False


def _base(value: int, what: str) -> int:
    """A register window base: the layout places every one page aligned."""
    if value % PAGE_SIZE:
        raise bad(what, f"register base {value:#x} is not page aligned")
    return value


IVHD_DEVICE_ENTRY = Struct("IVHD device entry type", (("type", "B"),))


def decode_ivrs(table: Table) -> tuple[dict[str, int], list[IommuEntry]]:
    """(IVinfo fields, one entry per IVHD of type 10h/11h/40h)."""
    expect_signature(table, "IVRS")
    body = table.body
    if len(body) < IVRS_BODY.size:
        raise bad("IVRS", "no IVinfo")
    info = IVRS_BODY.unpack(body, 0, "IVRS")["iv_info"]
    fields = {
        "efr_sup": info & IvInfo.EFR_SUP,
        "pa_size": (info >> IV_INFO_PA_SHIFT) & IV_INFO_SIZE_MASK,
        "va_size": (info >> IV_INFO_VA_SHIFT) & IV_INFO_SIZE_MASK,
    }
    units = []
    for block in entries(body, IVRS_BODY.size, "IVRS", ENTRY_HEADER_U16):
        layout = IVHD_HEADERS.get(block.type)
        if layout is None:
            continue
        require_length(block, layout.size, "IVRS", f"IVHD type {block.type:#04x}")
        header = layout.unpack(body, block.offset, "IVRS")
        start = end = None
        ioapic = False
        pos = block.offset + layout.size
        while pos < block.end:
            kind = IVHD_DEVICE_ENTRY.unpack(body, pos, "IVRS")["type"]
            record = (
                IVHD_ENTRY4
                if kind < IVHD_ENTRY4_LIMIT
                else IVHD_SPECIAL
                if kind < IVHD_ENTRY8_LIMIT
                else None
            )
            if record is None or pos + record.size > block.end:
                raise bad(
                    "IVRS", f"device entry {kind:#04x} at {pos + HEADER.size:#x} is not decoded"
                )
            if kind in (IVHD_DEV_RANGE_START, IVHD_DEV_RANGE_END):
                bus = IvhdEntry4.unpack(body, pos, "IVRS").device_id >> 8
                start, end = (bus, end) if kind == IVHD_DEV_RANGE_START else (start, bus)
            elif kind == IVHD_DEV_SPECIAL:
                ioapic |= IvhdSpecial.unpack(body, pos, "IVRS").variety == IVHD_SPECIAL_IOAPIC
            pos += record.size
        buses = (start, end) if start is not None and end is not None else None
        units.append(IommuEntry(_base(header["base"], "IVRS"), header["segment"], buses, ioapic))
    return fields, units


def summarize_ivrs(table: Table) -> dict[str, Any]:
    info, units = decode_ivrs(table)
    return {
        "iv_info": info,
        "iommus": [
            {
                "base": u.base,
                "segment": u.segment,
                "buses": list(u.buses) if u.buses else None,
                "ioapic": u.ioapic,
            }
            for u in units
        ],
    }


# --- Intel VT-d (DMAR) -----------------------------------------------------------------

DMAR_BODY = Struct("DMAR body", (("host_address_width", "B"), ("flags", "B"), ("reserved", "10s")))
DMAR_REVISION = 1
DMAR_DRHD = Struct(
    "DMAR DRHD",
    (
        ("type", "H"),
        ("length", "H"),
        ("flags", "B"),
        ("size", "B"),
        ("segment", "H"),
        ("base", "Q"),
    ),
)
DMAR_SCOPE = Struct(
    "DMAR device scope",
    (
        ("type", "B"),
        ("length", "B"),
        ("reserved", "H"),
        ("enumeration_id", "B"),
        ("start_bus", "B"),
        ("device", "B"),
        ("function", "B"),
    ),
)
#: A device scope without its path (the shortest one that names a start bus).
DMAR_SCOPE_HEADER_SIZE = 6
DMAR_DRHD_TYPE = 0


class DmarFlags(enum.IntFlag):
    INTR_REMAP = 1 << 0
    X2APIC_OPT_OUT = 1 << 1


class DrhdFlags(enum.IntFlag):
    NONE = 0
    INCLUDE_PCI_ALL = 1 << 0


class ScopeType(enum.IntEnum):
    PCI_ENDPOINT = 0x01
    PCI_SUBHIERARCHY = 0x02
    IOAPIC = 0x03
    HPET = 0x04


DEVICE_SCOPE_IOAPIC = ScopeType.IOAPIC


@dataclass(frozen=True, slots=True)
class DmarScope(Packed):
    """A device scope with a one-element path (device, function)."""

    LAYOUT: ClassVar[Struct] = DMAR_SCOPE
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = (("length", DMAR_SCOPE.size),)

    type: ScopeType
    enumeration_id: int
    start_bus: int
    device: int
    function: int


@dataclass(frozen=True, slots=True)
class Drhd(Packed):
    """A DRHD header; `length` covers its device scopes."""

    LAYOUT: ClassVar[Struct] = DMAR_DRHD
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = (("type", DMAR_DRHD_TYPE),)

    length: int
    segment: int
    base: int
    flags: DrhdFlags = DrhdFlags.NONE
    size: int = 0


def build_dmar(units: list[IommuUnit], host_address_width: int = 48) -> bytes:
    """One DRHD per unit, without INCLUDE_PCI_ALL. A root complex without root ports has
    no device on its root bus to scope, so only the IO-APIC scope can appear (on the
    unit owning segment 0 bus 0)."""
    if not 1 <= host_address_width <= 64:
        raise VmLayoutError("invalid_argument", f"VT-d host address width {host_address_width}")
    body = DMAR_BODY.pack(host_address_width=host_address_width - 1, flags=DmarFlags.INTR_REMAP)
    for unit in units:
        scopes = b""
        if unit.covers_ioapic:
            device, function = IOAPIC_DEVFN >> 3, IOAPIC_DEVFN & 7
            scopes += DmarScope(
                ScopeType.IOAPIC, IOAPIC_ID, unit.start_bus, device, function
            ).pack()
        body += Drhd(DMAR_DRHD.size + len(scopes), unit.segment, unit.base).pack() + scopes
    return build_table(b"DMAR", DMAR_REVISION, body, STANDARD_FLAVOUR)


def decode_dmar(table: Table) -> tuple[int, list[IommuEntry]]:
    """(host address width in bits, one entry per DRHD)."""
    expect_signature(table, "DMAR")
    body = table.body
    if len(body) < DMAR_BODY.size:
        raise bad("DMAR", "no host address width")
    width = DMAR_BODY.unpack(body, 0, "DMAR")["host_address_width"] + 1
    units = []
    for block in entries(body, DMAR_BODY.size, "DMAR", ENTRY_HEADER_TYPE16):
        if block.type != DMAR_DRHD_TYPE:
            continue
        require_length(block, DMAR_DRHD.size, "DMAR", "DRHD")
        drhd = Drhd.unpack(body, block.offset, "DMAR")
        ioapic = False
        for scope in entries(
            body, block.offset + DMAR_DRHD.size, "DMAR", ENTRY_HEADER_U8, block.end
        ):
            require_length(scope, DMAR_SCOPE_HEADER_SIZE, "DMAR", "device scope")
            ioapic |= scope.type == ScopeType.IOAPIC
        units.append(IommuEntry(_base(drhd.base, "DMAR"), drhd.segment, ioapic=ioapic))
    return width, units


def summarize_dmar(table: Table) -> dict[str, Any]:
    width, units = decode_dmar(table)
    return {
        "host_address_width": width,
        "iommus": [{"base": u.base, "segment": u.segment, "ioapic": u.ioapic} for u in units],
    }


# --- IORT ------------------------------------------------------------------------------

IORT_BODY = Struct("IORT body", (("node_count", "I"), ("node_offset", "I"), ("reserved", "I")))
IORT_REVISION = 5
IORT_NODE_OFFSET = HEADER.size + IORT_BODY.size
IORT_NODE = Struct(
    "IORT node header",
    (
        ("type", "B"),
        ("length", "H"),
        ("revision", "B"),
        ("identifier", "I"),
        ("mapping_count", "I"),
        ("mapping_offset", "I"),
    ),
)
IORT_ITS_GROUP = Struct("IORT ITS group", (("its_count", "I"), ("its_id", "I")))
IORT_SMMUV3 = Struct(
    "IORT SMMUv3",
    (
        ("base", "Q"),
        ("flags", "I"),
        ("reserved", "I"),
        ("vatos_address", "Q"),
        ("model", "I"),
        ("event_gsiv", "I"),
        ("pri_gsiv", "I"),
        ("gerr_gsiv", "I"),
        ("sync_gsiv", "I"),
        ("proximity_domain", "I"),
        ("device_id_mapping_index", "I"),
    ),
)
IORT_ROOT_COMPLEX = Struct(
    "IORT PCI root complex",
    (
        ("cache_coherency", "I"),
        ("hints", "B"),
        ("reserved", "H"),
        ("memory_flags", "B"),
        ("ats_attribute", "I"),
        ("segment", "I"),
        ("memory_address_limit", "B"),
        ("reserved2", "3s"),
    ),
)
IORT_ID_MAPPING = Struct(
    "IORT ID mapping",
    (
        ("input_base", "I"),
        ("id_count", "I"),
        ("output_base", "I"),
        ("output_reference", "I"),
        ("flags", "I"),
    ),
)


class IortNodeType(enum.IntEnum):
    ITS_GROUP = 0x00
    ROOT_COMPLEX = 0x02
    SMMUV3 = 0x04


IORT_ITS_GROUP_TYPE = IortNodeType.ITS_GROUP
IORT_ROOT_COMPLEX_TYPE = IortNodeType.ROOT_COMPLEX
IORT_SMMUV3_TYPE = IortNodeType.SMMUV3
#: Node revisions vmlayout writes (the IORT revision E.d node formats).
IORT_NODE_REVISIONS = {
    IortNodeType.ITS_GROUP: 1,
    IortNodeType.SMMUV3: 5,
    IortNodeType.ROOT_COMPLEX: 3,
}
#: What `inspect` calls each node type.
IORT_NODE_KINDS: dict[int, str] = {
    IortNodeType.ITS_GROUP: "its_group",
    IortNodeType.ROOT_COMPLEX: "root_complex",
    IortNodeType.SMMUV3: "smmuv3",
}


class IdMappingFlags(enum.IntFlag):
    NONE = 0
    SINGLE_MAPPING = 1 << 0


IORT_ID_SINGLE_MAPPING = IdMappingFlags.SINGLE_MAPPING


class Smmuv3Flags(enum.IntFlag):
    NONE = 0
    COHACC_OVERRIDE = 1 << 0
    HTTU_OVERRIDE = 0b11 << 1
    PROXIMITY_DOMAIN_VALID = 1 << 3
    DEVICEID_VALID = 1 << 4


SMMUV3_COHACC, SMMUV3_DEVICEID_VALID = Smmuv3Flags.COHACC_OVERRIDE, Smmuv3Flags.DEVICEID_VALID
#: Root complex memory access flags: coherent path to memory, cacheable inner/outer WB.
RC_MEMORY_COHERENT = 0b11
RC_MEMORY_ADDRESS_LIMIT_BITS = 64
#: Requester ids a mapping covers: every BDF of a segment.
ALL_REQUESTER_IDS = 0xFFFF


@dataclass(frozen=True, slots=True)
class IortNodeHeader(Packed):
    LAYOUT: ClassVar[Struct] = IORT_NODE

    type: int
    length: int
    revision: int
    identifier: int
    mapping_count: int
    mapping_offset: int


@dataclass(frozen=True, slots=True)
class IdMapping(Packed):
    """Input ids [input_base, input_base + id_count] to output ids at output_base, in
    the node at table offset `output_reference`."""

    LAYOUT: ClassVar[Struct] = IORT_ID_MAPPING

    output_base: int
    output_reference: int
    flags: IdMappingFlags = IdMappingFlags.NONE
    id_count: int = ALL_REQUESTER_IDS
    input_base: int = 0


@dataclass(frozen=True, slots=True)
class ItsGroup(Packed):
    """An ITS group of one ITS."""

    LAYOUT: ClassVar[Struct] = IORT_ITS_GROUP
    FIXED: ClassVar[tuple[tuple[str, Any], ...]] = (("its_count", 1),)

    its_id: int = 0


@dataclass(frozen=True, slots=True)
class Smmuv3(Packed):
    LAYOUT: ClassVar[Struct] = IORT_SMMUV3

    base: int
    flags: Smmuv3Flags
    event_gsiv: int
    gerr_gsiv: int
    device_id_mapping_index: int = 0
    vatos_address: int = 0
    model: int = 0
    pri_gsiv: int = 0
    sync_gsiv: int = 0
    proximity_domain: int = 0


@dataclass(frozen=True, slots=True)
class RootComplexNode(Packed):
    LAYOUT: ClassVar[Struct] = IORT_ROOT_COMPLEX

    segment: int
    cache_coherency: int = 1
    hints: int = 0
    memory_flags: int = RC_MEMORY_COHERENT
    ats_attribute: int = 0
    memory_address_limit: int = RC_MEMORY_ADDRESS_LIMIT_BITS


@dataclass(frozen=True, slots=True)
class IortRootComplex:
    index: int
    segment: int


@dataclass(frozen=True, slots=True)
class IortSmmu:
    """An SMMUv3 in front of root complex `rc_index`, with its two wired SPIs."""

    rc_index: int
    segment: int
    base: int
    event_gsiv: int
    gerr_gsiv: int


def _node(
    kind: IortNodeType,
    identifier: int,
    fixed: ItsGroup | Smmuv3 | RootComplexNode,
    mappings: list[IdMapping],
) -> bytes:
    length = IORT_NODE.size + fixed.LAYOUT.size + IORT_ID_MAPPING.size * len(mappings)
    header = IortNodeHeader(
        type=kind,
        length=length,
        revision=IORT_NODE_REVISIONS[kind],
        identifier=identifier,
        mapping_count=len(mappings),
        mapping_offset=IORT_NODE.size + fixed.LAYOUT.size if mappings else 0,
    )
    return header.pack() + fixed.pack() + b"".join(m.pack() for m in mappings)


def build_iort(root_complexes: list[IortRootComplex], smmus: list[IortSmmu], its: bool) -> bytes:
    """ITS group first, then the SMMUs, then one node per root complex. Requester ids
    are BDFs; the ITS sees `(segment << 16) | BDF`, the segment being added by whichever
    node hands the id to the ITS (the SMMU when there is one, else the root complex)."""
    nodes = b""
    its_offset = IORT_NODE_OFFSET
    if its:
        nodes += _node(IortNodeType.ITS_GROUP, 0, ItsGroup(), [])
    smmu_offsets: dict[int, int] = {}
    for smmu in smmus:
        smmu_offsets[smmu.rc_index] = IORT_NODE_OFFSET + len(nodes)
        mappings = (
            [
                IdMapping(smmu.segment << 16, its_offset),
                IdMapping(0, its_offset, IdMappingFlags.SINGLE_MAPPING, id_count=0),
            ]
            if its
            else []
        )
        fixed = Smmuv3(
            base=smmu.base,
            flags=SMMUV3_COHACC | (SMMUV3_DEVICEID_VALID if mappings else Smmuv3Flags.NONE),
            event_gsiv=smmu.event_gsiv,
            gerr_gsiv=smmu.gerr_gsiv,
            device_id_mapping_index=1 if mappings else 0,
        )
        nodes += _node(IortNodeType.SMMUV3, smmu.rc_index, fixed, mappings)
    for rc in root_complexes:
        if rc.index in smmu_offsets:
            rc_mappings = [IdMapping(0, smmu_offsets[rc.index])]
        elif its:
            rc_mappings = [IdMapping(rc.segment << 16, its_offset)]
        else:
            rc_mappings = []
        nodes += _node(
            IortNodeType.ROOT_COMPLEX, rc.index, RootComplexNode(rc.segment), rc_mappings
        )
    count = int(its) + len(smmus) + len(root_complexes)
    body = IORT_BODY.pack(node_count=count, node_offset=IORT_NODE_OFFSET)
    return build_table(b"IORT", IORT_REVISION, body + nodes, STANDARD_FLAVOUR)


@dataclass(frozen=True, slots=True)
class IortNode:
    kind: str  # "its_group", "root_complex", "smmuv3" or the type number
    offset: int
    identifier: int
    mappings: tuple[IdMapping, ...]
    segment: int | None = None
    base: int | None = None
    gsivs: tuple[int, int] | None = None  # SMMUv3 (event, global error)


def decode_iort(table: Table) -> list[IortNode]:
    expect_signature(table, "IORT")
    body = table.body
    if len(body) < IORT_BODY.size:
        raise bad("IORT", "no node count")
    top = IORT_BODY.unpack(body, 0, "IORT")
    count, first = top["node_count"], top["node_offset"] - HEADER.size
    if not IORT_BODY.size <= first <= len(body):
        raise bad("IORT", f"node offset {first + HEADER.size:#x} is outside the table")
    nodes = []
    for block in entries(body, first, "IORT", IORT_ENTRY_HEADER):
        require_length(block, IORT_NODE.size, "IORT", "node")
        node = IortNodeHeader.unpack(body, block.offset, "IORT")
        step = IORT_ID_MAPPING.size
        if node.mapping_count and node.mapping_offset + step * node.mapping_count > block.length:
            raise bad("IORT", f"node at {block.table_offset:#x}: ID mappings run past the node")
        mappings = tuple(
            IdMapping.unpack(body, block.offset + node.mapping_offset + step * i, "IORT")
            for i in range(node.mapping_count)
        )
        segment = base = gsivs = None
        fixed_at = block.offset + IORT_NODE.size
        if (
            node.type == IortNodeType.ROOT_COMPLEX
            and block.length >= IORT_NODE.size + IORT_ROOT_COMPLEX.size
        ):
            segment = RootComplexNode.unpack(body, fixed_at, "IORT").segment
        elif node.type == IortNodeType.SMMUV3 and block.length >= IORT_NODE.size + IORT_SMMUV3.size:
            smmu = Smmuv3.unpack(body, fixed_at, "IORT")
            base = _base(smmu.base, "IORT")
            gsivs = (smmu.event_gsiv, smmu.gerr_gsiv)
        kind = IORT_NODE_KINDS.get(node.type, str(node.type))
        nodes.append(
            IortNode(kind, block.table_offset, node.identifier, mappings, segment, base, gsivs)
        )
    if len(nodes) != count:
        raise bad("IORT", f"header counts {count} nodes, {len(nodes)} present")
    return nodes


def summarize_iort(table: Table) -> dict[str, Any]:
    return {
        "nodes": [
            {
                "kind": n.kind,
                "offset": n.offset,
                "identifier": n.identifier,
                "segment": n.segment,
                "base": n.base,
                "gsivs": list(n.gsivs) if n.gsivs else None,
                "mappings": [
                    [m.input_base, m.id_count, m.output_base, m.output_reference, int(m.flags)]
                    for m in n.mappings
                ],
            }
            for n in decode_iort(table)
        ]
    }


def register_window(base: int, size: int, what: str) -> MemoryRange:
    """An IOMMU's register window from the base a table gives and the size its kind has."""
    return checked_range(base, size, what)


#: Register window bytes per IOMMU as each table implies it (the tables carry only the
#: base): the size the resolver places for that kind.
IOMMU_WINDOW_BYTES = {
    table: kind.tag_and_size[1]
    for table, kind in (
        ("IVRS", IommuKind.AMD_VI),
        ("DMAR", IommuKind.INTEL_VTD),
        ("IORT", IommuKind.SMMU),
    )
}
