"""The x86 firmware commands as a user runs them (spec 03 worked examples, §9), including
one-line errors for bad input and no output file after a failure."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.cli import assert_one_line_error, run_cli
from tests.test_firmware_uefi import SPEC_9_4_BLOB
from tests.vectors import vector_params
from vmlayout.ranges import FOUR_GIB, GIB, MIB


def config_file(tmp_path: Path, ram: int, high: int = 512 * MIB, **extra: Any) -> Path:
    """A §9 case: default chipset windows, no PCIe, one node of `ram` bytes."""
    path = tmp_path / "vm.json"
    doc = {
        "node_mem_sizes": [ram],
        "chipset_high_mmio_size": high,
        "pcie_root_complexes": [],
        **extra,
    }
    path.write_text(json.dumps(doc))
    return path


# --- emit mtrr-state / check mtrr -------------------------------------------------------


def test_emit_mtrr_state_table_names_every_register_of_case_b(tmp_path: Path) -> None:
    result = run_cli("emit", "mtrr-state", config_file(tmp_path, 4 * GIB), "--loader", "linux")
    assert result.returncode == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()[1:] if line.startswith("0x")]
    assert ["0x02ff", "DEF_TYPE", "0xc00"] in lines
    assert ["0x0250", "FIX64K_00000", "0x606_0606_0606_0606"] in lines
    assert ["0x026c", "FIX4K_E0000", "0x0"] in lines  # Linux leaves E0000.. UC
    assert ["0x0204", "PHYSBASE2", "0x1_0000_0006"] in lines
    assert ["0x0205", "PHYSMASK2", "0x3ffe_0000_0800"] in lines
    assert len(lines) == 1 + 11 + 2 * 3


def test_mtrr_pairs_are_decoded_and_the_unaligned_reference_base_is_linted(
    tmp_path: Path,
) -> None:
    """Spec 03: the reference's PHYSBASE1 0x800_0006 under a 4 GiB mask covers [0, 4 GiB)."""
    result = run_cli("emit", "mtrr-state", config_file(tmp_path, 4 * GIB))
    assert "pair 1: WB [0x0, 0x1_0000_0000) 4 GiB" in result.stdout
    assert (
        "lint: PHYSBASE1 0x800_0006 is not aligned to PHYSMASK1 0x3fff_0000_0800: "
        "base bits 0x800_0000 are ignored; it covers [0x0, 0x1_0000_0000)"
    ) in result.stdout
    doc = json.loads(
        run_cli("check", "mtrr", config_file(tmp_path, 4 * GIB), "--format", "json").stdout
    )
    pair = doc["pairs"][1]
    assert (pair["type"], pair["covers"], pair["ignored_base_bits"]) == (
        "WB",
        [[0, 4 * GIB]],
        0x800_0000,
    )
    assert len(doc["lint"]) == 2  # PHYSBASE1 and PHYSBASE2 are both unaligned


def test_check_mtrr_sizes_read_as_round_sizes(tmp_path: Path) -> None:
    result = run_cli("check", "mtrr", config_file(tmp_path, 4 * GIB))
    assert "8191 MiB (8 GiB - 1 MiB)  WB" in result.stdout


def test_options_the_reference_policy_ignores_are_warned_about(tmp_path: Path) -> None:
    result = run_cli("emit", "mtrr-state", config_file(tmp_path, 4 * GIB), "--mtrr-count", "4")
    assert result.returncode == 0
    assert "warning: --mtrr-count has no effect with --mtrr-policy reference" in result.stderr
    exact = ("--mtrr-policy", "exact", "--mtrr-count", "4")
    assert run_cli("emit", "mtrr-state", config_file(tmp_path, 4 * GIB), *exact).stderr == ""


def test_emit_all_accepts_and_records_mtrr_approximate(tmp_path: Path) -> None:
    out = tmp_path / "set"
    args = ("--mtrr-policy", "exact", "--mtrr-count", "1", "--mtrr-approximate")
    result = run_cli("emit", "all", config_file(tmp_path, 4 * GIB), "-o", out, *args)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "config.json").read_text())
    assert record["config"]["platform"]["mtrr"]["approximate"] is True
    assert run_cli("inspect", out).returncode == 0


def test_emit_mtrr_state_json_exact_policy(tmp_path: Path) -> None:
    args = ("--mtrr-policy", "exact", "--format", "json", "--loader", "pcat")
    result = run_cli("emit", "mtrr-state", config_file(tmp_path, 4 * GIB), *args)
    doc = json.loads(result.stdout)
    msrs = dict(doc["msrs"])
    assert (doc["loader"], doc["policy"]) == ("pcat", "exact")
    assert msrs[0x2FF] == 0xC00 and msrs[0x26F] == 0x0606_0606_0606_0606
    # [1 MiB, 3 GiB) takes two blocks, [4 GiB, 5 GiB) one: three variable pairs.
    assert sorted(msr for msr in msrs if 0x200 <= msr < 0x250) == list(range(0x200, 0x206))


