"""The IOMMU tables: IVRS (AMD-Vi) and DMAR (Intel VT-d) on x86_64, IORT (ITS group,
SMMUv3 and PCI root-complex nodes) on aarch64.

Each IOMMU's register window is the one the resolver placed for its root complex
(`ResolvedLayout.iommu_ranges`, in root-complex order); everything else here is fixed
by the emulated devices the reference exposes and is named as such.
"""

from __future__ import annotations

from dataclasses import dataclass

from vmlayout.acpi.tables import HEADER, STANDARD_FLAVOUR, build_table
from vmlayout.binfmt import Struct
from vmlayout.errors import VmLayoutError
from vmlayout.policy import IommuKind

# --- AMD-Vi (IVRS) ---------------------------------------------------------------------

IVRS_BODY = Struct("IVRS body", (("iv_info", "I"), ("reserved", "8s")))
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


def build_ivrs(units: list[IommuUnit]) -> bytes:
    """One type-11h IVHD per unit (the emulated IOMMU is function 0 of device 0 on the
    root complex's first bus), covering its bus range; the IO-APIC entry on the unit
    owning segment 0 bus 0."""
    iv_info = 1 | AMD_IOMMU_PA_BITS << 8 | AMD_IOMMU_VA_BITS << 15  # EFRSup, PA, VA sizes
    body = IVRS_BODY.pack(iv_info=iv_info, reserved=bytes(8))
    for unit in units:
        entries = IVHD_ENTRY4.pack(
            type=IVHD_DEV_RANGE_START, device_id=unit.start_bus << 8, dte=0
        ) + IVHD_ENTRY4.pack(type=IVHD_DEV_RANGE_END, device_id=unit.end_bus << 8 | 0xFF, dte=0)
        if unit.covers_ioapic:
            entries += IVHD_SPECIAL.pack(
                type=IVHD_DEV_SPECIAL,
                reserved=0,
                dte=0,
                handle=IOAPIC_ID,
                source_device_id=IOAPIC_DEVFN,
                variety=IVHD_SPECIAL_IOAPIC,
            )
        body += IVHD_11.pack(
            type=0x11,
            flags=0,
            length=IVHD_11.size + len(entries),
            device_id=unit.start_bus << 8,
            capability_offset=AMD_IOMMU_CAP_OFFSET,
            base=unit.base,
            segment=unit.segment,
            iommu_info=0,
            iommu_attributes=0,
            efr=AMD_IOMMU_EFR,
            efr2=0,
        )
        body += entries
    return build_table(b"IVRS", 2, body, STANDARD_FLAVOUR)


# --- Intel VT-d (DMAR) -----------------------------------------------------------------

DMAR_BODY = Struct("DMAR body", (("host_address_width", "B"), ("flags", "B"), ("reserved", "10s")))
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
DMAR_FLAGS_INTR_REMAP = 0x01
DEVICE_SCOPE_IOAPIC = 0x03


def build_dmar(units: list[IommuUnit], host_address_width: int = 48) -> bytes:
    """One DRHD per unit, without INCLUDE_PCI_ALL. A root complex without root ports has
    no device on its root bus to scope, so only the IO-APIC scope can appear (on the
    unit owning segment 0 bus 0)."""
    if not 1 <= host_address_width <= 64:
        raise VmLayoutError("invalid_argument", f"VT-d host address width {host_address_width}")
    body = DMAR_BODY.pack(
        host_address_width=host_address_width - 1,
        flags=DMAR_FLAGS_INTR_REMAP,
        reserved=bytes(10),
    )
    for unit in units:
        scopes = b""
        if unit.covers_ioapic:
            scopes += DMAR_SCOPE.pack(
                type=DEVICE_SCOPE_IOAPIC,
                length=DMAR_SCOPE.size,
                reserved=0,
                enumeration_id=IOAPIC_ID,
                start_bus=unit.start_bus,
                device=IOAPIC_DEVFN >> 3,
                function=IOAPIC_DEVFN & 7,
            )
        body += DMAR_DRHD.pack(
            type=0,
            length=DMAR_DRHD.size + len(scopes),
            flags=0,
            size=0,
            segment=unit.segment,
            base=unit.base,
        )
        body += scopes
    return build_table(b"DMAR", 1, body, STANDARD_FLAVOUR)


