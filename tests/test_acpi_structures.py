"""ACPI tables as declared structures (issue 17 item 6): every record type is one
field table that its encoder and its decoder both use, every typed entry round-trips
(encode -> decode -> equal), and the list of table kinds exists once."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import vmlayout.acpi.tables  # noqa: F401  (imports every table family)
from vmlayout.acpi.aml import ResourceTemplate
from vmlayout.acpi.cxl import CxlHostBridge, build_cedt, decode_cedt
from vmlayout.acpi.decode import decode_table
from vmlayout.acpi.dsdt import build_acpi_tables
from vmlayout.acpi.fadt import build_fadt, decode_fadt, fadt_of
from vmlayout.acpi.gtdt import Gtdt, build_gtdt, decode_gtdt
from vmlayout.acpi.iommu import (
    IommuUnit,
    IortRootComplex,
    IortSmmu,
    build_dmar,
    build_iort,
    build_ivrs,
    decode_dmar,
    decode_iort,
    decode_ivrs,
)
from vmlayout.acpi.madt import build_madt, decode_madt, madt_of
from vmlayout.acpi.mcfg import McfgEntry, build_mcfg, decode_mcfg
from vmlayout.acpi.pptt import build_pptt, decode_pptt_nodes, pptt_of
from vmlayout.acpi.resources import (
    DESCRIPTOR_TYPES,
    DWordMemory,
    Interrupt,
    IoPort,
    Memory32Fixed,
    QWordMemory,
    ResourceDescriptor,
    WordBusNumber,
    decode_resources,
)
from vmlayout.acpi.rsdp import build_rsdp, build_xsdt, decode_rsdp, decode_xsdt
from vmlayout.acpi.slit import build_slit, decode_slit
from vmlayout.acpi.srat import build_srat, decode_srat_entries, srat_of
from vmlayout.acpi.tables import TABLES, TABLES_BY_FILE, kind_of
from vmlayout.arch import Arch
from vmlayout.binfmt import Packed, Struct, packed_types
from vmlayout.config import config_from_dict
from vmlayout.platform import GicPlatform
from vmlayout.policy import resolve
from vmlayout.ranges import GIB, MIB, MemoryRange

ACPI = Path(__file__).resolve().parent.parent / "src" / "vmlayout" / "acpi"
RECORDS = sorted(
    (cls for cls in packed_types() if dataclasses.is_dataclass(cls)), key=lambda c: c.__name__
)


def _format_of(layout: Struct, name: str) -> str | Struct:
    return dict(layout.fields)[name]


def _values(fmt: str | Struct) -> st.SearchStrategy[Any]:
    """Any value a field of this format can hold."""
    if isinstance(fmt, Struct):
        raise AssertionError("nested records are drawn as their record type")
    if fmt.endswith("s"):
        return st.binary(min_size=int(fmt[:-1]), max_size=int(fmt[:-1]))
    bits = {"B": 8, "H": 16, "I": 32, "Q": 64}[fmt]
    return st.integers(0, (1 << bits) - 1)


def records(cls: type[Packed]) -> st.SearchStrategy[Any]:
    """Every instance of a record type, its fields drawn from their formats."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        fmt = _format_of(cls.LAYOUT, f.name)
        if isinstance(fmt, Struct):
            [nested] = [c for c in RECORDS if c.LAYOUT is fmt]
            fields[f.name] = records(nested)
        else:
            fields[f.name] = _values(fmt)
    return st.builds(cls, **fields)