def test_check_mtrr_case_b_reports_both_chipset_windows_wb(tmp_path: Path) -> None:
    result = run_cli("check", "mtrr", config_file(tmp_path, 4 * GIB))
    assert result.returncode == 1
    assert "2 violation(s):" in result.stdout
    assert "chipset low: [0xf800_0000, 0x1_0000_0000) (128 MiB) is WB, expected UC" in (
        result.stdout
    )
    assert "chipset high: [0x1_4000_0000, 0x1_6000_0000) (512 MiB) is WB, expected UC" in (
        result.stdout
    )


def test_check_mtrr_json_intervals_of_case_b(tmp_path: Path) -> None:
    result = run_cli("check", "mtrr", config_file(tmp_path, 4 * GIB), "--format", "json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["intervals"] == [
        [0, 0xA0000, "WB"],
        [0xA0000, 0x100000, "UC"],
        [0x100000, 8 * GIB, "WB"],
        [8 * GIB, 1 << 46, "UC"],
    ]


def test_check_mtrr_case_a_with_128_mib_is_clean(tmp_path: Path) -> None:
    """§4.2: only RAM <= 128 MiB leaves the low window UC."""
    result = run_cli("check", "mtrr", config_file(tmp_path, 128 * MIB))
    assert result.returncode == 0, result.stdout
    assert "no violations" in result.stdout


def test_check_mtrr_exact_policy_is_clean_with_every_loader(tmp_path: Path) -> None:
    config = config_file(tmp_path, 16 * GIB, high=0)
    for loader in ("linux", "uefi", "pcat"):
        result = run_cli("check", "mtrr", config, "--mtrr-policy", "exact", "--loader", loader)
        assert result.returncode == 0, result.stdout


def test_check_mtrr_approximation_leaves_only_ram_uc(tmp_path: Path) -> None:
    args = ("--mtrr-policy", "exact", "--mtrr-count", "1", "--mtrr-approximate")
    result = run_cli("check", "mtrr", config_file(tmp_path, 4 * GIB), *args, "--format", "json")
    assert result.returncode == 1
    found = json.loads(result.stdout)["violations"]
    assert found and all(v["expected"] == "WB" and v["actual"] == "UC" for v in found)


# --- emit e820 -----------------------------------------------------------------------------

SPEC_9_3_C = [
    (0x0, 0x19000, 1),
    (0x19000, 0x2000, 3),
    (0x1B000, 0x1000, 2),
    (0x1C000, 0xC4000, 1),
    (0xE0000, 0x20000, 2),
    (0x100000, 0xBFF0_0000, 1),
    (FOUR_GIB, 0x3_4000_0000, 1),
]


def test_emit_e820_json_and_raw_file_are_the_spec_table(tmp_path: Path) -> None:
    out = tmp_path / "e820.bin"
    args = ("--acpi-len", "0x1800", "--smbios-len", "0x100", "--format", "json", "-o", out)
    result = run_cli("emit", "e820", config_file(tmp_path, 16 * GIB), *args)
    assert result.returncode == 0, result.stderr
    entries = [tuple(e) for e in json.loads(result.stdout)["e820"]]
    assert entries == SPEC_9_3_C
    assert list(struct.iter_unpack("<QQI", out.read_bytes())) == SPEC_9_3_C


def test_emit_e820_table_of_case_a(tmp_path: Path) -> None:
    result = run_cli("emit", "e820", config_file(tmp_path, 2 * GIB))
    rows = [line.split() for line in result.stdout.splitlines()]
    # §6.2 with no ACPI or SMBIOS bytes: the zero-size entries vanish, and the RAM below
    # and above the (empty) table area stay two entries
    assert [(r[1], r[2], r[-2]) for r in rows] == [
        ("0x0", "0x1_9000", "1"),
        ("0x1_9000", "0xe_0000", "1"),
        ("0xe_0000", "0x10_0000", "2"),
        ("0x10_0000", "0x8000_0000", "1"),
    ]


# --- emit pcat -------------------------------------------------------------------------------


def test_emit_pcat_json_of_case_c(tmp_path: Path) -> None:
    result = run_cli("emit", "pcat", config_file(tmp_path, 16 * GIB), "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["items"] == {
        "0x00": 0x30_0000,
        "0x0d": 0x3400,
        "0x12": 0xF800_0000,
        "0x1f": 0,
        "0x20": 0x4400,
        "0x21": 0x1FF,
        "0x23": 0xC00,
    }
    assert doc["e820_helper"] == [[0x1_A001, 0x0, 0x1]]
    assert bytes.fromhex(doc["cmos"])[0x15:0x19] == bytes([0x80, 0x02, 0x00, 0x0C])


def test_emit_pcat_table_of_case_a(tmp_path: Path) -> None:
    result = run_cli("emit", "pcat", config_file(tmp_path, 2 * GIB))
    assert "0x00  FIRST_MEMORY_BLOCK_SIZE       0x200000 (2097152)" in result.stdout
    assert "0x21  HIGH_MMIO_GAP_LENGTH_IN_MB    0x1ff (511)" in result.stdout
    assert "  10: 40 00 00 20 1f 80 02 00 08 30 30" in result.stdout