# --- IORT ------------------------------------------------------------------------------

IORT_BODY = Struct("IORT body", (("node_count", "I"), ("node_offset", "I"), ("reserved", "I")))
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
IORT_ITS_GROUP_TYPE, IORT_ROOT_COMPLEX_TYPE, IORT_SMMUV3_TYPE = 0x00, 0x02, 0x04
IORT_ID_SINGLE_MAPPING = 1
SMMUV3_COHACC, SMMUV3_DEVICEID_VALID = 1 << 0, 1 << 4


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


def _node(kind: int, revision: int, identifier: int, fixed: bytes, mappings: list[bytes]) -> bytes:
    length = IORT_NODE.size + len(fixed) + IORT_ID_MAPPING.size * len(mappings)
    return (
        IORT_NODE.pack(
            type=kind,
            length=length,
            revision=revision,
            identifier=identifier,
            mapping_count=len(mappings),
            mapping_offset=IORT_NODE.size + len(fixed) if mappings else 0,
        )
        + fixed
        + b"".join(mappings)
    )


def _mapping(output_base: int, reference: int, flags: int = 0, count: int = 0xFFFF) -> bytes:
    return IORT_ID_MAPPING.pack(
        input_base=0,
        id_count=count,
        output_base=output_base,
        output_reference=reference,
        flags=flags,
    )


def build_iort(root_complexes: list[IortRootComplex], smmus: list[IortSmmu], its: bool) -> bytes:
    """ITS group first, then the SMMUs, then one node per root complex. Requester ids
    are BDFs; the ITS sees `(segment << 16) | BDF`, the segment being added by whichever
    node hands the id to the ITS (the SMMU when there is one, else the root complex)."""
    nodes = b""
    its_offset = IORT_NODE_OFFSET
    if its:
        nodes += _node(IORT_ITS_GROUP_TYPE, 1, 0, IORT_ITS_GROUP.pack(its_count=1, its_id=0), [])
    smmu_offsets: dict[int, int] = {}
    for smmu in smmus:
        smmu_offsets[smmu.rc_index] = IORT_NODE_OFFSET + len(nodes)
        mappings = (
            [
                _mapping(smmu.segment << 16, its_offset),
                _mapping(0, its_offset, IORT_ID_SINGLE_MAPPING, count=0),
            ]
            if its
            else []
        )
        fixed = IORT_SMMUV3.pack(
            base=smmu.base,
            flags=SMMUV3_COHACC | (SMMUV3_DEVICEID_VALID if mappings else 0),
            reserved=0,
            vatos_address=0,
            model=0,
            event_gsiv=smmu.event_gsiv,
            pri_gsiv=0,
            gerr_gsiv=smmu.gerr_gsiv,
            sync_gsiv=0,
            proximity_domain=0,
            device_id_mapping_index=1 if mappings else 0,
        )
        nodes += _node(IORT_SMMUV3_TYPE, 5, smmu.rc_index, fixed, mappings)
    for rc in root_complexes:
        if rc.index in smmu_offsets:
            rc_mappings = [_mapping(0, smmu_offsets[rc.index])]
        elif its:
            rc_mappings = [_mapping(rc.segment << 16, its_offset)]
        else:
            rc_mappings = []
        fixed = IORT_ROOT_COMPLEX.pack(
            cache_coherency=1,
            hints=0,
            reserved=0,
            memory_flags=0b11,  # coherent, cacheable inner/outer write-back
            ats_attribute=0,
            segment=rc.segment,
            memory_address_limit=64,
            reserved2=bytes(3),
        )
        nodes += _node(IORT_ROOT_COMPLEX_TYPE, 3, rc.index, fixed, rc_mappings)
    count = int(its) + len(smmus) + len(root_complexes)
    body = IORT_BODY.pack(node_count=count, node_offset=IORT_NODE_OFFSET, reserved=0)
    return build_table(b"IORT", 5, body + nodes, STANDARD_FLAVOUR)


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