def test_every_record_type_is_found() -> None:
    """The record types below are all the tables declare (a sample of each family)."""
    names = {cls.__name__ for cls in RECORDS}
    assert {"LocalApic", "Gicc", "MemoryAffinity", "GiccAffinity", "Fadt", "GenericAddress",
            "McfgEntry", "Ivhd11", "Drhd", "IdMapping", "Smmuv3", "Chbs", "CfmwsHeader",
            "Gtdt", "ProcessorNode"} <= names  # fmt: skip


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_a_records_field_table_covers_exactly_its_fields(cls: type[Packed]) -> None:
    """Every field of the table is the record's, fixed, or reserved: nothing is written
    or read outside the table, and no record field is missing from it."""
    own = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    fixed = {name for name, _ in cls.FIXED}
    reserved = {n for n in cls.LAYOUT.names if n.startswith("reserved")}
    assert own | fixed | reserved == set(cls.LAYOUT.names)
    assert not own & fixed and not own & reserved


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_a_record_round_trips_through_its_field_table(cls: type[Packed]) -> None:
    @settings(max_examples=25, deadline=None)
    @given(records(cls))
    def round_trip(record: Any) -> None:
        data = record.pack()
        assert len(data) == cls.LAYOUT.size
        assert cls.unpack(data) == record
        raw = cls.LAYOUT.unpack(data)
        assert all(raw[name] == value for name, value in cls.FIXED)
        reserved = [raw[n] for n in cls.LAYOUT.names if n.startswith("reserved")]
        assert all(value in (0, bytes(len(value) if isinstance(value, bytes) else 0))
                   for value in reserved)  # fmt: skip

    round_trip()


@contextmanager
def _reversed_layout(cls: type[Packed]) -> Iterator[None]:
    old = cls.LAYOUT
    cls.LAYOUT = Struct(old.name, tuple(reversed(old.fields)))
    try:
        yield
    finally:
        cls.LAYOUT = old


def _distinct(cls: type[Packed]) -> Any:
    """A record whose every field holds a value no other field, fixed ones included,
    holds (0x81, 0x82, …: above every type code and fixed length)."""
    values: dict[str, Any] = {}
    for i, f in enumerate(dataclasses.fields(cls), start=0x81):  # type: ignore[arg-type]
        fmt = _format_of(cls.LAYOUT, f.name)
        if isinstance(fmt, Struct):
            [nested] = [c for c in RECORDS if c.LAYOUT is fmt]
            values[f.name] = _distinct(nested)
        elif fmt.endswith("s"):
            values[f.name] = bytes((i,)) * int(fmt[:-1])
        else:
            values[f.name] = i
    return cls(**values)


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_the_encoder_and_the_decoder_use_the_one_field_table(cls: type[Packed]) -> None:
    """Reverse a record's field table and both directions follow it: the bytes change,
    the round trip still holds. An encoder or decoder with offsets of its own would
    break one or the other."""
    record = _distinct(cls)
    before = record.pack()
    with _reversed_layout(cls):
        after = record.pack()
        assert cls.unpack(after) == record
    assert cls.unpack(before) == record
    assert before != after


# --- resource descriptors --------------------------------------------------------------

U64, U32, U16 = (1 << 64) - 1, (1 << 32) - 1, (1 << 16) - 1


@st.composite
def _window(draw: st.DrawFn, top: int) -> tuple[int, int]:
    """(start, length) with 1 <= length <= top (the length field's range) and
    start + length - 1 <= top."""
    start = draw(st.integers(0, top))
    return start, draw(st.integers(1, min(top, top - start + 1)))


DESCRIPTORS: dict[type[ResourceDescriptor], st.SearchStrategy[ResourceDescriptor]] = {
    QWordMemory: _window(U64).flatmap(
        lambda w: st.builds(
            QWordMemory, st.just(w[0]), st.just(w[1]), st.integers(0, 255), st.integers(0, 255)
        )
    ),
    DWordMemory: _window(U32).map(lambda w: DWordMemory(*w)),
    WordBusNumber: _window(U16).map(lambda w: WordBusNumber(*w)),
    Memory32Fixed: _window(U32).flatmap(
        lambda w: st.builds(Memory32Fixed, st.just(w[0]), st.just(w[1]), st.booleans())
    ),
    Interrupt: st.builds(
        Interrupt, st.integers(0, U32), st.booleans(), st.booleans(), st.booleans(), st.booleans()
    ),
    IoPort: st.tuples(st.integers(0, U16), st.integers(0, U16)).flatmap(
        lambda mm: st.builds(
            IoPort,
            st.just(min(mm)),
            st.just(max(mm)),
            st.integers(0, 255),
            st.integers(0, 255),
            st.booleans(),
        )
    ),
}


