"""UEFI config blob (spec 03 §7, §9.4): byte layout, round trip and a decoder fuzz."""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.machines import vm_config, with_vm
from vmlayout.config import config_from_dict
from vmlayout.errors import VmLayoutError
from vmlayout.firmware.uefi import (
    UefiOptions,
    decode_config_blob,
    encode_config_blob,
    encode_layout_blob,
    uefi_blob_of,
)
from vmlayout.layout import ChipsetMmioRanges
from vmlayout.policy import ResolvedLayout, resolve
from vmlayout.ranges import EMPTY, FOUR_GIB, GIB, MIB, MemoryRange

SPEC_9_4_BLOB = bytes.fromhex(
    "00000000100000000800000"
    "0f0000000"
    "01000000100000000006000000000000"
    "03000000200000000000000000000000"
    "00000080000000000000000000000000"
    "050000001800000000000000000000000000000000000000"
    "0400000048000000" + "00" * 64 + "14000000280000000080"
    "0f000000000000800000000000000000100000000000"
    "0000020000000000"
    "1300000018000000020000000200000002000000010000001200000010000000"
    "4040009000000000"
)


def case(ram: int, high: int = 512 * MIB) -> ResolvedLayout:
    return resolve(
        config_from_dict(
            {"node_mem_sizes": [ram], "chipset_high_mmio_size": high, "pcie_root_complexes": []}
        )
    )


def test_full_blob_for_case_a_is_the_240_byte_example() -> None:
    r = case(2 * GIB)
    assert encode_config_blob(r.memory_layout.ram, r.chipset) == SPEC_9_4_BLOB


def test_default_flags_are_hibernate_frontpage_mtrrs_and_pci_preassigned() -> None:
    assert UefiOptions().flags == 0x9000_4040


@pytest.mark.parametrize(
    ("ram", "high", "memory", "mmio_high"),
    [
        (2 * GIB, 512 * MIB, [(0, 0x8000_0000)], (0x10_0000, 0x2_0000)),
        (4 * GIB, 512 * MIB, [(0, 0xC000_0000), (FOUR_GIB, 0x4000_0000)], (0x14_0000, 0x2_0000)),
        (
            16 * GIB,
            512 * MIB,
            [(0, 0xC000_0000), (FOUR_GIB, 0x3_4000_0000)],
            (0x44_0000, 0x2_0000),
        ),
        (16 * GIB, 0, [(0, 0xC000_0000), (FOUR_GIB, 0x3_4000_0000)], (0x10_0000, 0)),
    ],
)
def test_memory_map_and_mmio_ranges_of_cases_a_to_d(
    ram: int, high: int, memory: list[tuple[int, int]], mmio_high: tuple[int, int]
) -> None:
    r = case(ram, high)
    blob = decode_config_blob(encode_layout_blob(r.memory_layout.ram, r.chipset))
    assert [(m.start, m.size) for m in blob.memory_map] == memory
    assert blob.mmio_ranges is not None
    low, high_range = blob.mmio_ranges
    assert (low.start // 4096, low.size // 4096) == (0xF8000, 0x8000)
    assert (high_range.start // 4096, high_range.size // 4096) == mmio_high


def test_a_literal_empty_high_is_written_as_page_zero() -> None:
    r = case(2 * GIB)
    chipset = ChipsetMmioRanges(r.chipset.low, EMPTY, EMPTY)
    blob = encode_layout_blob(r.memory_layout.ram, chipset)
    assert blob[-16:] == bytes(16)


def test_every_structure_is_8_aligned_and_the_count_is_patched() -> None:
    r = case(4 * GIB)
    config = vm_config(r.config, bios_guid=uuid.UUID("12345678-9abc-def0-1122-334455667788"))
    options = UefiOptions.of(config)
    data = encode_config_blob(r.memory_layout.ram, r.chipset, options, (b"SSDT" + bytes(33),))
    blob = decode_config_blob(data)
    assert all(s.offset % 8 == 0 and s.length % 8 == 0 for s in blob.structures)
    assert blob.structures[0].fields == {
        "total_structure_count": len(blob.structures),
        "total_config_blob_size": len(data),
    }
    guid = next(s for s in blob.structures if s.name == "BIOS_GUID")
    assert guid.fields["guid"] == "12345678-9abc-def0-1122-334455667788"


CONFIGS = st.fixed_dictionaries(
    {
        "arch": st.sampled_from(["x86_64", "aarch64"]),
        "node_mem_sizes": st.lists(
            st.integers(1, 4096).map(lambda n: n * 2 * MIB), min_size=1, max_size=4
        ),
        "chipset_high_mmio_size": st.sampled_from([0, 2 * MIB, 512 * MIB]),
        "pcie_root_complexes": st.just([]),
    }
)


@settings(max_examples=100, deadline=None)
@given(CONFIGS)
def test_decode_of_encode_gives_back_mmio_ranges_and_memory_map(config: dict[str, Any]) -> None:
    r = resolve(config_from_dict(config))
    for data in (
        encode_layout_blob(r.memory_layout.ram, r.chipset),
        encode_config_blob(r.memory_layout.ram, r.chipset),
    ):
        blob = decode_config_blob(data)
        assert blob.mmio_ranges == (r.chipset.low, r.chipset.high)
        assert blob.memory_map == tuple(x.range for x in r.memory_layout.ram)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "shorter than the 16-byte StructureCount"),
        (bytes.fromhex("0100000010000000" + "00" * 8), "does not start with"),
        (bytes.fromhex("0000000010000000" + "0100000011000000"), "StructureCount says 17 bytes"),
        (
            bytes.fromhex("0000000010000000" + "0200000020000000" + "ff000000" + "10000000")
            + bytes(8),
            "unknown structure type 0xff",
        ),
        (
            bytes.fromhex("0000000010000000" + "0200000018000000" + "03000000" + "0c000000")
            + bytes(0),
            "length 12",
        ),
    ],
)
def test_bad_blobs_are_rejected_with_one_line(data: bytes, fragment: str) -> None:
    with pytest.raises(VmLayoutError) as caught:
        decode_config_blob(data)
    assert fragment in caught.value.message and "\n" not in caught.value.message


