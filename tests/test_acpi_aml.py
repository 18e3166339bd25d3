"""AML encoding (spec 04 §1 and §4): every worked example, byte for byte."""

from __future__ import annotations

import pytest

from vmlayout.acpi.aml import (
    And,
    Buffer,
    Device,
    DWordMemory,
    EisaId,
    Else,
    If,
    Integer,
    Interrupt,
    IoPort,
    Memory32Fixed,
    Method,
    Name,
    Package,
    QWordMemory,
    ResourceTemplate,
    Return,
    String,
    WordBusNumber,
    encode_integer,
    encode_name,
    encode_pkglength,
    seg,
)
from vmlayout.acpi.dsdt import dsdt_table, pci0_device, vmod_device
from vmlayout.errors import VmLayoutError
from vmlayout.layout import ChipsetMmioRanges
from vmlayout.ranges import EMPTY, MemoryRange


def hx(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("FOO", "46 4F 4F 5F"),
        ("\\FOO", "5C 46 4F 4F 5F"),
        ("^FOO", "5E 46 4F 4F 5F"),
        ("FOO.BAR", "2E 46 4F 4F 5F 42 41 52 5F"),
        ("\\_SB.FOO", "5C 2E 5F 53 42 5F 46 4F 4F 5F"),
        ("\\_SB.VMOD", "5C 2E 5F 53 42 5F 56 4D 4F 44"),
        ("\\_SB.VMOD.VMBS", "5C 2F 03 5F 53 42 5F 56 4D 4F 44 56 4D 42 53"),
        ("FOO.BAR.BAZ.BLAM", "2F 04 46 4F 4F 5F 42 41 52 5F 42 41 5A 5F 42 4C 41 4D"),
    ],
)
def test_name_strings(path: str, expected: str) -> None:
    assert encode_name(path) == hx(expected)


@pytest.mark.parametrize("path", ["", "foo", "TOOLONG", "1ABC", "\\^FOO", "FOO.^BAR", "A..B"])
def test_invalid_names_are_rejected(path: str) -> None:
    with pytest.raises(VmLayoutError):
        encode_name(path)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "01"),
        (62, "3F"),
        (63, "41 04"),
        (96, "42 06"),
        (135, "49 08"),
        (257, "43 10"),
        (4093, "4F FF"),
        (4094, "81 00 01"),
    ],
)
def test_pkglength_counts_its_own_bytes(n: int, expected: str) -> None:
    assert encode_pkglength(n) == hx(expected)


def test_pkglength_edges_use_the_correct_rule_not_the_references() -> None:
    # total = n + k must fit: n = 2^20 - 2 needs 4 bytes (total 2^20 + 2)
    assert len(encode_pkglength((1 << 20) - 2)) == 4
    assert len(encode_pkglength((1 << 20) - 4)) == 3
    with pytest.raises(VmLayoutError):
        encode_pkglength((1 << 28) - 4)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "00"),
        (1, "01"),
        (2, "0A 02"),
        (0x100, "0B 00 01"),
        (0x10000, "0C 00 00 01 00"),
        (0x1_0000_0000, "0E 00 00 00 00 01 00 00 00"),
        ((1 << 64) - 1, "0E FF FF FF FF FF FF FF FF"),
    ],
)
def test_integers_use_the_smallest_encoding(value: int, expected: str) -> None:
    assert encode_integer(value) == hx(expected)


def test_strings_buffers_packages() -> None:
    assert String("hello").encode() == hx("0D 68 65 6C 6C 6F 00")
    assert Buffer(b"").encode() == hx("11 02 00")
    assert Buffer(hx("10 00 00 00 00 00 00 00")).encode() == hx(
        "11 0B 0A 08 10 00 00 00 00 00 00 00"
    )
    assert Package.of_bytes([0, 0]).encode() == hx("12 04 02 00 00")
    assert Package.of_bytes([1, 2, 3, 4]).encode() == hx("12 06 04 01 02 03 04")
    big = Package.of_bytes([0] * 0xFF).encode()
    assert big[:4] == hx("12 42 10 FF") and len(big) == 259


def test_named_objects_devices_and_methods() -> None:
    assert Name("FOO", Package.of_bytes([0])).encode() == hx("08 46 4F 4F 5F 12 03 01 00")
    assert Device("DEV", (Name("FOO", Package.of_bytes([0])),)).encode() == hx(
        "5B 82 0E 44 45 56 5F 08 46 4F 4F 5F 12 03 01 00"
    )
    assert Method("_DIS", 0, (And(seg("STA_"), Integer(0x0D), seg("STA_")),)).encode() == hx(
        "14 11 5F 44 49 53 00 7B 53 54 41 5F 0A 0D 53 54 41 5F"
    )
    assert Method("_STA", 0, (Return(Integer(0x0F)),)).encode() == hx(
        "14 09 5F 53 54 41 00 A4 0A 0F"
    )
    assert If(Integer(1), ()).encode() == hx("A0 02 01")
    assert Else((Return(Integer(1)),)).encode() == hx("A1 03 A4 01")


@pytest.mark.parametrize(
    ("eisa", "expected"),
    [
        ("PNP0003", "0C 41 D0 00 03"),
        ("PNP0501", "0C 41 D0 05 01"),
        ("PNP0B00", "0C 41 D0 0B 00"),
        ("PNP0A03", "0C 41 D0 0A 03"),
        ("PNP0A08", "0C 41 D0 0A 08"),
        ("PNP0C02", "0C 41 D0 0C 02"),
    ],
)
def test_eisa_ids(eisa: str, expected: str) -> None:
    assert EisaId(eisa).encode() == hx(expected)