def test_every_descriptor_type_has_a_round_trip_strategy() -> None:
    assert set(DESCRIPTORS) == set(DESCRIPTOR_TYPES.values())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(*DESCRIPTORS.values()), max_size=6))
def test_a_resource_template_decodes_to_its_descriptors(
    descriptors: list[ResourceDescriptor],
) -> None:
    buffer = ResourceTemplate(tuple(descriptors)).encode()
    # the Buffer object: opcode, one-byte PkgLength or more, the size integer, then data
    data = b"".join(d.encode() for d in descriptors) + bytes((0x79, 0))
    assert buffer.endswith(data)
    assert decode_resources(data, "test") == descriptors
    for d in descriptors:
        assert len(d.encode()) == type(d).LAYOUT.size


def test_the_descriptor_bytes_are_the_acpi_specs() -> None:
    """Hand-assembled from ACPI 6.5 §6.4.3.5.1 (QWord) and §6.4.2.5 (IO)."""
    qword = QWordMemory(0x1_0000_0000, 0x2000).encode()
    assert qword[:6] == bytes((0x8A, 43, 0, 0, 0x0C, 0x03))
    fields = [int.from_bytes(qword[6 + 8 * i : 14 + 8 * i], "little") for i in range(5)]
    assert fields == [0, 0x1_0000_0000, 0x1_0000_1FFF, 0, 0x2000]
    assert IoPort(0x3F8, 0x3F8, 1, 8).encode() == bytes((0x47, 1, 0xF8, 3, 0xF8, 3, 1, 8))


# --- whole tables: the encoder's typed model is what the decoder returns ----------------


@settings(max_examples=40, deadline=None)
@given(
    vp_count=st.integers(1, 300),
    aarch64=st.booleans(),
    ioapic=st.booleans(),
    pic=st.booleans(),
    pit=st.booleans(),
    msi=st.sampled_from(("its", "v2m")),
)
def test_madt_decodes_to_the_entries_it_was_built_from(
    vp_count: int, aarch64: bool, ioapic: bool, pic: bool, pit: bool, msi: str
) -> None:
    gic = GicPlatform(msi=msi)
    arch = Arch.AARCH64 if aarch64 else Arch.X86_64
    table = build_madt(vp_count, arch, gic, ioapic, pic, pit)
    assert decode_madt(decode_table(table)) == madt_of(vp_count, arch, gic, ioapic, pic, pit)


@settings(max_examples=40, deadline=None)
@given(
    memory=st.lists(
        st.tuples(st.integers(0, 1 << 20), st.integers(0, 1 << 20), st.integers(0, U32)).map(
            lambda t: (t[0] << 12, t[1] << 12, t[2])
        ),
        max_size=5,
    ),
    processors=st.lists(st.tuples(st.integers(0, 0x1FF), st.integers(0, U32)), max_size=5),
    aarch64=st.booleans(),
)
def test_srat_decodes_to_the_entries_it_was_built_from(
    memory: list[tuple[int, int, int]], processors: list[tuple[int, int]], aarch64: bool
) -> None:
    arch = Arch.AARCH64 if aarch64 else Arch.X86_64
    table = decode_table(build_srat(memory, processors, arch))
    assert decode_srat_entries(table) == srat_of(memory, processors, arch)


@settings(max_examples=20, deadline=None)
@given(vp_count=st.integers(1, 600))
def test_pptt_decodes_to_the_nodes_it_was_built_from(vp_count: int) -> None:
    nodes = decode_pptt_nodes(decode_table(build_pptt(vp_count)))
    assert [node for _, node in nodes] == pptt_of(vp_count)


@given(dsdt=st.integers(0, U64), aarch64=st.booleans(), vendor=st.integers(0, U64))
def test_fadt_decodes_to_the_fields_it_was_built_from(
    dsdt: int, aarch64: bool, vendor: int
) -> None:
    arch = Arch.AARCH64 if aarch64 else Arch.X86_64
    table = build_fadt(dsdt, arch, vendor)
    assert len(table) == 276  # the revision-6 FADT (ACPI 6.x §5.2.9)
    assert decode_fadt(decode_table(table)) == fadt_of(dsdt, arch, vendor)
    assert int.from_bytes(table[140:148], "little") == dsdt  # X_DSDT at offset 140