def test_decoder_fuzz_only_raises_its_own_error() -> None:
    """Random bytes, truncations and bit flips of real blobs: 12k cases."""
    rng = random.Random(20261125)
    seeds = [
        encode_config_blob(case(2 * GIB).memory_layout.ram, case(2 * GIB).chipset),
        encode_layout_blob(case(16 * GIB).memory_layout.ram, case(16 * GIB).chipset),
    ]
    cases: list[bytes] = []
    for _ in range(4000):
        cases.append(rng.randbytes(rng.randrange(0, 300)))
    for _ in range(4000):
        seed = rng.choice(seeds)
        cases.append(seed[: rng.randrange(0, len(seed))])
    for _ in range(4000):
        flipped = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 4)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        cases.append(bytes(flipped))
    decoded = 0
    for data in cases:
        try:
            decode_config_blob(data)
            decoded += 1
        except VmLayoutError as error:
            assert "\n" not in error.message
    assert 0 < decoded < len(cases)  # some flips stay valid, most inputs do not


def test_memory_ranges_decode_to_page_ranges() -> None:
    r = case(4 * GIB)
    blob = decode_config_blob(encode_layout_blob(r.memory_layout.ram, r.chipset))
    assert blob.memory_map[1] == MemoryRange(FOUR_GIB, FOUR_GIB + GIB)


def test_vmbus_disabled_sets_its_flag_but_keeps_mmio_ranges() -> None:
    """§7.4 item 6: MmioRanges is always emitted; §7.5 bit 30 is vmbus_disabled."""
    r = case(2 * GIB)
    data = uefi_blob_of(with_vm(r, vmbus=False))
    blob = decode_config_blob(data)
    flags = next(s for s in blob.structures if s.name == "FLAGS").fields["flags"]
    assert flags == 0x9000_4040 | 1 << 30
    assert blob.mmio_ranges == (r.chipset.low, r.chipset.high)


def test_processor_information_counts_threads_per_processor_from_smt() -> None:
    r = case(2 * GIB)
    blob = decode_config_blob(uefi_blob_of(with_vm(r, vp_count=8, vps_per_socket=4, smt=True)))
    info = next(s for s in blob.structures if s.name == "PROCESSOR_INFORMATION").fields
    assert info == {
        "max_processor_count": 8,
        "processor_count": 8,
        "processors_per_virtual_socket": 4,
        "threads_per_processor": 2,
    }


def test_structures_follow_the_reference_loader_order() -> None:
    r = case(2 * GIB)
    data = encode_config_blob(r.memory_layout.ram, r.chipset, acpi_tables=(b"APIC" + bytes(40),))
    assert [s.structure_type for s in decode_config_blob(data).structures] == [
        0x00,
        0x01,
        0x03,
        0x05,
        0x04,
        0x14,
        0x13,
        0x12,
        0x16,
    ]
