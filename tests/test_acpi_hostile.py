"""Hostile definition blocks (issue 20): valid length and checksum, AML that nests far
beyond the interpreter's stack or resource descriptors whose arithmetic overflows.
Each is one `error:` line (exit 2) or a clean decode, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzzing import (
    assert_contract,
    assert_one_line_error,
    nested_aml,
    nested_buffers,
    run_main,
)
from vmlayout.acpi.aml import Buffer, Device, Integer, Name
from vmlayout.acpi.decode import (
    AML_MAX_DEPTH,
    AML_MAX_OBJECTS,
    decode_definition_block,
    decode_table,
)
from vmlayout.acpi.resources import (
    END_TAG,
    QWORD_ADDRESS,
    WORD_ADDRESS,
    QWordMemory,
    decode_resources,
)
from vmlayout.acpi.sdt import DSDT_FLAVOUR, SSDT_FLAVOUR, build_table
from vmlayout.errors import VmLayoutError

U64 = (1 << 64) - 1


def dsdt(body: bytes, signature: bytes = b"DSDT") -> bytes:
    flavour = DSDT_FLAVOUR if signature == b"DSDT" else SSDT_FLAVOUR
    return build_table(signature, 2, body, flavour)


def write(tmp_path: Path, table: bytes) -> Path:
    path = tmp_path / f"{table[:4].decode()}.aml"
    path.write_bytes(table)
    return path


def test_1200_nested_scopes_in_7_kb_are_one_error_naming_the_limit(tmp_path: Path) -> None:
    """The issue's reproducer: 1,200 nested Scopes, a 7 KB DSDT with a valid checksum."""
    table = dsdt(nested_aml(["scope"] * 1200, Name("_UID", Integer(0)).encode()))
    assert 6_000 < len(table) < 10_000
    outcome = run_main("inspect", write(tmp_path, table))
    assert_one_line_error(outcome, "invalid_acpi", "nest deeper than", str(AML_MAX_DEPTH))


@pytest.mark.parametrize("op", ["scope", "device"])
def test_nesting_up_to_the_limit_decodes_every_device(op: str) -> None:
    ops = [op] * (AML_MAX_DEPTH - 1) + ["device"]
    devices = decode_definition_block(decode_table(dsdt(nested_aml(ops, b""))))
    name = "S" if op == "scope" else "D"
    assert [d.path for d in devices][-1] == "\\" + ".".join([name] * (AML_MAX_DEPTH - 1) + ["D"])
    with pytest.raises(VmLayoutError, match="nest deeper"):
        decode_definition_block(decode_table(dsdt(nested_aml([op] * (AML_MAX_DEPTH + 1), b""))))


def test_more_devices_and_names_than_the_limit_are_one_error(tmp_path: Path) -> None:
    """Memory follows what is stored: a device per 7 input bytes must not let a 64 MiB
    table hold gigabytes of paths."""
    device = nested_aml(["device"], b"")
    table = dsdt(device * (AML_MAX_OBJECTS + 1))
    outcome = run_main("inspect", write(tmp_path, table))
    assert_one_line_error(outcome, "invalid_acpi", f"more than {AML_MAX_OBJECTS} devices")
    half = nested_aml(["device"], Name("_UID", Integer(0)).encode()) * (AML_MAX_OBJECTS // 2)
    assert len(decode_definition_block(decode_table(dsdt(half)))) == AML_MAX_OBJECTS // 2


def test_method_and_if_bodies_are_skipped_however_deep() -> None:
    """They are not walked, so their depth costs nothing and is not limited."""
    body = nested_aml(["device"] + ["if", "method"] * 5000, b"")
    devices = decode_definition_block(decode_table(dsdt(body)))
    assert [d.path for d in devices] == ["\\D"]


def test_a_buffer_whose_size_is_a_buffer_is_refused_without_recursing(tmp_path: Path) -> None:
    table = dsdt(nested_aml(["device"], nested_buffers(5000)))
    assert_one_line_error(run_main("inspect", write(tmp_path, table)), "buffer size")


def qword(minimum: int, maximum: int, length: int) -> bytes:
    return QWORD_ADDRESS.pack(
        tag=0x8A,
        length=QWORD_ADDRESS.size - 3,
        resource_type=0,
        general_flags=0x0C,
        type_flags=0x03,
        granularity=0,
        minimum=minimum,
        maximum=maximum,
        translation=0,
        range_length=length,
    )


def vmod(*descriptors: bytes, signature: bytes = b"DSDT") -> bytes:
    crs = Buffer(b"".join(descriptors) + END_TAG)
    return dsdt(Device("\\_SB.VMOD", (Name("_CRS", crs),)).encode(), signature)


@pytest.mark.parametrize("signature", [b"DSDT", b"SSDT"])
@pytest.mark.parametrize(
    ("minimum", "maximum", "length", "reason"),
    [
        # the reproducer: start + length passes 2^64 (max saturated at 2^64 - 1)
        (0xFFFF_FFFF_FFFF_F000, U64, 0x2000, "passes 2^64"),
        (U64, U64, U64, "passes 2^64"),
        (0x1000, 0x0FFF, 0, "length 0"),
        (0x2000, 0x1000, 0x1000, "below the minimum"),
        (0x1000, 0x2000, 0x1000, "not minimum + length - 1"),
    ],
)
def test_qword_arithmetic_at_the_edges_is_one_error(
    tmp_path: Path, signature: bytes, minimum: int, maximum: int, length: int, reason: str
) -> None:
    table = vmod(qword(minimum, maximum, length), signature=signature)
    for fmt in ("table", "json"):
        outcome = run_main("inspect", write(tmp_path, table), "--format", fmt)
        assert_one_line_error(outcome, "invalid_acpi", "QWordMemory", reason)


def test_a_qword_ending_exactly_at_2_64_decodes_but_names_no_placeable_range(
    tmp_path: Path,
) -> None:
    """Valid arithmetic (max = 2^64 - 1), but past the last page a range may end at."""
    descriptor = qword(0xFFFF_FFFF_FFFF_F000, U64, 0x1000)
    [decoded] = decode_resources(descriptor + END_TAG, "test")
    assert isinstance(decoded, QWordMemory) and decoded.memory is None
    outcome = run_main("inspect", write(tmp_path, vmod(descriptor)))
    assert_one_line_error(outcome, "\\_SB.VMOD", "memory descriptor")


def test_a_bus_range_past_2_16_is_one_error() -> None:
    word = WORD_ADDRESS.pack(
        tag=0x88,
        length=WORD_ADDRESS.size - 3,
        resource_type=2,
        general_flags=0x0C,
        type_flags=0,
        granularity=0,
        minimum=0xFFFF,
        maximum=0xFFFF,
        translation=0,
        range_length=2,
    )
    with pytest.raises(VmLayoutError, match="WordBusNumber at 0xffff: minimum"):
        decode_resources(word + END_TAG, "SSDT")


def test_hostile_tables_in_a_set_are_one_error_or_a_finding(tmp_path: Path) -> None:
    """Through the directory cross-check too (the chipset rows read the DSDT)."""
    out = tmp_path / "set"
    assert run_main("emit", "all", "-o", out).status == 0
    (out / "DSDT.aml").write_bytes(vmod(qword(0xFFFF_FFFF_FFFF_F000, U64, 0x2000)))
    assert_contract(run_main("inspect", out))
    (out / "DSDT.aml").write_bytes(dsdt(nested_aml(["scope"] * 1200, b"")))
    assert_contract(run_main("inspect", out))