@given(ppi=st.integers(16, 31))
def test_gtdt_decodes_to_the_timer_it_was_built_from(ppi: int) -> None:
    assert decode_gtdt(decode_table(build_gtdt(ppi))) == Gtdt(ppi)


@given(st.lists(st.tuples(st.integers(0, 1 << 40), st.integers(0, U16), st.integers(0, 255),
                          st.integers(0, 255)), max_size=6))  # fmt: skip
def test_mcfg_decodes_to_the_entries_it_was_built_from(
    entries: list[tuple[int, int, int, int]],
) -> None:
    assert decode_mcfg(decode_table(build_mcfg(entries))) == [McfgEntry(*e) for e in entries]


@given(n=st.integers(1, 12), data=st.data())
def test_slit_decodes_to_the_matrix_it_was_built_from(n: int, data: st.DataObject) -> None:
    edits = data.draw(
        st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(10, 254)))
    )
    expected = [[10 if i == j else 20 for j in range(n)] for i in range(n)]
    for src, dst, distance in edits:
        expected[src][dst] = distance
    assert decode_slit(decode_table(build_slit(n, tuple(edits)))) == expected


@given(st.lists(st.integers(0, U64), max_size=20), st.integers(0, U64))
def test_xsdt_and_rsdp_decode_to_the_addresses_they_were_built_from(
    gpas: list[int], xsdt: int
) -> None:
    assert decode_xsdt(decode_table(build_xsdt(gpas))) == gpas
    rsdp = decode_rsdp(build_rsdp(xsdt))
    assert (rsdp.xsdt_address, rsdp.checksum_ok, rsdp.revision) == (xsdt, True, 2)


@st.composite
def iommu_units(draw: st.DrawFn) -> list[IommuUnit]:
    out = []
    for _ in range(draw(st.integers(0, 4))):
        start = draw(st.integers(0, 255))
        end = draw(st.integers(start, 255))
        base = draw(st.integers(0, (1 << 52) - 1)) << 12
        out.append(IommuUnit(base, draw(st.integers(0, U16)), start, end))
    return out


@settings(max_examples=50, deadline=None)
@given(units=iommu_units(), width=st.integers(1, 64))
def test_ivrs_and_dmar_decode_to_the_units_they_were_built_from(
    units: list[IommuUnit], width: int
) -> None:
    _, ivhds = decode_ivrs(decode_table(build_ivrs(units)))
    assert [(u.base, u.segment, u.buses, u.ioapic) for u in ivhds] == [
        (u.base, u.segment, (u.start_bus, u.end_bus), u.covers_ioapic) for u in units
    ]
    decoded_width, drhds = decode_dmar(decode_table(build_dmar(units, width)))
    assert decoded_width == width
    assert [(u.base, u.segment, u.ioapic) for u in drhds] == [
        (u.base, u.segment, u.covers_ioapic) for u in units
    ]


@settings(max_examples=50, deadline=None)
@given(count=st.integers(1, 6), its=st.booleans(), data=st.data())
def test_iort_decodes_to_the_nodes_it_was_built_from(
    count: int, its: bool, data: st.DataObject
) -> None:
    complexes = [IortRootComplex(i, data.draw(st.integers(0, U16))) for i in range(count)]
    with_smmu = data.draw(st.sets(st.integers(0, count - 1)))
    smmus = [
        IortSmmu(i, complexes[i].segment, (0x1000 + i) << 12, 900 + 2 * i, 901 + 2 * i)
        for i in sorted(with_smmu)
    ]
    nodes = decode_iort(decode_table(build_iort(complexes, smmus, its)))
    assert [n.kind for n in nodes] == ["its_group"] * its + ["smmuv3"] * len(smmus) + [
        "root_complex"
    ] * count
    assert [(n.identifier, n.base, n.gsivs) for n in nodes if n.kind == "smmuv3"] == [
        (s.rc_index, s.base, (s.event_gsiv, s.gerr_gsiv)) for s in smmus
    ]
    assert [(n.identifier, n.segment) for n in nodes if n.kind == "root_complex"] == [
        (c.index, c.segment) for c in complexes
    ]


