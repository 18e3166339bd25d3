"""Spec 01 §2: MemoryRange semantics; size parsing and address formatting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmlayout.errors import VmLayoutError
from vmlayout.ranges import (
    EMPTY,
    MAX_ADDRESS,
    MemoryRange,
    format_address,
    format_size,
    parse_size,
    subtract_ranges,
)


def test_empty_range_elsewhere_is_empty_but_not_equal_to_empty() -> None:
    high = MemoryRange(0x1_0000_0000, 0x1_0000_0000)
    assert high.is_empty()
    assert high != EMPTY
    assert EMPTY.is_empty()


def test_overlap_is_strict_at_boundaries() -> None:
    assert not MemoryRange(0, 0x1000).overlaps(MemoryRange(0x1000, 0x2000))
    assert MemoryRange(0, 0x2000).overlaps(MemoryRange(0x1000, 0x3000))


def test_empty_range_inside_a_range_overlaps_it() -> None:
    assert MemoryRange(0x5000, 0x5000).overlaps(MemoryRange(0, 0xA000))


def test_intersection_and_containment() -> None:
    a, b = MemoryRange(0, 0x3000), MemoryRange(0x2000, 0x5000)
    assert a.intersection(b) == MemoryRange(0x2000, 0x3000)
    assert MemoryRange(0, 0x1000).intersection(MemoryRange(0x2000, 0x3000)) == EMPTY
    assert MemoryRange(0, 0x5000).contains(b)
    assert a.contains_addr(0x2FFF) and not a.contains_addr(0x3000)


def test_text_form_is_lower_case_hex() -> None:
    assert str(MemoryRange(0x1000, 0x3000)) == "0x1000-0x3000"


@pytest.mark.parametrize(
    ("start", "end"), [(1, 0x1000), (0x2000, 0x1000), (0, MAX_ADDRESS + 0x1000), (-0x1000, 0)]
)
def test_invalid_ranges_are_rejected(start: int, end: int) -> None:
    with pytest.raises(ValueError):
        MemoryRange(start, end)


def test_subtract_ranges() -> None:
    out = list(
        subtract_ranges(
            [MemoryRange(0, 0x10000)], [MemoryRange(0x1000, 0x2000), MemoryRange(0x8000, 0x10000)]
        )
    )
    assert out == [MemoryRange(0, 0x1000), MemoryRange(0x2000, 0x8000)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        (4096, 4096),
        ("0x1000", 4096),
        ("4G", 4 << 30),
        ("4GiB", 4 << 30),
        ("512 MiB", 512 << 20),
        ("2M", 2 << 20),
        ("2m", 2 << 20),
        ("1T", 1 << 40),
        ("1PiB", 1 << 50),
        ("64K", 64 << 10),
        ("1.5G", 3 << 29),
        ("4096", 4096),
    ],
)
def test_parse_size_accepts_qemu_binary_units(text: object, value: int) -> None:
    assert parse_size(text, "field") == value


@pytest.mark.parametrize("text", ["4GB", "-1", -1, "1.5K1", "abc", "", "0.3K", True, 1.5, "4 XB"])
def test_parse_size_rejects_other_forms_naming_the_field(text: object) -> None:
    with pytest.raises(VmLayoutError, match=r"^node_mem_sizes\[0\]: ") as caught:
        parse_size(text, "node_mem_sizes[0]")
    assert caught.value.kind == "invalid_config"


def test_format_address_groups_hex_digits_by_four() -> None:
    assert format_address(0x1_0000_0000) == "0x1_0000_0000"
    assert format_address(0) == "0x0"


def test_format_size_uses_exact_binary_units() -> None:
    assert format_size(512 << 20) == "512 MiB"
    assert format_size(3 << 30) == "3 GiB"
    assert format_size(0x3000) == "12 KiB"


@given(st.integers(0, 1 << 40))
def test_parse_size_round_trips_integers_and_hex(value: int) -> None:
    assert parse_size(value, "x") == value
    assert parse_size(hex(value), "x") == value