# --- emit uefi-config / inspect ----------------------------------------------------------------


def test_emit_uefi_config_of_case_a_is_the_240_byte_example(tmp_path: Path) -> None:
    out = tmp_path / "uefi.bin"
    result = run_cli("emit", "uefi-config", config_file(tmp_path, 2 * GIB), "-o", out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == SPEC_9_4_BLOB


@pytest.mark.parametrize("case", vector_params("uefi.jsonl")[:4])
def test_emit_uefi_config_layout_only_matches_the_vectors(
    tmp_path: Path, case: dict[str, Any]
) -> None:
    config = tmp_path / "vm.json"
    config.write_text(json.dumps(case["config"]))
    out = tmp_path / "uefi.bin"
    assert run_cli("emit", "uefi-config", config, "-o", out, "--layout-only").returncode == 0
    assert out.read_bytes().hex() == case["expect"]["blob"]


def test_emit_uefi_config_options_reach_the_blob(tmp_path: Path) -> None:
    out = tmp_path / "uefi.bin"
    guid = "12345678-9abc-def0-1122-334455667788"
    options = ("--vp-count", "4", "--vps-per-socket", "2", "--smt", "--bios-guid", guid)
    flags = ("--serial", "--no-vmbus", "--entropy", "ab" * 64)
    assert run_cli("emit", "uefi-config", "-o", out, *options, *flags).returncode == 0
    doc = json.loads(run_cli("inspect", out, "--format", "json").stdout)
    fields = {s["name"]: s["fields"] for s in doc["structures"]}
    assert fields["BIOS_GUID"]["guid"] == guid
    assert fields["PROCESSOR_INFORMATION"]["threads_per_processor"] == 2
    assert fields["PROCESSOR_INFORMATION"]["processors_per_virtual_socket"] == 2
    assert fields["FLAGS"]["flags"] == 0x9000_4040 | 1 << 0 | 1 << 30
    assert out.read_bytes().count(b"\xab" * 64) == 1


def test_inspect_uefi_table_lists_structures_and_the_layout(tmp_path: Path) -> None:
    out = tmp_path / "uefi.bin"
    run_cli("emit", "uefi-config", config_file(tmp_path, 4 * GIB), "-o", out)
    text = run_cli("inspect", out).stdout
    assert text.startswith("UEFI config blob, 264 bytes, 8 structures\n")
    assert "BIOS_INFORMATION         length 16   bios_size_pages=0x600 flags=0x0" in text
    assert "FLAGS                    length 16   flags=0x90004040" in text
    assert "memory           0x1_0000_0000 - 0x1_4000_0000          1 GiB" in text
    assert "mmio high        0x1_4000_0000 - 0x1_6000_0000          512 MiB" in text


def test_inspect_of_a_truncated_uefi_blob_names_the_sizes(tmp_path: Path) -> None:
    out = tmp_path / "uefi.bin"
    run_cli("emit", "uefi-config", "-o", out)
    out.write_bytes(out.read_bytes()[:50])
    assert_one_line_error(
        run_cli("inspect", out), "invalid_uefi_blob", "says 264 bytes, the input has 50"
    )


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("check", "mtrr", "{missing_config}"), "invalid_config"),
        (("check", "mtrr", "--arch", "aarch64"), "unsupported_arch"),
        (("check", "mtrr", "--mtrr-policy", "fast"), "--mtrr-policy"),
        (("emit", "mtrr-state", "--mtrr-policy", "exact", "--mtrr-count", "2"), "needs 3"),
        (("emit", "e820", "--additional-pages", "200", "-o", "{out}"), "low_tables_too_large"),
        (("emit", "e820", "--acpi-len", "-5", "-o", "{out}"), "must not be negative"),
        (("emit", "pcat", "{no_high_config}"), "incorrect_mmio_holes"),
        (("emit", "uefi-config", "-o", "{out}", "--vp-count", "0"), "--vp-count"),
        # issue 20: a count too large is named as such, not "must be at least 1"
        (
            ("emit", "uefi-config", "-o", "{out}", "--vp-count", "0x100000000"),
            "out of range 1..4096",
        ),
        (("emit", "uefi-config", "-o", "{out}", "--entropy", "00"), "64 bytes"),
        # issue 20: the UEFI blob refuses an empty socket as every other view does
        (("emit", "uefi-config", "-o", "{out}", "--vps-per-socket", "0"), "--vps-per-socket"),
        (("emit", "uefi-config", "{missing_config}", "-o", "{out}"), "no such file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    values = {
        "out": work / "out.bin",
        "missing_config": tmp_path / "absent.toml",
        "no_high_config": config_file(tmp_path, 2 * GIB, high=0),
    }
    argv = [a.format(**values) for a in args]
    assert_one_line_error(run_cli(*argv), fragment)
    assert list(work.iterdir()) == []