@given(st.lists(st.integers(0, 1000), unique=True, max_size=4), st.integers(0, U16))
def test_cedt_decodes_to_the_windows_it_was_built_from(uids: list[int], restrictions: int) -> None:
    bridges = [
        CxlHostBridge(
            uid,
            MemoryRange((uid + 1) * 4 * GIB, (uid + 1) * 4 * GIB + 256 * MIB),
            MemoryRange(uid * 0x1_0000, (uid + 1) * 0x1_0000),
        )
        for uid in uids
    ]
    windows = decode_cedt(decode_table(build_cedt(bridges, restrictions)))
    assert [(w.uid, w.hdm, w.chbcr) for w in windows] == [(b.uid, b.hdm, b.chbcr) for b in bridges]


# --- the one list of table kinds -------------------------------------------------------

CONFIGS: list[dict[str, Any]] = [
    {},
    {"arch": "aarch64", "node_mem_sizes": [GIB, GIB]},
    {"pcie_root_complexes": [{"name": "rc0", "iommu": "amd_vi", "cxl": {"hdm_size": 4 * GIB}}]},
    {"pcie_root_complexes": [{"name": "rc0", "iommu": "intel_vtd"}]},
    {"arch": "aarch64", "pcie_root_complexes": [{"name": "rc0", "iommu": "smmu"}]},
]


@pytest.mark.parametrize("config", CONFIGS)
def test_every_emitted_table_is_a_listed_kind_its_decoder_reads(config: dict[str, Any]) -> None:
    files = build_acpi_tables(resolve(config_from_dict(config)))
    for name, data in files.items():
        kind = TABLES_BY_FILE[name]
        assert kind_of(data) is kind
        if kind.decode is not None:
            kind.decode(decode_table(data, name))


def test_the_listed_kinds_are_every_table_emit_acpi_can_write() -> None:
    written = set()
    for config in CONFIGS:
        written |= set(build_acpi_tables(resolve(config_from_dict(config))))
    assert written == {kind.file for kind in TABLES}


def test_each_kind_names_the_module_declaring_its_decoder() -> None:
    for kind in TABLES:
        module = importlib.import_module(kind.module)
        if kind.decode is not None and kind.file not in ("DSDT.aml", "SSDT.aml"):
            assert kind.decode.__module__ == module.__name__, kind
            assert kind.summarize is not None


def _signature_literals(path: Path) -> set[str]:
    names = {kind.name for kind in TABLES} | {kind.file for kind in TABLES}
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            text = node.value.decode("latin-1") if isinstance(node.value, bytes) else node.value
            if text.strip() in names:
                found.add(text.strip().removesuffix(".aml"))
    return found


#: Modules that still name the table files one by one: `dsdt.py` builds each table in
#: the reference's append order; the cross-check's views are to iterate the registry.
_NAMING_TABLES = {"acpi/tables.py", "acpi/dsdt.py", "inspect/crosscheck.py"}


def test_no_module_but_the_catalog_keeps_a_list_of_table_kinds() -> None:
    """A module naming four or more table kinds is keeping a list of its own."""
    package = ACPI.parent
    offenders = {
        str(path.relative_to(package)): sorted(found)
        for path in package.rglob("*.py")
        if len(found := _signature_literals(path)) >= 4
        and str(path.relative_to(package)) not in _NAMING_TABLES
    }
    assert offenders == {}


#: The AML object model encodes AML integers and package lengths (not records), and
#: the AML reader decodes them; MPIDR and the SRAT's split proximity domain are values.
_BYTE_ARITHMETIC = {"aml.py": 3, "decode.py": 1, "srat.py": 2}


def test_no_encoder_or_decoder_has_raw_offsets() -> None:
    """Records are packed and unpacked only through field tables: no `struct` use and
    no hand-placed integer bytes outside the AML term encoding."""
    for path in sorted(ACPI.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "import struct" not in text and "unpack_from" not in text, path.name
        count = text.count("from_bytes(") + text.count("to_bytes(")
        assert count == _BYTE_ARITHMETIC.get(path.name, 0), path.name
