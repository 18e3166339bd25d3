"""The emitter commands as a user runs them: outputs, inspect round trips, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import assert_one_line_error, run_cli
from vmlayout.config import DEFAULT_VM, config_to_dict

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_check_mtrr_reports_the_reference_findings_and_exits_1() -> None:
    result = run_cli("check", "mtrr")
    assert result.returncode == 1
    assert "chipset low: [0xf800_0000, 0x1_0000_0000) (128 MiB) is WB, expected UC" in result.stdout
    doc = json.loads(run_cli("check", "mtrr", "--format", "json").stdout)
    assert {
        "range": "chipset low",
        "start": 0xF800_0000,
        "end": 1 << 32,
        "expected": "UC",
        "actual": "WB",
    } in doc["violations"]


def test_check_mtrr_exact_policy_exits_0() -> None:
    result = run_cli("check", "mtrr", "--mtrr-policy", "exact")
    assert result.returncode == 0, result.stdout
    assert "no violations" in result.stdout


def test_check_mtrr_exact_policy_over_budget_is_a_one_line_error() -> None:
    result = run_cli("check", "mtrr", "--mtrr-policy", "exact", "--mtrr-count", "1")
    assert_one_line_error(result, "mtrr_budget_exceeded", "needs 3 variable registers")


def test_emit_mtrr_state_lists_def_type_fixed_and_variable_registers() -> None:
    doc = json.loads(run_cli("emit", "mtrr-state", "--loader", "pcat", "--format", "json").stdout)
    msrs = dict(doc["msrs"])
    assert msrs[0x2FF] == 0xC00 and msrs[0x26C] == 0x0606_0606_0606_0606
    assert msrs[0x200] == 0x6


def test_emit_e820_writes_raw_entries(tmp_path: Path) -> None:
    out = tmp_path / "e820.bin"
    result = run_cli("emit", "e820", "--acpi-len", "0x1800", "--smbios-len", "0x100", "-o", out)
    assert result.returncode == 0, result.stderr
    data = out.read_bytes()
    assert len(data) == 7 * 20
    assert data[20:40] == (0x19000).to_bytes(8, "little") + (0x2000).to_bytes(8, "little") + (
        3
    ).to_bytes(4, "little")


def test_emit_pcat_prints_items() -> None:
    doc = json.loads(run_cli("emit", "pcat", "--format", "json").stdout)
    assert doc["items"]["0x12"] == 0xF800_0000
    assert bytes.fromhex(doc["cmos"])[0x15:0x19] == bytes([0x80, 0x02, 0x00, 0x0C])


def test_emit_pcat_without_high_window_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "vm.json"
    config.write_text(json.dumps({**config_to_dict(DEFAULT_VM), "chipset_high_mmio_size": 0}))
    assert_one_line_error(run_cli("emit", "pcat", config), "incorrect_mmio_holes")


def test_uefi_blob_written_and_inspected(tmp_path: Path) -> None:
    out = tmp_path / "uefi.bin"
    assert run_cli("emit", "uefi-config", "-o", out, "--vp-count", "4").returncode == 0
    doc = json.loads(run_cli("inspect", out, "--format", "json").stdout)
    assert doc["kind"] == "uefi-config-blob"
    assert doc["mmio_ranges"]["low"] == [0xF800_0000, 1 << 32]
    processor = next(s for s in doc["structures"] if s["name"] == "PROCESSOR_INFORMATION")
    assert processor["fields"]["processor_count"] == 4
    small = tmp_path / "layout.bin"
    assert run_cli("emit", "uefi-config", "-o", small, "--layout-only").returncode == 0
    assert (
        json.loads(run_cli("inspect", small, "--format", "json").stdout)["structures"][0]["fields"][
            "total_structure_count"
        ]
        == 3
    )


def test_inspect_rejects_a_corrupted_uefi_blob(tmp_path: Path) -> None:
    out = tmp_path / "uefi.bin"
    run_cli("emit", "uefi-config", "-o", out)
    data = bytearray(out.read_bytes())
    data[0x24] = 0x07  # MemoryMap length no longer a multiple of 8
    out.write_bytes(bytes(data))
    assert_one_line_error(run_cli("inspect", out), "invalid_uefi_blob")


def test_emit_acpi_then_inspect_directory_and_single_table(tmp_path: Path) -> None:
    out = tmp_path / "acpi"
    result = run_cli("emit", "acpi", "-o", out, "--pci0")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} == {
        "DSDT.aml",
        "SSDT.aml",
        "SRAT.aml",
        "MCFG.aml",
        "FACP.aml",
        "APIC.aml",
        "XSDT.aml",
        "RSDP.bin",
    }
    text = run_cli("inspect", out).stdout
    assert "\\_SB.PCI0 _CRS memory 0xf800_0000 - 0x1_0000_0000 (128 MiB)" in text
    doc = json.loads(run_cli("inspect", out / "MCFG.aml", "--format", "json").stdout)
    assert doc["tables"][0]["ecam"][0]["segment"] == 0


def test_inspect_reports_a_bad_checksum_with_exit_1(tmp_path: Path) -> None:
    out = tmp_path / "acpi"
    run_cli("emit", "acpi", "-o", out)
    srat = bytearray((out / "SRAT.aml").read_bytes())
    srat[9] ^= 1
    (out / "SRAT.aml").write_bytes(bytes(srat))
    result = run_cli("inspect", out / "SRAT.aml")
    assert result.returncode == 1 and "BAD" in result.stdout


def test_pci0_on_aarch64_is_a_one_line_error(tmp_path: Path) -> None:
    result = run_cli("emit", "acpi", EXAMPLES / "aarch64.toml", "-o", tmp_path / "x", "--pci0")
    assert_one_line_error(result, "--pci0", "not available on aarch64")
    assert not (tmp_path / "x").exists()


def test_dt_linux_with_dts_prints_the_vmbus_ranges(tmp_path: Path) -> None:
    out = tmp_path / "linux.dtb"
    result = run_cli("emit", "dt-linux", EXAMPLES / "aarch64.toml", "-o", out, "--dts")
    assert result.returncode == 0, result.stderr
    assert "vmbus {" in result.stdout and 'compatible = "microsoft,vmbus";' in result.stdout
    doc = json.loads(run_cli("inspect", out, "--format", "json").stdout)
    assert doc["kind"] == "dtb-linux" and doc["chipset"]["vtl2"] == [0, 0]


def test_dt_paravisor_reports_the_vtl2_window(tmp_path: Path) -> None:
    out = tmp_path / "para.dtb"
    assert run_cli("emit", "dt-paravisor", EXAMPLES / "numa-vtl2.toml", "-o", out).returncode == 0
    doc = json.loads(run_cli("inspect", out, "--format", "json").stdout)
    resolved = json.loads(
        run_cli("resolve", EXAMPLES / "numa-vtl2.toml", "--format", "json").stdout
    )
    assert doc["chipset"] == resolved["chipset"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("emit", "dt-linux", "-o", "{out}"), "unsupported_arch"),
        (("emit", "dt-paravisor", "--arch", "aarch64", "-o", "{out}"), "unsupported_arch"),
        (("emit", "e820", "--arch", "aarch64", "-o", "{out}"), "unsupported_arch"),
        (("emit", "uefi-config", "-o", "{out}", "--entropy", "zz"), "--entropy"),
        (("emit", "uefi-config", "-o", "{out}", "--bios-guid", "nope"), "--bios-guid"),
        (("emit", "e820", "--acpi-len", "0xFFFFF", "-o", "{out}"), "low_tables_too_large"),
        (("emit", "mtrr-state", "--mtrr-count", "0"), "--mtrr-count"),
        (("emit", "uefi-config", "-o", "{missing}"), "does not exist"),
    ],
)
def test_emitter_bad_input_is_one_line_and_leaves_no_file(
    tmp_path: Path, args: tuple[str, ...], fragment: str
) -> None:
    out = tmp_path / "out.bin"
    missing = tmp_path / "nope" / "out.bin"
    argv = [a.format(out=out, missing=missing) for a in args]
    assert_one_line_error(run_cli(*argv), fragment)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_inspect_of_a_truncated_dtb_is_a_one_line_error(tmp_path: Path) -> None:
    out = tmp_path / "linux.dtb"
    run_cli("emit", "dt-linux", "--arch", "aarch64", "-o", out)
    out.write_bytes(out.read_bytes()[:200])
    assert_one_line_error(run_cli("inspect", out), "invalid_dtb")


def test_emit_acpi_over_an_earlier_run_removes_only_its_own_stale_tables(tmp_path: Path) -> None:
    out = tmp_path / "acpi"
    assert run_cli("emit", "acpi", "-o", out).returncode == 0  # default VM: has MCFG, SSDT
    (out / "notes.txt").write_text("mine")
    (out / "DMAR.aml").write_bytes(b"DMAR not a table of ours")
    (out / "SSDT-old.aml").write_bytes((out / "SSDT.aml").read_bytes())
    no_rc = tmp_path / "no-rc.json"
    no_rc.write_text(json.dumps({"node_mem_sizes": [4 << 30]}))
    result = run_cli("emit", "acpi", no_rc, "-o", out)
    assert result.returncode == 0
    assert "MCFG.aml" in result.stdout and "SSDT.aml" in result.stdout  # reported as removed
    names = {p.name for p in out.iterdir()}
    assert names == {
        "DSDT.aml", "FACP.aml", "APIC.aml", "SRAT.aml", "XSDT.aml", "RSDP.bin",
        "notes.txt", "DMAR.aml", "SSDT-old.aml",
    }  # fmt: skip


def test_emit_acpi_writes_the_cxl_window_restrictions_asked_for(tmp_path: Path) -> None:
    from vmlayout.acpi.cxl import CFMWS

    config = tmp_path / "cxl.json"
    config.write_text(
        json.dumps({"pcie_root_complexes": [{"name": "rc0", "cxl": {"hdm_size": 4 << 30}}]})
    )
    for value in (0, 6):
        out = tmp_path / f"acpi{value}"
        args = ("--cxl-window-restrictions", str(value)) if value else ()
        assert run_cli("emit", "acpi", config, "-o", out, *args).returncode == 0
        body = (out / "CEDT.aml").read_bytes()[36:]
        cfmws_at = int.from_bytes(body[2:4], "little")  # after the CHBS record
        assert body[0] == 0 and body[cfmws_at] == 1
        assert CFMWS.unpack(body, cfmws_at)["window_restrictions"] == value
    too_wide = run_cli(
        "emit", "acpi", config, "-o", tmp_path / "x", "--cxl-window-restrictions", "0x10000"
    )
    assert_one_line_error(too_wide, "--cxl-window-restrictions", "16-bit")