def test_resource_descriptors() -> None:
    assert Memory32Fixed(0xFEE00000, 0x1000).encode() == hx("86 09 00 01 00 00 E0 FE 00 10 00 00")
    assert IoPort(0x3F8, 0x3F8, 1, 8).encode() == hx("47 01 F8 03 F8 03 01 08")
    assert Interrupt(4, edge=True).encode() == hx("89 06 00 03 01 04 00 00 00")
    assert Interrupt(4, edge=False).encode()[3] == 0x01
    assert WordBusNumber(0, 1).encode() == hx("88 0D 00 02 0C 00 00 00 00 00 00 00 00 00 01 00")
    assert DWordMemory(0x1000_0000, 0x1000_0000).encode() == hx(
        "87 17 00 00 0C 03 00000000 00000010 FFFFFF1F 00000000 00000010"
    )
    assert ResourceTemplate(()).encode() == hx("11 05 0A 02 79 00")
    qword = QWordMemory(0x1_0000_0000, 0x1_0000_0000).encode()
    assert qword == hx(
        "8A 2B 00 00 0C 03 0000000000000000 0000000001000000 FFFFFFFF01000000"
        " 0000000000000000 0000000001000000"
    )
    assert Name(
        "_CRS", ResourceTemplate((QWordMemory(0x1_0000_0000, 0x1_0000_0000),))
    ).encode() == (hx("08 5F 43 52 53 11 33 0A 30") + qword + hx("79 00"))


def test_an_empty_qword_range_is_rejected() -> None:
    with pytest.raises(VmLayoutError):
        QWordMemory(0x1000, 0).encode()


LOW = MemoryRange(0xF800_0000, 0x1_0000_0000)
HIGH = MemoryRange(0x1_4000_0000, 0x1_6000_0000)
VMOD_41 = hx(
    "5B 82 49 08 5C 2E 5F 53 42 5F 56 4D 4F 44 08 5F"
    "48 49 44 0D 41 43 50 49 30 30 30 34 00 08 5F 55"
    "49 44 00 08 5F 43 52 53 11 42 06 0A 5E 8A 2B 00"
    "00 0C 03 00 00 00 00 00 00 00 00 00 00 00 F8 00"
    "00 00 00 FF FF FF FF 00 00 00 00 00 00 00 00 00"
    "00 00 00 00 00 00 08 00 00 00 00 8A 2B 00 00 0C"
    "03 00 00 00 00 00 00 00 00 00 00 00 40 01 00 00"
    "00 FF FF FF 5F 01 00 00 00 00 00 00 00 00 00 00"
    "00 00 00 00 20 00 00 00 00 79 00"
)
VMOD_42 = hx(
    "5B 82 4A 05 5C 2E 5F 53 42 5F 56 4D 4F 44 08 5F"
    "48 49 44 0D 41 43 50 49 30 30 30 34 00 08 5F 55"
    "49 44 00 08 5F 43 52 53 11 33 0A 30 8A 2B 00 00"
    "0C 03 00 00 00 00 00 00 00 00 00 00 00 F8 00 00"
    "00 00 FF FF FF FF 00 00 00 00 00 00 00 00 00 00"
    "00 00 00 00 00 08 00 00 00 00 79 00"
)


def test_vmod_with_both_windows_is_the_139_byte_example() -> None:
    assert vmod_device(ChipsetMmioRanges(LOW, HIGH, EMPTY)).encode() == VMOD_41


def test_vmod_skips_an_empty_high_window() -> None:
    empty_high = MemoryRange(0x1_0000_0000, 0x1_0000_0000)
    assert vmod_device(ChipsetMmioRanges(LOW, empty_high, EMPTY)).encode() == VMOD_42


def test_vmod_never_lists_the_vtl2_window() -> None:
    vtl2 = MemoryRange(0x2_0000_0000, 0x2_1000_0000)
    assert vmod_device(ChipsetMmioRanges(LOW, HIGH, vtl2)).encode() == VMOD_41


def test_vmod_in_a_dsdt_has_the_spec_header_and_checksum() -> None:
    table = dsdt_table([vmod_device(ChipsetMmioRanges(LOW, HIGH, EMPTY))])
    assert table[:36] == hx(
        "44 53 44 54 AF 00 00 00 02 F4 4D 53 46 54 56 4D"
        "44 53 44 54 30 31 00 00 01 00 00 00 4D 53 46 54 00 00 00 05"
    )
    empty_high = MemoryRange(0x1_0000_0000, 0x1_0000_0000)
    small = dsdt_table([vmod_device(ChipsetMmioRanges(LOW, empty_high, EMPTY))])
    assert (len(small), small[9]) == (0x80, 0xEA)


def test_pci0_crs_holds_bus_io_and_both_windows() -> None:
    device = pci0_device(ChipsetMmioRanges(LOW, HIGH, EMPTY)).encode()
    crs = hx("08 5F 43 52 53 11 4A 07 0A 76 88 0D 00 02 0C 00 00 00 00 00 00 00 00 00 01 00")
    crs += hx("47 01 F8 0C F8 0C 01 08") + VMOD_41[45:137] + hx("79 00")
    assert device.endswith(crs)
    assert hx("14 13 5F 4F 53 43 04 A4 11 0B 0A 08 10 00 00 00 00 00 00 00") in device
    empty_high = MemoryRange(0x1_0000_0000, 0x1_0000_0000)
    small = pci0_device(ChipsetMmioRanges(LOW, empty_high, EMPTY)).encode()
    assert hx("08 5F 43 52 53 11 4C 04 0A 48") in small


def test_pci0_rejects_an_empty_low_window() -> None:
    with pytest.raises(VmLayoutError):
        pci0_device(ChipsetMmioRanges(MemoryRange(0x1_0000_0000, 0x1_0000_0000), HIGH, EMPTY))
