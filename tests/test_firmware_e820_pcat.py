"""Linux E820 (spec 03 §6, §9.3) and PCAT BIOS values (§5, §9.2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.cli import assert_one_line_error, run_cli
from tests.vectors import PROJECT_VECTORS, read_cases
from vmlayout.config import config_from_dict
from vmlayout.errors import VmLayoutError
from vmlayout.firmware.e820 import ENTRY, build_e820, decode_e820, encode_e820
from vmlayout.firmware.pcat import PcatConfig, PcatItem, cmos_checksums, decode_cmos
from vmlayout.layout import ChipsetMmioRanges, new
from vmlayout.policy import ResolvedLayout, resolve
from vmlayout.ranges import EMPTY, FOUR_GIB, GIB, MIB, MemoryRange


def case(ram: int, high: int = 512 * MIB) -> ResolvedLayout:
    return resolve(
        config_from_dict(
            {"node_mem_sizes": [ram], "chipset_high_mmio_size": high, "pcie_root_complexes": []}
        )
    )


LOW_TABLE = [(0x0, 0x19000, 1), (0x19000, 0x2000, 3), (0x1B000, 0x1000, 2), (0x1C000, 0xC4000, 1)]
BIOS = [(0xE0000, 0x20000, 2)]


@pytest.mark.parametrize(
    ("ram", "high", "tail"),
    [
        (2 * GIB, 512 * MIB, [(0x100000, 0x7FF0_0000, 1)]),
        (4 * GIB, 512 * MIB, [(0x100000, 0xBFF0_0000, 1), (FOUR_GIB, 0x4000_0000, 1)]),
        (16 * GIB, 512 * MIB, [(0x100000, 0xBFF0_0000, 1), (FOUR_GIB, 0x3_4000_0000, 1)]),
        (16 * GIB, 0, [(0x100000, 0xBFF0_0000, 1), (FOUR_GIB, 0x3_4000_0000, 1)]),
    ],
)
def test_e820_of_the_worked_examples(ram: int, high: int, tail: list[tuple[int, int, int]]) -> None:
    entries = build_e820(case(ram, high).memory_layout, acpi_len=0x1800, smbios_len=0x100)
    assert [(e.addr, e.size, e.type) for e in entries] == LOW_TABLE + BIOS + tail


def test_without_smbios_the_reserved_entry_disappears() -> None:
    entries = build_e820(case(2 * GIB).memory_layout, acpi_len=0x1800, smbios_len=0)
    assert (entries[2].addr, entries[2].size, entries[2].type) == (0x1B000, 0xC5000, 1)


def test_additional_pages_are_reserved_after_smbios() -> None:
    entries = build_e820(
        case(2 * GIB).memory_layout, acpi_len=0x1800, smbios_len=0x100, additional_page_count=2
    )
    assert [(e.addr, e.size, e.type) for e in entries[3:5]] == [
        (0x1C000, 0x2000, 2),
        (0x1E000, 0xC2000, 1),
    ]


def test_chipset_windows_never_appear_in_e820() -> None:
    r = case(16 * GIB)
    entries = build_e820(r.memory_layout)
    assert not any(
        MemoryRange(e.addr, e.end).overlaps(w)
        for e in entries
        for w in (r.chipset.low, r.chipset.high)
    )


def test_low_tables_beyond_the_rsdp_are_rejected() -> None:
    with pytest.raises(VmLayoutError) as caught:
        build_e820(case(2 * GIB).memory_layout, acpi_len=0xC8000)
    assert caught.value.kind == "low_tables_too_large"


def test_more_than_128_entries_are_rejected() -> None:
    gaps = [MemoryRange(GIB * (2 * i + 1), GIB * (2 * i + 2)) for i in range(130)]
    layout = new(131 * GIB, gaps)
    with pytest.raises(VmLayoutError) as caught:
        build_e820(layout)
    assert caught.value.kind == "too_many_memory_ranges"


def test_e820_entries_are_20_byte_little_endian_records() -> None:
    entries = build_e820(case(2 * GIB).memory_layout)
    raw = encode_e820(entries)
    assert ENTRY.size == 20 and len(raw) == 20 * len(entries)
    assert raw[:20] == (0).to_bytes(8, "little") + (0x19000).to_bytes(8, "little") + b"\x01\0\0\0"
    assert decode_e820(raw) == entries


def test_a_torn_e820_file_is_rejected() -> None:
    with pytest.raises(VmLayoutError):
        decode_e820(bytes(21))


# --- PCAT -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ram", "expected"),
    [
        (2 * GIB, {0x00: 0x20_0000, 0x0D: 0, 0x20: 0x1000, 0x23: 0x800}),
        (4 * GIB, {0x00: 0x30_0000, 0x0D: 0x400, 0x20: 0x1400, 0x23: 0xC00}),
        (16 * GIB, {0x00: 0x30_0000, 0x0D: 0x3400, 0x20: 0x4400, 0x23: 0xC00}),
    ],
)
def test_pcat_items_of_cases_a_to_c(ram: int, expected: dict[int, int]) -> None:
    r = case(ram)
    items = {int(k): v for k, v in PcatConfig(r.memory_layout, r.chipset).items().items()}
    assert items[PcatItem.PCI_IO_GAP_START] == 0xF800_0000
    assert items[PcatItem.MEMORY_ABOVE_HIGH_MMIO] == 0
    assert items[PcatItem.HIGH_MMIO_GAP_LENGTH_IN_MB] == 0x1FF  # one less, on purpose
    assert {k: items[k] for k in expected} == expected


def test_pcat_rejects_an_empty_high_window() -> None:
    r = case(16 * GIB, high=0)
    with pytest.raises(VmLayoutError) as caught:
        PcatConfig(r.memory_layout, r.chipset)
    assert caught.value.kind == "incorrect_mmio_holes"


@pytest.mark.parametrize(
    ("ram", "replies"), [(4 * GIB, (0x2001, 0x0, 0x1)), (16 * GIB, (0x1_A001, 0x0, 0x1))]
)
def test_e820_helper_reports_the_second_range(ram: int, replies: tuple[int, ...]) -> None:
    r = case(ram)
    pcat = PcatConfig(r.memory_layout, r.chipset)
    assert tuple(pcat.e820_helper(0, n)[0] for n in range(3)) == replies
    assert pcat.e820_helper(1, 0) == (0, True)  # beyond the last range: 0 + warning


def test_e820_helper_with_one_range_is_silent() -> None:
    r = case(2 * GIB)
    assert PcatConfig(r.memory_layout, r.chipset).e820_helper(0, 0) == (0, False)
    assert PcatConfig(r.memory_layout, r.chipset).e820_helper(1, 0) == (0, True)


def test_e820_helper_read_counts_past_the_start_high_word_warn() -> None:
    r = case(4 * GIB)
    assert PcatConfig(r.memory_layout, r.chipset).e820_helper(0, 3) == (0, True)


def test_cmos_of_the_reference_unit_test_with_1_gib_first_range() -> None:
    """§5.6: ram[0] = [0, 1 GiB) gives extended memory 1024 MiB: 0x17 = 0x00, 0x18 = 0x04."""
    low = MemoryRange(FOUR_GIB - 128 * MIB, FOUR_GIB)
    high = MemoryRange(FOUR_GIB, FOUR_GIB + 512 * MIB)
    cmos = PcatConfig(new(GIB, [low, high]), ChipsetMmioRanges(low, high, EMPTY))
    assert cmos.cmos_memory_bytes()[0x17] == 0x00 and cmos.cmos_memory_bytes()[0x18] == 0x04


@pytest.mark.parametrize(("ram", "msb"), [(2 * GIB, 0x08), (4 * GIB, 0x0C), (16 * GIB, 0x0C)])
def test_cmos_memory_bytes(ram: int, msb: int) -> None:
    r = case(ram)
    cmos = PcatConfig(r.memory_layout, r.chipset).cmos_memory_bytes()
    assert cmos == {0x15: 0x80, 0x16: 0x02, 0x17: 0x00, 0x18: msb}


def test_legacy_layout_e_counts_ram_above_the_high_window() -> None:
    low = MemoryRange(FOUR_GIB - 128 * MIB, FOUR_GIB)
    high = MemoryRange(FOUR_GIB, FOUR_GIB + 512 * MIB)
    layout = new(8 * GIB, [low, high])
    items = PcatConfig(layout, ChipsetMmioRanges(low, high, EMPTY)).items()
    assert items[PcatItem.MEMORY_ABOVE_HIGH_MMIO] == 4224
    assert items[PcatItem.HIGH_MMIO_GAP_BASE_IN_MB] == 4096
    assert items[PcatItem.MEMORY_AMOUNT_ABOVE_4GB] == 4224
    assert items[PcatItem.INITIAL_MEGABYTES_BELOW_GAP] == 3968


# --- the initial CMOS image (§5.6) -----------------------------------------------------------

#: The reference's unit-test image (`default_cmos_values` with ram[0] = [0, 1 GiB)).
REFERENCE_CMOS_1_GIB = bytes.fromhex(
    "00000000000000000000000000000000400000201f8002000430300000000000"
    "0000000000000030302607070707020700000000000000000000108600400b97"
    "00000000000000000000000000481a1971a91800a8f14976140180930040030000"
    "085aacfe1032547698bae400000000000003"
).ljust(256, b"\0")


def legacy_pcat(first_ram: int) -> PcatConfig:
    low = MemoryRange(FOUR_GIB - 128 * MIB, FOUR_GIB)
    high = MemoryRange(FOUR_GIB, FOUR_GIB + 512 * MIB)
    return PcatConfig(new(first_ram, [low, high]), ChipsetMmioRanges(low, high, EMPTY))


def test_cmos_image_of_the_reference_unit_test() -> None:
    assert legacy_pcat(GIB).cmos_image() == REFERENCE_CMOS_1_GIB


def test_cmos_checksum_is_the_byte_sum_of_0x10_to_0x2d_stored_msb_first() -> None:
    """Basic: Σ bytes 0x10..0x2D at 0x2E (MSB), 0x2F (LSB); extended: Σ 0x37..0x3D and
    0x40..0x7F at 0x3E/0x3F. The reference image: 0x0207 and 0x0B97."""
    image = REFERENCE_CMOS_1_GIB
    assert sum(image[0x10:0x2E]) == 0x0207 and image[0x2E:0x30] == b"\x02\x07"
    assert sum(image[0x37:0x3E]) + sum(image[0x40:0x80]) == 0x0B97
    assert image[0x3E:0x40] == b"\x0b\x97"
    assert cmos_checksums(image) == (0x0207, 0x0B97)


@given(st.integers(1, 3 * 1024).map(lambda mib: mib * MIB))
def test_every_cmos_image_carries_valid_checksums_and_the_first_range(first: int) -> None:
    fields = decode_cmos(legacy_pcat(first).cmos_image())
    assert fields["checksum_ok"] and fields["extended_checksum_ok"]
    assert fields["extended_memory_mib"] == first >> 20
    assert fields["base_memory_kib"] == 640


def test_a_first_ram_range_of_64_gib_does_not_fit_the_cmos() -> None:
    """Extended memory is a 16-bit MiB count: 64 GiB is 0x10000 MiB, one too many."""
    # a low chipset window reaching down to 256 MiB leaves no 1 GiB-aligned RAM below it
    config = {"node_mem_sizes": [80 * GIB], "chipset_low_mmio_size": 0xF000_0000}
    r = resolve(config_from_dict(config))
    assert r.memory_layout.ram[0].range.size >= 64 * GIB
    with pytest.raises(VmLayoutError) as caught:
        PcatConfig(r.memory_layout, r.chipset)
    assert caught.value.kind == "pcat_first_ram_too_large"
    assert "64 GiB" in caught.value.message


def test_a_corrupted_cmos_byte_breaks_its_checksum() -> None:
    image = bytearray(legacy_pcat(GIB).cmos_image())
    image[0x17] ^= 1
    assert not decode_cmos(bytes(image))["checksum_ok"]


def test_e820_refuses_a_layout_without_ram_at_zero() -> None:
    config = {"node_mem_sizes": [2 * GIB], "chipset_low_mmio_size": 0xF000_0000}
    r = resolve(config_from_dict(config))
    assert r.memory_layout.ram[0].range.start == FOUR_GIB
    with pytest.raises(VmLayoutError) as caught:
        build_e820(r.memory_layout)
    assert caught.value.kind == "e820_requires_low_ram"
    assert "first RAM range" in caught.value.message


@pytest.mark.parametrize("view", ["e820", "pcat"])
def test_emit_json_prints_exactly_a_vector_expect(tmp_path: Path, view: str) -> None:
    cases = read_cases(PROJECT_VECTORS / f"{view}.jsonl")
    case = next(
        c for c in cases if "error" not in c["expect"] and len(c["config"]["node_mem_sizes"]) > 1
    )
    config = tmp_path / "config.json"
    config.write_text(json.dumps(case["config"]))
    result = run_cli("emit", view, config, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == case["expect"]


@pytest.mark.parametrize(
    ("view", "kind"), [("e820", "e820_requires_low_ram"), ("pcat", "pcat_first_ram_too_large")]
)
def test_configs_the_reference_panics_on_are_one_line_errors(
    tmp_path: Path, view: str, kind: str
) -> None:
    cases = read_cases(PROJECT_VECTORS / f"{view}.jsonl")
    case = next(c for c in cases if c["expect"].get("error") == "reference_panicked")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(case["config"]))
    assert_one_line_error(run_cli("emit", view, config, "--format", "json"), kind)
